"""Checkpoints: one directory per report with the method's state (frozen backbone weights are
rebuilt from their source and checked by fingerprint), optimiser and scheduler state, the epoch,
the resolved config (a YAML that `zsar train --config` accepts back) and evaluation tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from zsar.models.checkpoint_files import (  # noqa: F401 - the checkpoint's files, re-exported for readers
    CONFIG,
    MANIFEST,
    METRICS,
    STATE,
    TRAINED_CLASSES,
    inherited_classes,
    load_state,
    read_config,
    trained_classes,
)


def save(path, method, optimizer, scheduler, epoch: int, cfg, metrics: dict, fingerprint: str,
         classes: list[str] | None = None) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": {k: v.detach().cpu() for k, v in method.checkpoint_state().items()},
            "optimizer": optimizer.state_dict() if optimizer else None,
            "scheduler": scheduler.state_dict() if scheduler else None,
            "epoch": epoch,
            "backbone_fingerprint": fingerprint,
            "method": method.name,
        },
        path / STATE,
    )
    (path / CONFIG).write_text(cfg.to_yaml())
    (path / METRICS).write_text(json.dumps(metrics, indent=1, sort_keys=True))
    if classes is not None:
        (path / TRAINED_CLASSES).write_text(json.dumps(sorted(classes), indent=0))


def seal(path) -> None:
    """Record every file's size; call after the last file is written."""
    path = Path(path)
    sizes = {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file() and p.name != MANIFEST}
    (path / MANIFEST).write_text(json.dumps(sizes, indent=1))


def is_complete(path) -> bool:
    path = Path(path)
    try:
        sizes = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return all((path / name).is_file() and (path / name).stat().st_size == size for name, size in sizes.items())


def epoch_of(path) -> int:
    return int(json.loads((Path(path) / METRICS).read_text()).get("epoch", 0))


def newest(paths) -> str | None:
    """The checkpoint of the highest epoch among `paths` (None entries ignored)."""
    found = [p for p in paths if p]
    return max(found, key=epoch_of) if found else None


def latest_complete(run_dir) -> tuple[str | None, int]:
    """The complete checkpoint of the highest epoch under `run_dir`, and that epoch."""
    best, best_epoch = None, -1
    for candidate in Path(run_dir).glob("checkpoint_*"):
        if candidate.is_dir() and is_complete(candidate):
            epoch = epoch_of(candidate)
            if epoch > best_epoch:
                best, best_epoch = str(candidate), epoch
    return best, best_epoch


def restore(path, method, optimizer, scheduler, fingerprint: str) -> int:
    """Load a checkpoint into the method (and optimiser/scheduler); returns its epoch."""
    state = load_state(path)
    if state["backbone_fingerprint"] != fingerprint:
        raise RuntimeError(
            f"checkpoint {path} was trained on backbone weights {state['backbone_fingerprint']}, "
            f"but the configured backbone has {fingerprint}"
        )
    method.load_checkpoint_state(state["model"])
    if optimizer is not None and state.get("optimizer"):
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler"):
        scheduler.load_state_dict(state["scheduler"])
    return int(state["epoch"])


def write_eval_tables(path, results: dict, failures: list[dict]) -> None:
    """per_class/<part>.csv (class, top1, count), confusion/<part>.csv (true class per line,
    predicted class per column, counts) and failures.csv (path, error)."""
    from zsar.train.metrics import confusion_matrix

    path = Path(path)
    if results:
        (path / "per_class").mkdir(exist_ok=True)
        (path / "confusion").mkdir(exist_ok=True)
    for name, result in results.items():
        cm = confusion_matrix(result.scores, result.labels, len(result.class_names))
        with open(path / "confusion" / f"{name.replace('/', '_')}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["true \\ predicted", *result.class_names])
            for cls, counts in zip(result.class_names, cm):
                w.writerow([cls, *(int(c) for c in counts)])
        acc = result.per_class()
        counts = np.bincount(result.labels, minlength=len(result.class_names))
        with open(path / "per_class" / f"{name.replace('/', '_')}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["class", "top1", "count"])
            for cls, a, n in zip(result.class_names, acc, counts):
                w.writerow([cls, "" if np.isnan(a) else f"{a:.4f}", int(n)])
    if failures:
        with open(path / "failures.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["path", "part", "error"], extrasaction="ignore")
            w.writeheader()
            seen = set()
            for row in failures:
                if row["path"] not in seen:  # a bad file is one row, whatever the epochs and parts that met it
                    seen.add(row["path"])
                    w.writerow({"part": "", **row})
