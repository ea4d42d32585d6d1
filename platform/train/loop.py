"""The method-agnostic training loop, read top to bottom.

`run_loop` is what every worker runs, under Ray Train (`zsar.train.launch.train_func_per_worker`),
inside a Tune trial, or in the driver for quick checks:

1. `seed_everything` and `build`: backbone + method + optimiser + scheduler, the same on every
   rank for a given seed;
2. `restore`: the last checkpoint, if there is one (a relaunch, a restarted worker group, a
   resumed sweep trial): weights, optimiser and scheduler state, and the epoch to go on from;
3. for every epoch left: reseed from (seed, rank, epoch), `train_epoch` on this worker's rows of
   the epoch (`LoopData.train(epoch)`: the order is a function of seed, epoch and manifest index,
   zsar.data.order), `evaluate` every label set with metrics gathered across ranks, and
   `checkpoint_and_report` metrics + a checkpoint through a `Reporter`.

Because every epoch's data, draws and random state derive from (seed, epoch, rank), a run
resumed after epoch k trains epoch k+1 exactly as the uninterrupted run did.
It calls only the method's `training_step` (through `forward`), `class_embeddings` and `logits`.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist

from zsar.config import ExperimentConfig, from_dict
from zsar.errors import DataError
from zsar.log import log
from zsar.models.backbone import create_backbone
from zsar.models.text import LabelSet
from zsar.registry import METHODS
from zsar.train import checkpoint as ckpt
from zsar.train.batches import failed_rows, fill_failed
from zsar.train.dist import WorkerContext, all_reduce_sum, gather_objects
from zsar.train.evaluate import evaluate_part
from zsar.train.metrics import derived_metrics
from zsar.train.reporter import Reporter

__all__ = ["LoopData", "PartInfo", "PlanInfo", "WorkerContext", "run_loop", "plan_info"]

SCORE = "checkpoint_score"  # reported every epoch: the primary metric where evaluated, else -1
HOLD = "ZSAR_HOLD_AFTER_EPOCH_1"  # fault injection for the cluster test: see `hold_after_report`


@dataclass
class PartInfo:
    """What a worker needs to know about a manifest part (its rows come through a feed)."""

    name: str
    prefix: str
    labels: LabelSet
    num_rows: int
    seen: tuple[str, ...] | None = None  # GZSL parts: the seen classes among `labels`


@dataclass
class PlanInfo:
    kind: str
    train: PartInfo | None
    evals: list[PartInfo]
    primary_metric: str
    unseen: tuple[str, ...] = ()  # classes no training stage may see
    known_failures: dict = field(default_factory=dict)  # path -> {"part", "error"}: found before the run
    known_truncated: dict = field(default_factory=dict)  # path -> {"part", "error"}: cut short, still used

    def derived_metrics(self, metrics: dict) -> dict:
        return derived_metrics(self.kind, [e.prefix for e in self.evals], metrics)


@dataclass
class LoopData:
    """Batch sources of this worker: `train(epoch)` and `evals[name]()` each return a fresh
    iterable of numpy batches (zsar.data.feed)."""

    train: Callable[[int], Iterable[dict]] | None
    evals: dict[str, Callable[[], Iterable[dict]]]


@dataclass
class Run:
    """What `build` makes and the epochs use."""

    cfg: ExperimentConfig
    method: torch.nn.Module
    model: torch.nn.Module  # the method, or its DDP wrapper
    fingerprint: str
    optimizer: torch.optim.Optimizer | None
    scheduler: object | None
    steps_per_epoch: int
    epochs: int  # epochs to train (0: evaluate only)
    trained_classes: list[str] | None
    device: torch.device
    amp: bool

    @property
    def trains(self) -> bool:
        return self.epochs > 0

    def autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp)


def set_threads(cfg: ExperimentConfig) -> int:
    threads = cfg.resources.torch_threads or max(1, (os.cpu_count() or 1) // max(cfg.resources.workers, 1))
    torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int, *parts: int) -> None:
    """torch, numpy and Python's generators from (seed, *parts)."""
    value = int(np.random.SeedSequence([int(seed), *map(int, parts)]).generate_state(1)[0])
    torch.manual_seed(value)
    np.random.seed(value)
    random.seed(value)


def cosine_with_warmup(step: int, total: int, warmup: int, min_ratio: float) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build(cfg: ExperimentConfig, info: PlanInfo, ctx: WorkerContext) -> Run:
    seed_everything(cfg.seed)  # the same initial weights on every rank
    device = torch.device(ctx.device)
    method_cls = METHODS.get(cfg.method)
    method_cfg = cfg.method_config()
    backbone = create_backbone(cfg.backbone, device="cpu", towers=method_cls.backbone_towers(method_cfg))
    method = method_cls(method_cfg, backbone, cfg)
    method.bind_train_labels(info.train.labels if info.train is not None else None)
    method = method.to(device)
    trains = method.trains and cfg.optim.epochs > 0 and info.train is not None
    if info.train is not None and set(info.unseen) & set(info.train.labels.names):
        raise DataError(f"unseen classes among the training classes: {sorted(set(info.unseen) & set(info.train.labels.names))[:5]}")
    trained = ckpt.inherited_classes([cfg.run.init_from, *method_cls.pretrained_checkpoints(method_cfg)])
    if trains:
        trained = sorted(set(trained or []) | set(info.train.labels.names))
    run = Run(cfg, method, method, backbone.fingerprint, None, None, 0, cfg.optim.epochs if trains else 0, trained,
              device, cfg.optim.amp and device.type == "cuda")
    if trains:
        _add_optimizer(run, info.train.num_rows, ctx)
    return run


def _add_optimizer(run: Run, train_rows: int, ctx: WorkerContext) -> None:
    cfg, method = run.cfg, run.method
    params = [p for p in method.parameters() if p.requires_grad]
    if not params:
        raise RuntimeError(f"method '{cfg.method}' has no trainable parameters")
    run.steps_per_epoch = max(train_rows // cfg.optim.batch_size, 1)
    total = run.steps_per_epoch * cfg.optim.epochs
    warmup = int(round(cfg.optim.warmup_epochs * run.steps_per_epoch))
    if cfg.optim.optimizer == "sgd":
        run.optimizer = torch.optim.SGD(params, lr=cfg.optim.lr, momentum=0.9, weight_decay=cfg.optim.weight_decay)
    else:
        run.optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                                          betas=tuple(cfg.optim.betas))
    run.scheduler = torch.optim.lr_scheduler.LambdaLR(
        run.optimizer, lambda s: cosine_with_warmup(s, total, warmup, cfg.optim.min_lr_ratio))
    if ctx.world_size > 1 and dist.is_initialized():
        from torch.nn.parallel import DistributedDataParallel

        run.model = DistributedDataParallel(method, device_ids=[ctx.local_rank] if run.device.type == "cuda" else None)


def restore(run: Run, reporter: Reporter, resume_from: str | None, ctx: WorkerContext) -> int:
    """The epoch to start from: that of the newest checkpoint found, else 0."""
    # Ray's own record first (a restarted worker group); else the newest complete checkpoint in
    # the run directory (a relaunched run whose last reports never reached Ray's controller).
    ray_copy = reporter.latest_checkpoint()  # this worker's own copy: removed once read
    try:
        restored = ckpt.newest([ray_copy, resume_from])
        if restored:
            epoch = ckpt.restore(restored, run.method, run.optimizer, run.scheduler, run.fingerprint)
            source = "the run's last reported checkpoint" if restored == ray_copy else restored
            log(f"resumed from {source} at epoch {epoch}", ctx)
            return epoch
        if run.cfg.run.init_from:
            ckpt.restore(run.cfg.run.init_from, run.method, None, None, run.fingerprint)
            log(f"weights from {run.cfg.run.init_from}", ctx)
        return 0
    finally:
        if ray_copy:
            shutil.rmtree(ray_copy, ignore_errors=True)


def train_epoch(run: Run, batches: Iterable[dict], labels: LabelSet, epoch: int, ctx: WorkerContext,
                failures: dict) -> dict:
    """One pass over this worker's rows of `epoch`; the epoch's mean of every loss part."""
    run.method.train()
    sums: dict[str, float] = {}
    samples = steps = 0
    t0 = last_print = time.time()
    last_good = None
    for raw in batches:
        _note_failures(failures, failed_rows(raw), "train")
        batch = fill_failed(raw, last_good)
        if batch is None:
            continue
        last_good = batch
        out = _step(run, batch, labels)
        steps += 1
        samples += len(batch["label"])
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        if time.time() - last_print > 10 or steps == run.steps_per_epoch:
            last_print = time.time()
            log(f"epoch {epoch + 1}/{run.epochs} step {steps}/{run.steps_per_epoch} loss {float(out['loss'].detach()):.4f} "
                f"({samples * ctx.world_size / (time.time() - t0):.1f} clips/s)", ctx)
    totals = all_reduce_sum([float(samples), float(steps)] + [sums.get(k, 0.0) for k in sorted(sums)], ctx)
    metrics = {"train/samples": totals[0], "train/samples_per_step": totals[0] / max(totals[1] / ctx.world_size, 1)}
    for k, total in zip(sorted(sums), totals[2:]):
        metrics[f"train/{k}"] = total / max(totals[1], 1)
    metrics.update({"lr": run.scheduler.get_last_lr()[0], "train/steps": float(steps), "time/train_s": time.time() - t0})
    return metrics


def _step(run: Run, batch: dict, labels: LabelSet) -> dict:
    inputs = {k: v[:, 0] for k, v in run.method.batch_inputs(batch, run.device).items()}  # training uses one view
    target = torch.from_numpy(np.ascontiguousarray(batch["label"])).to(run.device)
    with run.autocast():
        out = run.model({**inputs, "label": target}, labels)
    run.optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    if run.cfg.optim.grad_clip:
        torch.nn.utils.clip_grad_norm_([p for p in run.method.parameters() if p.requires_grad], run.cfg.optim.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    return out


def evaluate(run: Run, info: PlanInfo, data: LoopData, ctx: WorkerContext, failures: dict) -> tuple[dict, dict]:
    """Metrics of every label set, and each part's result (for the per-class tables)."""
    run.method.eval()
    metrics, results = {}, {}
    for part in info.evals:
        result = evaluate_part(run.method, data.evals[part.name], part, run.cfg, run.device, run.autocast, ctx)
        metrics.update(result.metrics)
        results[part.name] = result
        _note_failures(failures, result.failures, part.name)
        log(f"eval {part.name}: {result.count} videos, top1 {result.metrics[part.prefix + 'top1']:.2f}", ctx)
    metrics.update(info.derived_metrics(metrics))
    return metrics, results


def _note_failures(failures: dict, rows: list[dict], part: str) -> None:
    for row in rows:
        failures.setdefault(row["path"], {"part": part, "error": row["error"]})


def check_failures(failures: dict, info: PlanInfo, max_fraction: float) -> None:
    """Stop when a part has more distinct bad files than `max_fraction` of its rows."""
    for part in ([info.train] if info.train is not None else []) + list(info.evals):
        name = "train" if part is info.train else part.name
        bad = [p for p, f in failures.items() if f["part"] == name]
        if part.num_rows and len(bad) / part.num_rows > max_fraction:
            first = "; ".join(f"{Path(p).name}: {failures[p]['error']}" for p in bad[:3])
            raise DataError(f"{len(bad)} of {part.num_rows} videos of {name} could not be decoded (more than "
                            f"data.max_failure_fraction={max_fraction}); first: {first}")


def checkpoint_and_report(run: Run, reporter: Reporter, metrics: dict, results: dict, failures: dict, epoch: int,
                          ctx: WorkerContext) -> None:
    ckpt_dir = None
    if ctx.rank == 0:
        ckpt_dir = tempfile.mkdtemp(prefix="zsar-ckpt-")
        ckpt.save(ckpt_dir, run.method, run.optimizer, run.scheduler, epoch, run.cfg, metrics, run.fingerprint,
                  run.trained_classes)
        ckpt.write_eval_tables(ckpt_dir, results, [{"path": p, **f} for p, f in sorted(failures.items())])
        ckpt.seal(ckpt_dir)
    reporter.report(metrics, ckpt_dir)


def hold_after_report(epoch: int, limit_s: float = 600.0) -> None:
    """With ZSAR_HOLD_AFTER_EPOCH_1=<file> in the environment, every worker waits after reporting
    epoch 1 while <file> exists (at most `limit_s`): a test kills a worker at that known point of a
    run instead of racing the next epoch. Unset (always, outside tests) it does nothing."""
    flag = os.environ.get(HOLD)
    if not flag or epoch != 1:
        return
    deadline = time.monotonic() + limit_s
    while Path(flag).exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def run_loop(cfg_dict: dict, info: PlanInfo, data: LoopData, reporter: Reporter, ctx: WorkerContext,
             resume_from: str | None = None) -> dict:
    # Ray hands batches over zero-copy (read-only); the loop only reads them
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    cfg = from_dict(ExperimentConfig, cfg_dict)
    threads = set_threads(cfg)
    if cfg.run.deterministic:
        torch.use_deterministic_algorithms(True)
    run = build(cfg, info, ctx)
    log(f"{cfg.method} on {cfg.dataset}/{cfg.protocol}: {run.method.param_count()['params_tunable']:,} tunable parameters, "
        f"{ctx.world_size} worker(s), device {run.device}, {threads} torch thread(s)", ctx)
    start = restore(run, reporter, resume_from, ctx)
    failures = {p: dict(f) for p, f in info.known_failures.items()}
    metrics: dict = {}
    for epoch in range(start, max(run.epochs, 1)):
        seed_everything(cfg.seed, ctx.rank, epoch)  # an epoch's random state never depends on the epochs before
        t0 = time.time()
        metrics = {"epoch": epoch + 1 if run.trains else 0}
        if run.trains:
            metrics.update(train_epoch(run, data.train(epoch), info.train.labels, epoch, ctx, failures))
        t_train = time.time() - t0
        results = {}
        if not run.trains or epoch + 1 == run.epochs or (epoch + 1) % cfg.optim.eval_every == 0:
            evaluated, results = evaluate(run, info, data, ctx, failures)
            metrics.update(evaluated)
        failures = _merged(failures, ctx)
        check_failures(failures, info, cfg.data.max_failure_fraction)
        metrics["data/failures"] = float(len(failures))  # distinct bad files of the run (every part, every epoch)
        metrics["data/truncated"] = float(len(info.known_truncated))
        metrics["time/eval_s"] = time.time() - t0 - t_train
        metrics[SCORE] = float(metrics.get(info.primary_metric, -1.0))
        checkpoint_and_report(run, reporter, metrics, results, failures, metrics["epoch"], ctx)
        hold_after_report(metrics["epoch"])
        metrics["time/epoch_s"] = time.time() - t0
        log(f"epoch {metrics['epoch']} took {metrics['time/epoch_s']:.1f}s (train {t_train:.1f}s, eval "
            f"{metrics['time/eval_s']:.1f}s, checkpoint+report {metrics['time/epoch_s'] - t_train - metrics['time/eval_s']:.1f}s)", ctx)
    return metrics


def _merged(failures: dict, ctx: WorkerContext) -> dict:
    """Every rank's bad files, each once (training failures are seen by one rank only)."""
    merged: dict = {}
    for chunk in gather_objects(failures, ctx):
        for path, f in chunk.items():
            merged.setdefault(path, f)
    return merged


def plan_info(plan, primary_metric: str, known_failures: dict | None = None, known_truncated: dict | None = None) -> PlanInfo:
    def part_info(p):
        return PartInfo(p.name, p.prefix, p.labels, p.manifest.num_rows, p.seen)

    return PlanInfo(
        kind=plan.kind,
        train=part_info(plan.train) if plan.train is not None else None,
        evals=[part_info(p) for p in plan.evals],
        primary_metric=primary_metric,
        unseen=tuple(plan.unseen),
        known_failures=dict(known_failures or {}),
        known_truncated=dict(known_truncated or {}),
    )
