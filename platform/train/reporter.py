"""One small interface for reporting metrics and checkpoints, so the same loop runs under Ray
Train (`ray.train.report`), inside a Tune trial (`ray.tune.report`), or in the driver."""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Protocol

from zsar.errors import DivergedError


class Reporter(Protocol):
    def report(self, metrics: dict, checkpoint_dir: str | None) -> None: ...

    def latest_checkpoint(self) -> str | None: ...


def _cleanup(checkpoint_dir: str | None) -> None:
    if checkpoint_dir:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)


def private_copy(checkpoint) -> str | None:
    """Download a Ray checkpoint into a directory of this process's own; the caller removes it.

    Without a path, `Checkpoint.to_directory()` uses one temp directory per checkpoint for every
    process of the machine: a worker arriving after another has finished downloading downloads
    again over the files the first is reading (a corrupt `state.pt` on restart)."""
    if checkpoint is None:
        return None
    return checkpoint.to_directory(tempfile.mkdtemp(prefix="zsar-restore-"))


class TrainReporter:
    def report(self, metrics, checkpoint_dir):
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)
        _cleanup(checkpoint_dir)

    def latest_checkpoint(self):
        import ray.train

        return private_copy(ray.train.get_checkpoint())


class TuneReporter:
    def report(self, metrics, checkpoint_dir):
        import ray.tune

        checkpoint = ray.tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.tune.report(metrics, checkpoint=checkpoint)
        _cleanup(checkpoint_dir)

    def latest_checkpoint(self):
        import ray.tune

        return private_copy(ray.tune.get_checkpoint())


class LocalReporter:
    """For runs in the driver process: checkpoints go to `run_dir/checkpoint_<epoch>` and each
    report is handed to `on_report(metrics, checkpoint_path)` (the MLflow logger)."""

    def __init__(self, run_dir: str | Path, on_report: Callable[[dict, str | None], None] | None = None, keep: int = 2):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.on_report = on_report
        self.keep = keep
        self.reports: list[dict] = []
        for partial in self.run_dir.glob("checkpoint_*.tmp"):  # a copy cut off by a killed process
            shutil.rmtree(partial, ignore_errors=True)

    def _checkpoints(self) -> list[Path]:
        done = [p for p in self.run_dir.glob("checkpoint_*") if re.fullmatch(r"checkpoint_\d+", p.name)]
        return sorted(done, key=lambda p: int(p.name.split("_")[1]))

    def report(self, metrics, checkpoint_dir):
        dest = None
        if checkpoint_dir:
            index = len(self._checkpoints()) and int(self._checkpoints()[-1].name.split("_")[1]) + 1
            dest = self.run_dir / f"checkpoint_{index:06d}"
            tmp = dest.with_name(dest.name + ".tmp")
            shutil.copytree(checkpoint_dir, tmp)
            tmp.rename(dest)  # a checkpoint is visible only once complete
            _cleanup(checkpoint_dir)
            for old in self._checkpoints()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        self.reports.append(metrics)
        if self.on_report:
            self.on_report(metrics, str(dest) if dest else None)

    def latest_checkpoint(self):
        return None  # the driver passes the newest complete checkpoint of the run as resume_from


def check_finite(metrics: dict, metric: str) -> None:
    """Stops a run (or fails a sweep trial) whose loss or selection metric is NaN or infinite."""
    bad = {k: v for k, v in metrics.items() if (k == metric or k.startswith("train/")) and isinstance(v, float)
           and not math.isfinite(v)}
    if bad:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
        raise DivergedError(f"non-finite values at epoch {metrics.get('epoch')}: {shown}; lower optim.lr or check the data")


class FiniteLogger:
    """Logs each report through `inner` (the MLflow logger), then stops the run on a non-finite
    loss or selection metric: the diverged epoch is in MLflow, the run ends FAILED. Picklable."""

    def __init__(self, inner: Callable[[dict, str | None], None], metric: str):
        self.inner = inner
        self.metric = metric

    def __call__(self, metrics: dict, checkpoint_path: str | None = None) -> None:
        self.inner(metrics, checkpoint_path)
        check_finite(metrics, self.metric)
