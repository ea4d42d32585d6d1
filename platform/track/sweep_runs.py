"""MLflow runs of a sweep, written by a Tune callback on the driver.

One parent run per sweep (the spec, the search space, the seed, the git commit) and one nested
child per trial (tag `mlflow.parentRunId`) with the trial's resolved config as params, every
epoch's metrics, and its final status and error. The run ids live in the Tune experiment
(`zsar_sweep_runs.json` beside Tune's own state), so a resumed sweep continues the same runs.
When no trial runs (a resume starting, the sweep ending) a child still RUNNING is one an
interruption left: it is KILLED; a trial Tune's saved state never held is marked lost.
At the end the parent gets the best trial's resolved config (`best_config.yaml`) and Optuna's
optimisation history, parameter importances and parallel coordinates, as PNG (matplotlib) and as
self-contained HTML pages (the PNG inlined), under `sweep/plots/`.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from pathlib import Path

import ray.tune

from zsar.log import log
from zsar.track import mlflow_log as track
from zsar.track import provenance

STATE = "zsar_sweep_runs.json"
SKIP = {"timestamp", "time_this_iter_s", "time_total_s", "pid", "training_iteration", "iterations_since_restore",
        "time_since_restore", "done", "checkpoint_dir_name", "date", "hostname", "node_ip", "trial_id",
        "experiment_tag", "should_checkpoint", "checkpoint_path"}


def _fs(path: str):
    import pyarrow.fs

    if "://" in path:
        return pyarrow.fs.FileSystem.from_uri(path)
    return pyarrow.fs.LocalFileSystem(), path


def read_state(experiment_path: str) -> dict:
    fs, base = _fs(experiment_path)
    try:
        with fs.open_input_stream(f"{base}/{STATE}") as f:
            return json.loads(f.read().decode())
    except (FileNotFoundError, OSError):
        return {}


def write_state(experiment_path: str, state: dict) -> None:
    fs, base = _fs(experiment_path)
    fs.create_dir(base, recursive=True)
    tmp = f"{base}/{STATE}.tmp"
    with fs.open_output_stream(tmp) as f:
        f.write(json.dumps(state, indent=1).encode())
    fs.move(tmp, f"{base}/{STATE}")


class SweepRuns(ray.tune.Callback):
    """Picklable (Tune keeps it with the experiment): only names and ids, no clients."""

    def __init__(self, spec, uri: str, experiment_path: str, inputs: dict | None = None, config_hash=None):
        """`inputs`: the sweep's inputs record (zsar.train.record); `config_hash(cfg)` completes it
        for each trial's config."""
        self.spec = spec
        self.uri = uri
        self.path = experiment_path
        self.inputs = dict(inputs or {})
        self.config_hash = config_hash
        self.state: dict = {}

    def _record_tags(self, cfg) -> dict:
        rec = dict(self.inputs)
        if self.config_hash is not None:
            rec.update(config_hash=self.config_hash(cfg), seed=str(cfg.seed))
        return provenance.as_tags(rec)

    # ------------------------------------------------------------ lifecycle

    def setup(self, **info):
        self.state = read_state(self.path)
        self.state.setdefault("trials", {})
        if self.state.get("parent") and self._active(self.state["parent"]):
            parent = self.state["parent"]
            track.client(self.uri).update_run(parent, status="RUNNING")
            _drop_tag(track.client(self.uri), parent, "zsar.error")
            self._end_running_children("interrupted; this resume continues the trial if Tune kept it")
            return
        spec = self.spec
        cfg = spec.base_config()
        tags = {"mlflow.runName": spec.name, "zsar.kind": "sweep", "method": spec.method, "dataset": spec.dataset,
                "protocol": spec.protocol, "split": spec.split, "selection": spec.selection,
                "git_commit": track.git_commit(), "zsar.sweep": self.path, **self._record_tags(cfg)}
        exp_id = track.ensure_experiment(self.uri, cfg.tracking.experiment)
        run = track.client(self.uri).create_run(exp_id, tags=tags, run_name=spec.name)
        parent = run.info.run_id
        track.log_params(self.uri, parent, {
            "sweep.seed": spec.seed, "sweep.num_samples": spec.num_samples, "sweep.metric": spec.metric,
            "sweep.mode": spec.mode, "sweep.max_concurrent": spec.max_concurrent,
            "sweep.asha": f"grace_period={spec.grace_period} reduction_factor={spec.reduction_factor} max_t={spec.max_t}",
            "sweep.resources": f"cpus={spec.cpus:g} gpus={spec.gpus:g} workers={spec.workers}",
            **{f"space.{n}": f"{p.kind} {p.values}" for n, p in spec.space.items()},
        })
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "spec.yaml").write_text(Path(spec.path).read_text())
            (Path(tmp) / "space.json").write_text(json.dumps(
                {n: {"key": p.key, p.kind: p.values} for n, p in spec.space.items()}, indent=1))
            (Path(tmp) / "points_to_evaluate.json").write_text(json.dumps(spec.points, indent=1, default=str))
            for name in ("spec.yaml", "space.json", "points_to_evaluate.json"):
                track.client(self.uri).log_artifact(parent, str(Path(tmp) / name), artifact_path="sweep")
        self.state = {"parent": parent, "tracking_uri": self.uri, "trials": {}}
        write_state(self.path, self.state)

    def _active(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            return track.client(self.uri).get_run(run_id).info.lifecycle_stage == "active"
        except MlflowException as e:  # a reset store: start over
            log(f"sweep parent run {run_id} is not in {self.uri} ({e.error_code}): starting a new parent run")
            return False

    def _end_running_children(self, reason: str) -> None:
        """KILLED, with `reason` as zsar.error, for every child still RUNNING: when no trial runs
        (before a resume starts, after the sweep stops) a RUNNING child is one an interrupted sweep
        left, including one created for a trial whose id never reached the state file."""
        c = track.client(self.uri)
        parent = self.state["parent"]
        experiment = c.get_run(parent).info.experiment_id
        running = c.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}' and "
                                "attributes.status = 'RUNNING'", max_results=1000)
        for run in running:
            c.set_tag(run.info.run_id, "zsar.error", reason)
            c.set_terminated(run.info.run_id, status="KILLED")

    def on_trial_start(self, iteration, trials, trial, **info):
        entry = self.state["trials"].get(trial.trial_id)
        if entry is not None:  # a resumed trial: the same child run
            entry["starts"] = entry.get("starts", 1) + 1
            entry.pop("status", None) if entry.get("status") == "LOST" else None
            track.client(self.uri).update_run(entry["run_id"], status="RUNNING")
            write_state(self.path, self.state)
            return
        spec = self.spec
        cfg = spec.trial_config(trial.config)
        # creation order (trial 0 is the preset's values), not start order: concurrent trials start in either order
        index = next((i for i, t in enumerate(trials) if t.trial_id == trial.trial_id), len(self.state["trials"]))
        name = f"{spec.name}-{index:03d}-{trial.trial_id}"
        tags = {"mlflow.runName": name, "mlflow.parentRunId": self.state["parent"], "zsar.kind": "sweep_trial",
                "zsar.trial_id": trial.trial_id, "zsar.trial_index": str(index), "zsar.swept": ",".join(spec.space),
                "zsar.selection_metric": spec.metric, "method": cfg.method, "dataset": cfg.dataset,
                "protocol": cfg.protocol, "split": cfg.split, "selection": cfg.selection, "git_commit": track.git_commit(),
                **self._record_tags(cfg)}
        exp_id = track.ensure_experiment(self.uri, cfg.tracking.experiment)
        run_id = track.client(self.uri).create_run(exp_id, tags=tags, run_name=name).info.run_id
        track.log_params(self.uri, run_id, cfg.to_dict())
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "config.yaml").write_text(cfg.to_yaml())
            track.client(self.uri).log_artifact(run_id, str(Path(tmp) / "config.yaml"))
        self.state["trials"][trial.trial_id] = {"run_id": run_id, "index": index, "params": _plain(trial.config),
                                                "last_step": 0, "starts": 1}
        write_state(self.path, self.state)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        entry = self.state["trials"].get(trial.trial_id)
        if entry is None:
            return
        step = int(result.get("training_iteration", 0))
        if step <= entry["last_step"]:  # replayed after a resume: logged already
            return
        metrics = {k: v for k, v in track.numeric(result).items() if k not in SKIP}
        track.log_metrics(self.uri, entry["run_id"], metrics, step=int(result.get("epoch", step)))
        entry["last_step"] = step
        entry["last"] = {self.spec.metric: result.get(self.spec.metric), "epochs": step}
        write_state(self.path, self.state)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, "FAILED")

    def _finish(self, trial, status: str):
        entry = self.state["trials"].get(trial.trial_id)
        if entry is None or entry.get("status"):
            return
        run_id = entry["run_id"]
        c = track.client(self.uri)
        result = trial.last_result or {}
        epochs = int(result.get("training_iteration", 0))
        if status == "FINISHED":
            final = {f"final/{k}": v for k, v in track.numeric(result).items() if k not in SKIP and k != "epoch"}
            track.log_metrics(self.uri, run_id, final, step=int(result.get("epoch", epochs)))
            stopped = epochs < self.spec.max_t
            _drop_tag(c, run_id, "zsar.error")  # from an interruption this resume recovered from
            c.set_tag(run_id, "zsar.stopped_early", str(stopped).lower())
            c.set_tag(run_id, "zsar.trial_status", "stopped by ASHA" if stopped else "completed")
        else:
            error = trial_error(trial)
            c.set_tag(run_id, "zsar.error", error[:5000])
            c.set_tag(run_id, "zsar.trial_status", "failed")
            entry["error"] = error
        c.set_terminated(run_id, status=status)
        entry["status"] = status
        entry["epochs"] = epochs
        write_state(self.path, self.state)

    def on_experiment_end(self, trials, **info):
        parent = self.state.get("parent")
        if not parent:
            return
        c = track.client(self.uri)
        spec = self.spec
        self._end_running_children("interrupted; `zsar sweep --resume` continues the trial")
        self._mark_lost({t.trial_id for t in trials})
        done = [(tid, e) for tid, e in self.state["trials"].items() if e.get("status") == "FINISHED"
                and _finite((e.get("last") or {}).get(spec.metric))]
        full = [(tid, e) for tid, e in done if e.get("epochs", 0) >= spec.max_t] or done
        if full:
            self._log_best(c, parent, full)
        counts = trial_counts(self.state)
        old = {k for k in c.get_run(parent).data.tags if k.startswith("zsar.trials_")}
        new_tags = {f"zsar.trials_{status}": str(n) for status, n in counts.items() if n}
        for key in old - set(new_tags):  # rewritten on resume: no stale count (e.g. trials_unfinished) stays
            c.delete_tag(parent, key)
        for key, value in new_tags.items():
            c.set_tag(parent, key, value)
        try:
            self._plots(parent)
        except Exception as e:  # noqa: BLE001 - plots never fail a finished sweep
            log(f"warning: sweep plots not made: {e}")
            c.set_tag(parent, "zsar.plots_error", str(e)[:500])
        finished_all = not counts["unfinished"] and counts["finished"] + counts["failed"] >= spec.num_samples
        if not finished_all:
            c.set_tag(parent, "zsar.error", f"interrupted after {counts['finished'] + counts['failed']} of "
                      f"{spec.num_samples} trials; `zsar sweep --resume` continues it")
        c.set_terminated(parent, status=("FINISHED" if done else "FAILED") if finished_all else "KILLED")
        write_state(self.path, self.state)

    def _mark_lost(self, tune_ids: set) -> None:
        """A trial with a child run but unknown to Tune (Tune's saved state predates it, so a
        resume never runs it): its child is KILLED and it no longer counts; Tune's searcher asks for
        a new trial in its place, with its own child."""
        c = track.client(self.uri)
        for tid, entry in self.state["trials"].items():
            if not entry.get("status") and tid not in tune_ids:
                entry["status"] = "LOST"
                c.set_tag(entry["run_id"], "zsar.trial_status", "lost: not in Tune's saved state, replaced by a new trial")

    def _log_best(self, c, parent: str, full: list) -> None:
        spec = self.spec
        sign = 1 if spec.mode == "max" else -1
        # ties (small validation sets give equal scores) go to the earliest trial
        tid, best = max(full, key=lambda kv: (sign * kv[1]["last"][spec.metric], -kv[1].get("index", 0)))
        cfg = spec.trial_config(best["params"])
        cfg.run.name = None
        text = cfg.to_yaml()
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "best_config.yaml").write_text(text)
            c.log_artifact(parent, str(Path(tmp) / "best_config.yaml"))
        key = f"best/{spec.metric}"
        history = c.get_metric_history(parent, key)
        value = best["last"][spec.metric]
        if not history or history[-1].value != value:  # a resume that found a better trial: the next step
            track.log_metrics(self.uri, parent, {key: value}, step=max((m.step for m in history), default=-1) + 1)
        c.set_tag(parent, "zsar.best_run_id", best["run_id"])
        c.set_tag(parent, "zsar.best_trial_id", tid)
        self.state["best"] = {"trial_id": tid, "run_id": best["run_id"], "params": best["params"],
                              "value": value, "config_yaml": text}

    # ------------------------------------------------------------ plots

    def study(self):
        """An Optuna study holding the sweep's trials (for Optuna's plots)."""
        import optuna

        spec = self.spec
        study = optuna.create_study(direction="maximize" if spec.mode == "max" else "minimize")
        dists = spec.optuna_space()
        for e in sorted(self.state["trials"].values(), key=lambda e: e["index"]):
            value = (e.get("last") or {}).get(spec.metric)
            ok = e.get("status") == "FINISHED" and _finite(value)
            params = {k: v for k, v in e["params"].items() if k in dists}
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions={k: dists[k] for k in params},
                value=float(value) if ok else None,
                state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL,
            ))
        return study

    def _plots(self, parent: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import optuna.visualization.matplotlib as ovm

        study = self.study()
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        plots = {"optimization_history": ovm.plot_optimization_history}
        if len(complete) >= 2 and len(self.spec.space) >= 1:
            plots["param_importances"] = ovm.plot_param_importances
            plots["parallel_coordinate"] = ovm.plot_parallel_coordinate
        c = track.client(self.uri)
        with tempfile.TemporaryDirectory() as tmp:
            for name, fn in plots.items():
                try:
                    ax = fn(study)
                except Exception as e:  # noqa: BLE001 - e.g. importances of constant parameters
                    c.set_tag(parent, f"zsar.plot_skipped.{name}", str(e)[:300])
                    continue
                fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
                png = Path(tmp) / f"{name}.png"
                fig.savefig(png, dpi=100, bbox_inches="tight")
                plt.close(fig)
                html = Path(tmp) / f"{name}.html"
                html.write_text(_html(name, png.read_bytes(), study, self.spec.metric))
                c.log_artifact(parent, str(png), artifact_path="sweep/plots")
                c.log_artifact(parent, str(html), artifact_path="sweep/plots")


def _html(name: str, png: bytes, study, metric: str) -> str:
    """A page with no external resource: the plot inlined, and the trials as a table."""
    rows = "".join(
        f"<tr><td>{t.number}</td><td>{t.state.name}</td><td>{'' if t.value is None else f'{t.value:.4g}'}</td>"
        f"<td>{', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in t.params.items())}</td></tr>"
        for t in study.trials
    )
    data = base64.b64encode(png).decode()
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title></head><body>"
            f"<h1>{name.replace('_', ' ')}</h1><img alt='{name}' src='data:image/png;base64,{data}'>"
            f"<table border='1'><tr><th>trial</th><th>state</th><th>{metric}</th><th>params</th></tr>{rows}</table>"
            "</body></html>")


def trial_counts(state: dict) -> dict:
    """finished (ASHA's early stops included), failed and unfinished trials of a sweep's state;
    trials Tune lost (replaced by new ones) are not counted."""
    counts = {"finished": 0, "failed": 0, "unfinished": 0}
    for entry in state.get("trials", {}).values():
        status = entry.get("status")
        if status != "LOST":
            counts[{"FINISHED": "finished", "FAILED": "failed"}.get(status, "unfinished")] += 1
    return counts


def _drop_tag(c, run_id: str, key: str) -> None:
    if key in c.get_run(run_id).data.tags:
        c.delete_tag(run_id, key)


def trial_error(trial) -> str:
    text = ""
    try:  # the local copy first: the one in storage may not be synced yet
        if trial.error_file and Path(trial.error_file).is_file():
            text = Path(trial.error_file).read_text()
        else:
            text = str(trial.get_error() or "")
    except Exception as e:  # noqa: BLE001 - the message is best effort
        text = f"error (its message could not be read: {e})"
    text = text or "error (no message recorded)"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    causes = [line for line in lines if "Error:" in line and not line.startswith(" ")]
    return (causes[-1] if causes else lines[-1] if lines else text)[:500]


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _plain(config: dict) -> dict:
    return json.loads(json.dumps(config, default=str))


