"""MLflow, written from the driver side only.

Workers never touch MLflow: they report through Ray, and a driver-side callback (or the driver
itself) logs. One writer means no SQLite lock fights; the MLflow run id lives next to the Ray run
(`zsar_run.json` in the run directory), so a relaunched or resumed run continues the same MLflow
run instead of creating a duplicate. `ends_run` ends every run FINISHED, FAILED or KILLED with the
error as `zsar.error`. New experiments of a SQLite store keep their artifacts in `mlartifacts/`
beside the database (ZSAR_HOME for the default store), never in the current folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
from pathlib import Path

from zsar.home import tracking_uri as default_tracking_uri
from zsar.log import log

RUN_FILE = "zsar_run.json"
UNLOGGED = {"checkpoint_score"}  # Ray Train's checkpoint ranking key, not a result


def resolve_uri(cfg_uri: str | None = None) -> str:
    return cfg_uri or default_tracking_uri()


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def artifact_root(uri: str) -> str | None:
    """Where a new experiment's artifacts go: beside a SQLite store (`mlartifacts/` next to the
    database, so ZSAR_HOME/mlartifacts for the default store), never the current folder; None (the
    server decides) for a tracking server."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).expanduser().resolve().parent / "mlartifacts").as_uri()
    return None


def _experiment_location(uri: str, name: str) -> str | None:
    from urllib.parse import quote

    root = artifact_root(uri)
    return f"{root}/{quote(name, safe='')}" if root else None


_reported_locations: set[str] = set()


def _report_cwd_location(name: str, location: str) -> None:
    """One line, once per process, for an experiment whose artifacts land in a folder's mlruns."""
    if "mlruns" not in location or location in _reported_locations:
        return
    _reported_locations.add(location)
    log(f"warning: experiment '{name}' keeps its artifacts in {location} (a folder's mlruns, made by an older zsar); "
        "they are not moved: use a new tracking.experiment to keep them under ZSAR_HOME")


def ensure_experiment(uri: str, name: str) -> str:
    """The experiment id, creating the experiment once (before any parallel writer starts)."""
    from mlflow.exceptions import MlflowException

    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        _report_cwd_location(name, exp.artifact_location or "")
        return exp.experiment_id
    try:
        return c.create_experiment(name, artifact_location=_experiment_location(uri, name))
    except MlflowException:  # created concurrently by another driver
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def git_commit() -> str:
    """The checkout's commit (`-dirty` when tracked files differ from it); on a cluster job, where
    there is no .git, the one `zsar submit` passed (ZSAR_GIT_COMMIT)."""
    if os.environ.get("ZSAR_GIT_COMMIT"):
        return os.environ["ZSAR_GIT_COMMIT"]
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5).stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=here, capture_output=True, timeout=10).returncode
        return f"{sha}-dirty" if dirty == 1 else sha
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout (an installed wheel)
        return "unknown"


def numeric(metrics: dict) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


def log_metrics(uri: str, run_id: str, metrics: dict, step: int) -> None:
    from mlflow.entities import Metric
    import time

    now = int(time.time() * 1000)
    batch = [Metric(k, v, now, step) for k, v in numeric(metrics).items() if k not in UNLOGGED]
    for i in range(0, len(batch), 900):
        client(uri).log_batch(run_id, metrics=batch[i : i + 900])


def log_params(uri: str, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in flatten(params).items()]
    for i in range(0, len(items), 90):
        client(uri).log_batch(run_id, params=items[i : i + 90])


def start_or_resume(run_dir: Path, uri: str, experiment: str, run_name: str, tags: dict, params: dict, parent_run_id: str | None = None) -> tuple[str, bool]:
    """(run_id, resumed): the MLflow run recorded in `run_dir`, or a new one."""
    run_file = Path(run_dir) / RUN_FILE
    c = client(uri)
    if run_file.is_file():
        info = json.loads(run_file.read_text())
        if info.get("tracking_uri") == uri:
            run = _recorded_run(c, info["run_id"])
            if run is not None and run.info.lifecycle_stage == "active":
                if run.info.status != "FINISHED":
                    c.update_run(info["run_id"], status="RUNNING")
                return info["run_id"], True
            log(f"MLflow run {info['run_id']} of {run_dir} is {'deleted' if run else 'not in ' + uri}: starting a new one")
    exp_id = ensure_experiment(uri, experiment)
    all_tags = {"mlflow.runName": run_name, **{k: str(v) for k, v in tags.items()}}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = c.create_run(exp_id, tags=all_tags, run_name=run_name)
    log_params(uri, run.info.run_id, params)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps({"run_id": run.info.run_id, "tracking_uri": uri, "experiment": experiment}))
    return run.info.run_id, False


def _recorded_run(c, run_id: str):
    """The run, or None when the store does not hold it (a reset store); other errors propagate."""
    from mlflow.exceptions import MlflowException

    try:
        return c.get_run(run_id)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def child_runs(uri: str, run_id: str) -> list[tuple[str, str]]:
    """(split, run id) of the runs whose parent is `run_id` (a `--split all` run's splits)."""
    c = client(uri)
    try:
        experiment = c.get_run(run_id).info.experiment_id
    except Exception:  # noqa: BLE001 - an unknown id: the caller's own lookup says so
        return []
    runs = c.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{run_id}'", max_results=1000)
    return sorted((r.data.tags.get("split", "?"), r.info.run_id) for r in runs)


def run_status(uri: str, run_id: str) -> str:
    return client(uri).get_run(run_id).info.status


def finish(uri: str, run_id: str, status: str = "FINISHED", error: str | None = None) -> None:
    if error:
        client(uri).set_tag(run_id, "zsar.error", error[:5000])
    client(uri).set_terminated(run_id, status=status)


def error_text(exc: BaseException) -> str:
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return "interrupted (SIGINT or SIGTERM)"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@contextlib.contextmanager
def ends_run(uri: str, run_id: str):
    """The run ends FINISHED when the block completes, KILLED when it is interrupted (Ctrl-C, or
    SIGTERM turned into KeyboardInterrupt by the CLI), FAILED on any other error, with the error as
    the tag `zsar.error`. A run is never left RUNNING by zsar."""
    try:
        yield
    except BaseException as e:
        killed = isinstance(e, (KeyboardInterrupt, SystemExit))
        try:
            finish(uri, run_id, "KILLED" if killed else "FAILED", error_text(e))
        except Exception as store_error:  # the store itself failed: say so, keep the run's own error
            log(f"warning: could not mark MLflow run {run_id} {'KILLED' if killed else 'FAILED'}: {store_error}")
        raise
    finish(uri, run_id)


class MetricsLogger:
    """Logs each report (step = epoch). Picklable: it is handed to Ray Train's controller."""

    def __init__(self, uri: str, run_id: str):
        self.uri = uri
        self.run_id = run_id

    def __call__(self, metrics: dict, checkpoint_path: str | None = None) -> None:
        log_metrics(self.uri, self.run_id, metrics, int(metrics.get("epoch", 0)))


def backfill_from_checkpoints(uri: str, run_id: str, checkpoints: list[Path], up_to_epoch: int) -> list[int]:
    """Log the metrics of checkpoints (epochs <= `up_to_epoch`, the one resumed from) whose report
    never reached MLflow: the run stopped between persisting a checkpoint and logging it."""
    logged = {m.step for m in client(uri).get_metric_history(run_id, "epoch")}
    done = []
    for metrics_file in sorted(Path(c) / "metrics.json" for c in checkpoints):
        if not metrics_file.is_file():
            continue
        metrics = json.loads(metrics_file.read_text())
        epoch = int(metrics.get("epoch", 0))
        if 0 < epoch <= up_to_epoch and epoch not in logged:
            log_metrics(uri, run_id, metrics, epoch)
            logged.add(epoch)
            done.append(epoch)
    return done


def make_train_callback(logger: MetricsLogger):
    """A Ray Train `UserCallback` that runs on the driver's node (in the Train controller)."""
    import ray.train

    class MLflowTrainCallback(ray.train.UserCallback):
        def __init__(self, log):
            self.log = log

        def after_report(self, run_context, metrics, checkpoint):
            self.log(metrics[0], checkpoint.path if checkpoint else None)

    return MLflowTrainCallback(logger)
