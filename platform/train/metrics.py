"""Evaluation metrics. Accuracies are percentages (0-100); names follow DESIGN.md.

top1/top5 on one label set; base-to-novel `hm` = 2BN/(B+N); mean and population std over splits;
per-class accuracy; GZSL seen/unseen/H with calibrated stacking.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def fuse_views(logits: torch.Tensor, mode: str = "mean_logits") -> torch.Tensor:
    """[B, V, C] view logits -> [B, C]: mean of logits, or mean of softmax probabilities."""
    logits = _as_tensor(logits).float()
    if logits.dim() == 2:
        return logits
    if mode == "mean_probs":
        return logits.softmax(-1).mean(1)
    if mode == "mean_logits":
        return logits.mean(1)
    raise ValueError(f"unknown view fusion {mode!r}")


def topk_accuracy(scores, labels, k: int = 1) -> float:
    """Percent of rows whose label is among the k highest scores (k capped at the class count)."""
    scores, labels = _as_tensor(scores).float(), _as_tensor(labels).long()
    if labels.numel() == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices
    return float((top == labels[:, None]).any(1).float().mean() * 100)


def per_class_accuracy(scores, labels, num_classes: int) -> np.ndarray:
    """Top-1 accuracy of each class in percent; NaN for classes without samples."""
    pred = _as_tensor(scores).argmax(1).numpy()
    labels = _as_tensor(labels).long().numpy()
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        mask = labels == c
        if mask.any():
            out[c] = (pred[mask] == c).mean() * 100
    return out


def confusion_matrix(scores, labels, num_classes: int) -> np.ndarray:
    pred = _as_tensor(scores).argmax(1).numpy()
    labels = _as_tensor(labels).long().numpy()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def harmonic_mean(base: float, novel: float) -> float:
    if base + novel == 0:
        return 0.0
    return 2 * base * novel / (base + novel)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (ddof=0), as the papers' 'mean ± std' over splits."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=0))


def calibrated_stacking(scores, seen_mask, gamma: float) -> torch.Tensor:
    """Chao et al. (ECCV 2016): subtract `gamma` from the scores of seen classes only."""
    scores = _as_tensor(scores).float().clone()
    scores[:, _as_tensor(seen_mask).bool()] -= gamma
    return scores


def gzsl_metrics(scores, labels, seen_mask, gamma: float = 0.0) -> dict[str, float]:
    """Generalized zero-shot accuracy over all classes with calibrated stacking.

    `gamma` is subtracted from the scores of seen classes only. `seen` is the accuracy on samples
    of seen classes, `unseen` on samples of unseen classes, `h` their harmonic mean.
    """
    scores = calibrated_stacking(scores, seen_mask, gamma)
    labels = _as_tensor(labels).long()
    seen_mask = _as_tensor(seen_mask).bool()
    pred = scores.argmax(1)
    sample_seen = seen_mask[labels]
    seen = float((pred[sample_seen] == labels[sample_seen]).float().mean() * 100) if sample_seen.any() else float("nan")
    unseen = float((pred[~sample_seen] == labels[~sample_seen]).float().mean() * 100) if (~sample_seen).any() else float("nan")
    return {"seen": seen, "unseen": unseen, "h": harmonic_mean(seen, unseen)}


def label_set_metrics(scores, labels, prefix: str = "") -> dict[str, float]:
    return {f"{prefix}top1": topk_accuracy(scores, labels, 1), f"{prefix}top5": topk_accuracy(scores, labels, 5)}


def part_metrics(scores, labels, prefix: str = "", seen_mask=None, gamma: float = 0.0) -> tuple[dict[str, float], np.ndarray]:
    """The metrics of one evaluated label set, and the scores they were computed from.

    A GZSL part (`seen_mask` given: which of its classes were seen in training) is scored after
    calibrated stacking and also reports `seen`, `unseen` and `h`; any other part `top1`, `top5`.
    """
    if seen_mask is not None:
        scores = calibrated_stacking(scores, seen_mask, gamma).numpy()
    metrics = label_set_metrics(scores, labels, prefix)
    if seen_mask is not None:
        metrics.update({f"{prefix}{k}": v for k, v in gzsl_metrics(scores, labels, seen_mask).items()})
    return metrics, np.asarray(scores)


def averaged_split(split: str) -> bool:
    """Whether an eval target's split joins `<dataset>/top1_mean|std`: every split but `full` (the
    whole test set, reported on its own)."""
    return split != "full"


def derived_metrics(kind: str, prefixes: Sequence[str], metrics: dict) -> dict:
    """Metrics that follow from the per-label-set ones: `hm` for base-to-novel (and `val_hm` for
    the pseudo-novel validation split), and `<dataset>/top1_mean|std` over eval-target splits
    (the full test set, split `full`, is reported on its own, not averaged with its splits)."""
    out = {}
    if kind == "base2novel" and "base_top1" in metrics and "novel_top1" in metrics:
        out["hm"] = harmonic_mean(metrics["base_top1"], metrics["novel_top1"])
    if "val_base_top1" in metrics and "val_novel_top1" in metrics:
        out["val_hm"] = harmonic_mean(metrics["val_base_top1"], metrics["val_novel_top1"])
    groups: dict[str, list[float]] = {}
    for prefix in prefixes:
        if prefix.count("/") == 2 and prefix.endswith("/") and f"{prefix}top1" in metrics and averaged_split(prefix.split("/")[1]):  # "<dataset>/<split>/"
            groups.setdefault(prefix.split("/")[0], []).append(metrics[f"{prefix}top1"])
    for dataset, values in groups.items():
        out[f"{dataset}/top1_mean"], out[f"{dataset}/top1_std"] = mean_std(values)
    return {k: v for k, v in out.items() if not math.isnan(v)}
