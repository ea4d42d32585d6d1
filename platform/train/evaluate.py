"""Evaluation of one label set on this worker's shard, gathered across ranks.

Ray Train splits every dataset across workers, so a per-rank accuracy is wrong: each rank scores
its own rows, the (index, label, scores) triples are gathered to every rank, and metrics are
computed once over all rows. Views are flattened into the batch and their logits fused. A GZSL
part (one with `seen` classes) is scored after calibrated stacking (`gzsl_gamma`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from zsar.train.batches import failed_rows
from zsar.train.dist import gather_objects
from zsar.train.metrics import fuse_views, part_metrics, per_class_accuracy


@dataclass
class EvalResult:
    metrics: dict
    count: int
    scores: np.ndarray  # [N, C], rows ordered by manifest index
    labels: np.ndarray
    indices: np.ndarray
    class_names: tuple
    failures: list = field(default_factory=list)

    def per_class(self) -> np.ndarray:
        return per_class_accuracy(self.scores, self.labels, len(self.class_names))


@torch.no_grad()
def score_batches(method, batches, labels, view_fusion, device, autocast):
    """Scores of every decoded row of `batches`: (indices, labels, scores [n, C], failures)."""
    class_emb = method.class_embeddings(labels).to(device)
    idx_out, lab_out, score_out, failures = [], [], [], []
    for batch in batches:
        failures += failed_rows(batch)
        ok = batch["ok"]
        if not ok.any():
            continue
        inputs = method.batch_inputs({k: val[ok] for k, val in batch.items()}, device)  # each B, V, ...
        b, v = next(iter(inputs.values())).shape[:2]
        with autocast():
            logits = method.logits({k: x.flatten(0, 1) for k, x in inputs.items()}, class_emb)
        scores = fuse_views(logits.float().view(b, v, -1), view_fusion)
        idx_out.append(batch["index"][ok])
        lab_out.append(batch["label"][ok])
        score_out.append(scores.cpu().numpy())
    if not idx_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, len(labels)), np.float32), failures
    return np.concatenate(idx_out), np.concatenate(lab_out), np.concatenate(score_out), failures


def evaluate_part(method, batches_fn, part, cfg, device, autocast, ctx) -> EvalResult:
    local = score_batches(method, batches_fn(), part.labels, cfg.data.view_fusion, device, autocast)
    gathered = gather_objects(local, ctx)
    indices = np.concatenate([g[0] for g in gathered])
    labels = np.concatenate([g[1] for g in gathered])
    scores = np.concatenate([g[2] for g in gathered])
    failures = [f for g in gathered for f in g[3]]
    order = np.argsort(indices, kind="stable")
    indices, labels, scores = indices[order], labels[order], scores[order]
    if len(np.unique(indices)) != len(indices):
        raise RuntimeError(f"evaluation of {part.name} saw a row twice: the shards overlap")
    seen_mask = None if part.seen is None else np.array([n in set(part.seen) for n in part.labels.names])
    metrics, scores = part_metrics(torch.from_numpy(scores), torch.from_numpy(labels), part.prefix, seen_mask, cfg.gzsl_gamma)
    metrics[f"{part.prefix}count"] = float(len(indices))
    return EvalResult(metrics, len(indices), scores, labels, indices, part.labels.names, failures)
