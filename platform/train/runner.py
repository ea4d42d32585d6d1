"""The driver's story of a run: config -> checked plan -> feeds (what each worker reads) -> the loop (in this
process or under Ray Train) -> MLflow.

`run(cfg)` trains (or, with `optim.epochs=0` or an evaluation-only method, evaluates) one config.
`--split all` runs every split of the protocol as a child MLflow run and logs the means on a
parent run. Relaunching a run with the same `run.name` resumes it from its last checkpoint and
continues the same MLflow run. The steps live in `plan` (protocol -> checked plan), `inputs`
(plan -> feeds, through the caches), `launch` (driver or Ray Train) and `loop` (the epochs).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from zsar.config import ExperimentConfig
from zsar.data.dataset import Plan
from zsar.errors import ZsarError
from zsar.home import runs_dir
from zsar.log import log
from zsar.registry import DATASETS, METHODS
from zsar.track import mlflow_log as track
from zsar.train import checkpoint as ckpt
from zsar.train import record
from zsar.train.reporter import FiniteLogger
from zsar.train.inputs import build_feeds, feature_cache_metrics
from zsar.train.launch import run_in_driver, run_with_ray_train
from zsar.train.loop import plan_info
from zsar.train.plan import checked_plan, primary_metric, summary
from zsar.train.preflight import preflight, report_skipped


@dataclass
class RunResult:
    run_id: str
    run_name: str
    metrics: dict
    checkpoint: str | None
    tracking_uri: str
    children: list = field(default_factory=list)
    split: str | None = None



def default_run_name(cfg: ExperimentConfig, split: str) -> str:
    return f"{cfg.method}-{cfg.dataset}-{cfg.protocol}-{split}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(cfg: ExperimentConfig, *, dry_run: bool = False, expected_record: dict | None = None) -> RunResult | dict:
    """`expected_record`: the inputs of the run a config came from (best.yaml's header); each that
    differs now is one warning line."""
    dataset_cls = DATASETS.get(cfg.dataset)
    split = dataset_cls.check_protocol(cfg.protocol, cfg.split)
    splits = dataset_cls.splits_for_all(cfg.protocol) if split == "all" else (split,)
    if len(splits) == 1:  # one split (e.g. `folder`'s only one): a plain run with the plain metric names
        return run_split(dataclasses.replace(cfg, split=splits[0]), dry_run=dry_run, expected_record=expected_record)
    return run_all_splits(cfg, splits, dry_run=dry_run)


def run_all_splits(cfg: ExperimentConfig, splits, *, dry_run: bool = False):
    from zsar.train.metrics import mean_std

    uri = track.resolve_uri(cfg.tracking.uri)
    name = cfg.run.name or default_run_name(cfg, "all")
    storage = Path(cfg.run.storage or runs_dir())
    if dry_run:
        return {"splits": [run_split(dataclasses.replace(cfg, split=split), dry_run=True) for split in splits]}
    parent_id, _ = track.start_or_resume(storage / name, uri, cfg.tracking.experiment, name, _tags(cfg, "all"), cfg.to_dict())
    with track.ends_run(uri, parent_id):
        children = []
        for split in splits:
            child_cfg = dataclasses.replace(cfg, split=split, run=dataclasses.replace(cfg.run, name=f"{name}-{split}"))
            children.append(run_split(child_cfg, parent_run_id=parent_id))
        keys = sorted(set.intersection(*(set(track.numeric(c.metrics)) for c in children)) - {"epoch"})
        means = {}
        for key in keys:
            means[f"{key}_mean"], means[f"{key}_std"] = mean_std([c.metrics[key] for c in children])
        track.log_metrics(uri, parent_id, means, step=0)
    return RunResult(parent_id, name, means, None, uri, children, "all")


def _tags(cfg: ExperimentConfig, split: str) -> dict:
    return {
        "method": cfg.method,
        "dataset": cfg.dataset,
        "protocol": cfg.protocol,
        "split": split,
        "selection": cfg.selection,
        "git_commit": track.git_commit(),
        "zsar.kind": "train" if cfg.optim.epochs > 0 and METHODS.get(cfg.method).trains else "eval",
    }


def run_split(cfg: ExperimentConfig, *, dry_run: bool = False, parent_run_id: str | None = None,
              expected_record: dict | None = None) -> RunResult | dict:
    plan = checked_plan(cfg, cfg.split)
    cfg.method_config()
    if dry_run:
        return summary(cfg, plan)
    inputs = record.record(cfg, plan)
    for line in record.differences(expected_record or {}, inputs):
        log(f"warning: {line} (the run this config came from); its numbers may not be reproduced")

    from zsar.ray_runtime import init_ray

    init_ray(cfg.resources.address)
    known = preflight(cfg, plan)  # every video probed before any epoch: too many bad ones stop here
    uri = track.resolve_uri(cfg.tracking.uri)
    name = cfg.run.name or default_run_name(cfg, cfg.split)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, name=name))
    storage = Path(cfg.run.storage or runs_dir())
    run_dir = storage / name
    tags = {**_tags(cfg, cfg.split), **record.as_tags(inputs)}
    run_id, resumed = track.start_or_resume(run_dir, uri, cfg.tracking.experiment, name, tags, cfg.to_dict(), parent_run_id)
    if resumed and track.run_status(uri, run_id) == "FINISHED":
        log(f"run {name} already finished (MLflow run {run_id}); set run.name to start a new one")
        return _finished_result(uri, run_id, name, run_dir)
    log(f"{'resuming' if resumed else 'starting'} run {name} (MLflow run {run_id} in {uri})")
    with track.ends_run(uri, run_id):
        metrics, best = _train(cfg, plan, uri, run_id, run_dir, storage, resumed, known)
        _log_final(uri, run_id, cfg, plan, metrics, best)
    report_skipped(metrics)
    return RunResult(run_id, cfg.run.name, metrics, best, uri, split=cfg.split)


def _train(cfg: ExperimentConfig, plan: Plan, uri: str, run_id: str, run_dir: Path, storage: Path, resumed: bool,
           known: tuple):
    """(last metrics, best checkpoint) of the loop, resumed from the run's last complete checkpoint;
    `known`: what the pre-flight found (bad files, truncated ones), skipped without decoding."""
    resume_from = None
    if resumed:
        resume_from, epoch = ckpt.latest_complete(run_dir)
        complete = [c for c in run_dir.glob("checkpoint_*") if ckpt.is_complete(c)]
        backfilled = track.backfill_from_checkpoints(uri, run_id, complete, epoch)
        if backfilled:
            log(f"logged epochs {backfilled} from checkpoints whose reports were cut off")
    info = plan_info(plan, primary_metric(plan), *known)
    logger = FiniteLogger(track.MetricsLogger(uri, run_id), info.primary_metric)
    if not resumed:
        track.log_params(uri, run_id, METHODS.get(cfg.method).cost_params(cfg))
    feeds, uses = build_feeds(cfg, plan)
    if uses:
        track.log_metrics(uri, run_id, feature_cache_metrics(uses), step=0)
    if cfg.resources.workers == 0:
        return run_in_driver(cfg, info, run_dir, logger, resume_from, feeds)
    return run_with_ray_train(cfg, info, storage, cfg.run.name, logger, resume_from, feeds)


def _log_final(uri, run_id, cfg, plan: Plan, metrics: dict, best: str | None) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    # Per-epoch values were logged as they were reported; the final ones are also kept apart.
    final = {f"final/{k}": v for k, v in track.numeric(metrics).items() if k != "epoch"}
    track.log_metrics(uri, run_id, final, step=int(metrics.get("epoch", 0)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "config.yaml").write_text(cfg.to_yaml())
        notes = {**plan.notes, "summary": {p.name: {"videos": len(p), "classes": list(p.labels.names)} for p in plan.evals}}
        (tmp / "plan.json").write_text(json.dumps(notes, indent=1, default=str))
        client.log_artifact(run_id, str(tmp / "config.yaml"))
        client.log_artifact(run_id, str(tmp / "plan.json"))
    if best:
        client.log_artifacts(run_id, best, artifact_path="checkpoint")
        for sub in ("per_class", "confusion"):
            if (Path(best) / sub).is_dir():
                client.log_artifacts(run_id, str(Path(best) / sub), artifact_path=f"eval/{sub}")
        if (Path(best) / "failures.csv").is_file():
            client.log_artifact(run_id, str(Path(best) / "failures.csv"), artifact_path="eval")


def _finished_result(uri: str, run_id: str, name: str, run_dir: Path) -> RunResult:
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    return RunResult(run_id, name, dict(run.data.metrics), None, uri, split=run.data.tags.get("split"))


def checkpoint_config(path: str) -> dict:
    if not (Path(path) / ckpt.CONFIG).is_file():
        raise ZsarError(f"not a zsar checkpoint (no {ckpt.CONFIG}): {path}")
    return ckpt.read_config(path)

