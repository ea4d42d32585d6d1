"""The method-agnostic training loop, read top to bottom.

`run_loop` is what every worker runs, under Ray Train (`train_func_per_worker`), inside a Tune
trial, or in the driver for quick checks: build backbone + method, restore the last checkpoint if
there is one, then per epoch train on this worker's shard, evaluate every label set with metrics
gathered across ranks, and report metrics + a checkpoint through a `Reporter`. It calls only the
method's `training_step`, `class_embeddings` and `logits`.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist

from zsar.config import ExperimentConfig, from_dict
from zsar.errors import DataError
from zsar.models.backbone import create_backbone
from zsar.models.text import LabelSet
from zsar.registry import METHODS
from zsar.train import checkpoint as ckpt
from zsar.train.evaluate import evaluate_part
from zsar.train.metrics import derived_metrics
from zsar.log import log
from zsar.train.batches import failed_rows, fill_failed
from zsar.train.dist import WorkerContext, all_reduce_sum, gather_objects
from zsar.train.reporter import Reporter


@dataclass
class PartInfo:
    """What a worker needs to know about a manifest part (the rows travel as a Ray dataset)."""

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

    def derived_metrics(self, metrics: dict) -> dict:
        return derived_metrics(self.kind, [e.prefix for e in self.evals], metrics)


@dataclass
class LoopData:
    """Batch sources: `train(batch_size)` and `evals[name](batch_size)` each return a fresh
    iterable of numpy batches (decoded by zsar.data.pipeline)."""

    train: Callable[[int], Iterable[dict]] | None
    evals: dict[str, Callable[[int], Iterable[dict]]]


def set_threads(cfg: ExperimentConfig) -> int:
    threads = cfg.resources.torch_threads or max(1, (os.cpu_count() or 1) // max(cfg.resources.workers, 1))
    torch.set_num_threads(threads)
    return threads


def cosine_with_warmup(step: int, total: int, warmup: int, min_ratio: float) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def run_loop(cfg_dict: dict, info: PlanInfo, data: LoopData, reporter: Reporter, ctx: WorkerContext,
             resume_from: str | None = None) -> dict:
    cfg = from_dict(ExperimentConfig, cfg_dict)
    threads = set_threads(cfg)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
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
    trained_classes = ckpt.inherited_classes([cfg.run.init_from, *method_cls.pretrained_checkpoints(method_cfg)])
    if trains:
        trained_classes = sorted(set(trained_classes or []) | set(info.train.labels.names))
    log(f"{cfg.method} on {cfg.dataset}/{cfg.protocol}: {method.param_count()['params_tunable']:,} tunable parameters, "
        f"{ctx.world_size} worker(s), device {device}, {threads} torch thread(s)", ctx)

    model = method
    optimizer = scheduler = None
    steps_per_epoch = 0
    per_worker_batch = cfg.optim.batch_size // max(ctx.world_size, 1)
    if trains:
        params = [p for p in method.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError(f"method '{cfg.method}' has no trainable parameters")
        rows_per_worker = info.train.num_rows // ctx.world_size
        steps_per_epoch = max(rows_per_worker // per_worker_batch, 1)
        total_steps = steps_per_epoch * cfg.optim.epochs
        warmup_steps = int(round(cfg.optim.warmup_epochs * steps_per_epoch))
        if cfg.optim.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=cfg.optim.lr, momentum=0.9, weight_decay=cfg.optim.weight_decay)
        else:
            optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, betas=tuple(cfg.optim.betas))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: cosine_with_warmup(s, total_steps, warmup_steps, cfg.optim.min_lr_ratio)
        )
        if ctx.world_size > 1 and dist.is_initialized():
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(method, device_ids=[ctx.local_rank] if device.type == "cuda" else None)

    start_epoch = 0
    # Ray's own record first (a restarted worker group); else the newest complete checkpoint in
    # the run directory (a relaunched run whose last reports never reached Ray's controller).
    ray_copy = reporter.latest_checkpoint()  # this worker's own copy: removed once read
    restored = ckpt.newest([ray_copy, resume_from])
    if restored:
        start_epoch = ckpt.restore(restored, method, optimizer, scheduler, backbone.fingerprint)
        source = "the run's last reported checkpoint" if restored == ray_copy else restored
        log(f"resumed from {source} at epoch {start_epoch}", ctx)
    elif cfg.run.init_from:
        ckpt.restore(cfg.run.init_from, method, None, None, backbone.fingerprint)
        log(f"weights from {cfg.run.init_from}", ctx)
    if ray_copy:
        shutil.rmtree(ray_copy, ignore_errors=True)

    amp = cfg.optim.amp and device.type == "cuda"
    autocast = lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)  # noqa: E731
    epochs = cfg.optim.epochs if trains else 0
    last_metrics: dict = {}
    failures_seen: list[dict] = []

    for epoch in range(start_epoch, max(epochs, 1) if trains else 1):
        metrics: dict = {"epoch": epoch + 1 if trains else 0}
        t_epoch = time.time()
        if trains:
            method.train()
            sums: dict[str, float] = {}
            samples = steps = 0
            epoch_failures: list[dict] = []
            t0 = last_print = time.time()
            last_good = None
            for raw in data.train(per_worker_batch):
                epoch_failures += failed_rows(raw)
                batch = fill_failed(raw, last_good)
                if batch is None:
                    continue
                last_good = batch
                inputs = {k: v[:, 0] for k, v in method.batch_inputs(batch, device).items()}  # training uses one view
                labels = torch.from_numpy(np.ascontiguousarray(batch["label"])).to(device)
                with autocast():
                    out = model({**inputs, "label": labels}, info.train.labels)
                loss = out["loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.optim.grad_clip:
                    torch.nn.utils.clip_grad_norm_([p for p in method.parameters() if p.requires_grad], cfg.optim.grad_clip)
                optimizer.step()
                scheduler.step()
                steps += 1
                samples += labels.shape[0]
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                if time.time() - last_print > 10 or steps == steps_per_epoch:
                    last_print = time.time()
                    log(f"epoch {epoch + 1}/{epochs} step {steps}/{steps_per_epoch} loss {float(loss.detach()):.4f} "
                        f"({samples * ctx.world_size / (time.time() - t0):.1f} clips/s)", ctx)
            totals = all_reduce_sum([float(samples), float(steps)] + [sums.get(k, 0.0) for k in sorted(sums)], ctx)
            metrics["train/samples"] = totals[0]
            metrics["train/samples_per_step"] = totals[0] / max(totals[1] / ctx.world_size, 1)
            for k, total in zip(sorted(sums), totals[2:]):
                metrics[f"train/{k}"] = total / max(totals[1], 1)
            metrics["lr"] = scheduler.get_last_lr()[0]
            metrics["train/steps"] = float(steps)
            metrics["time/train_s"] = time.time() - t0
            failures_seen += [f for chunk in gather_objects(epoch_failures, ctx) for f in chunk]
            _check_failures(failures_seen, info.train.num_rows * (epoch + 1 - start_epoch), cfg.data.max_failure_fraction)

        t_train = time.time() - t_epoch
        last_epoch = not trains or epoch + 1 == epochs
        per_class = {}
        if last_epoch or (epoch + 1) % cfg.optim.eval_every == 0:
            method.eval()
            for part in info.evals:
                result = evaluate_part(method, data.evals[part.name], part, cfg, device, autocast, ctx)
                metrics.update(result.metrics)
                per_class[part.name] = result
                failures_seen += result.failures
                _check_failures(result.failures, part.num_rows, cfg.data.max_failure_fraction)
                log(f"eval {part.name}: {result.count} videos, top1 {result.metrics[part.prefix + 'top1']:.2f}", ctx)
            metrics.update(info.derived_metrics(metrics))
        metrics["data/failures"] = float(len(failures_seen))
        t_eval = time.time() - t_epoch - t_train
        metrics["time/eval_s"] = t_eval

        ckpt_dir = None
        if ctx.rank == 0:
            ckpt_dir = tempfile.mkdtemp(prefix="zsar-ckpt-")
            ckpt.save(ckpt_dir, method, optimizer, scheduler, epoch + 1 if trains else 0, cfg, metrics, backbone.fingerprint,
                      trained_classes)
            ckpt.write_eval_tables(ckpt_dir, per_class, failures_seen)
            ckpt.seal(ckpt_dir)
        reporter.report(metrics, ckpt_dir)
        metrics["time/epoch_s"] = time.time() - t_epoch
        log(f"epoch {epoch + 1 if trains else 0} took {metrics['time/epoch_s']:.1f}s "
            f"(train {t_train:.1f}s, eval {t_eval:.1f}s, checkpoint+report {metrics['time/epoch_s'] - t_train - t_eval:.1f}s)", ctx)
        last_metrics = metrics
    return last_metrics


def _check_failures(failures: list[dict], rows: int, max_fraction: float) -> None:
    if rows and len(failures) / rows > max_fraction:
        first = "; ".join(f"{Path(f['path']).name}: {f['error']}" for f in failures[:3])
        raise DataError(
            f"{len(failures)} of {rows} videos could not be decoded (more than data.max_failure_fraction="
            f"{max_fraction}); first: {first}"
        )


def plan_info(plan, primary_metric: str) -> PlanInfo:
    def part_info(p):
        return PartInfo(p.name, p.prefix, p.labels, p.manifest.num_rows, p.seen)

    return PlanInfo(
        kind=plan.kind,
        train=part_info(plan.train) if plan.train is not None else None,
        evals=[part_info(p) for p in plan.evals],
        primary_metric=primary_metric,
        unseen=tuple(plan.unseen),
    )

