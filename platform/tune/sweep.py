"""A sweep: a Ray Tune `Tuner` with OptunaSearch (TPE, seeded) and ASHA over one spec.

Every trial is one training run of the spec's config with sampled hyperparameters. A trial with
one worker runs the training loop inside the trial and reports each epoch through `TuneReporter`;
a trial with `resources.workers > 1` launches a `TorchTrainer` from the trial, whose reports reach
Tune through `TuneReportCallback`. Either way every epoch's metrics reach ASHA.

The data is decoded once on the driver when no swept parameter changes it (no `data.*` or
`backbone.*` key in the space): clips that are the same every epoch are materialised in Ray's
object store and every trial reads them; augmented training clips are decoded per epoch, as in a
plain run. MLflow is written from the driver only (`zsar.track.sweep_runs`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from zsar.errors import ConfigError, ZsarError
from zsar.track.sweep_runs import trial_error
from zsar.train.reporter import check_finite
from zsar.tune.spec import SweepSpec, load_spec

TUNE_KEYS = {"timestamp", "time_this_iter_s", "time_total_s", "pid", "training_iteration", "iterations_since_restore",
             "time_since_restore", "done", "checkpoint_dir_name", "date", "hostname", "node_ip", "trial_id",
             "experiment_tag", "should_checkpoint", "checkpoint_path"}


@dataclass
class SweepResult:
    path: str  # the Tune experiment
    parent_run_id: str | None
    best_params: dict | None
    best_metric: float | None
    metric: str
    trials: dict  # finished / failed / unfinished -> count
    best_config_yaml: str | None = None
    fit_s: float = 0.0  # wall time of the trials (Tuner.fit), data preparation excluded
    interrupted: bool = False  # stopped (SIGINT, SIGTERM) before every trial ended: `--resume` continues it


def data_is_swept(spec: SweepSpec) -> bool:
    return any(p.key.startswith(("data.", "backbone.")) for p in spec.space.values())


def check_resources(spec: SweepSpec) -> None:
    """One clear error when no node of the cluster could ever hold one trial's worker."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    need = {"CPU": spec.cpus, "GPU": spec.gpus}
    fits = [n for n in nodes if all(n.get(k, 0.0) >= v for k, v in need.items() if v)]
    if not fits:
        have = ", ".join(f"{n.get('CPU', 0):g} CPU / {n.get('GPU', 0):g} GPU" for n in nodes) or "none"
        raise ConfigError(f"resources: a trial worker needs {spec.cpus:g} CPU and {spec.gpus:g} GPU, and no node has that "
                          f"(nodes: {have}); lower resources.cpus / resources.gpus or join a larger cluster (--address)")
    if spec.workers > 1:
        slots = sum(min(math.floor(n.get("CPU", 0) / spec.cpus) if spec.cpus else spec.workers,
                        math.floor(n.get("GPU", 0) / spec.gpus) if spec.gpus else spec.workers) for n in nodes)
        if slots < spec.workers:
            raise ConfigError(f"resources: a trial needs {spec.workers} workers of {spec.cpus:g} CPU / {spec.gpus:g} GPU and "
                              f"the cluster holds {slots}; lower resources.workers")


class FiniteReporter:
    """Fails the trial (not the sweep) on a NaN or infinite loss or selection metric."""

    def __init__(self, inner, metric: str):
        self.inner = inner
        self.metric = metric

    def report(self, metrics, checkpoint_dir):
        check_finite(metrics, self.metric)
        self.inner.report(metrics, checkpoint_dir)

    def latest_checkpoint(self):
        return self.inner.latest_checkpoint()


def _finite_train_callback(metric: str):
    import ray.train

    class FiniteCallback(ray.train.UserCallback):
        def after_report(self, run_context, metrics, checkpoint):
            check_finite(metrics[0], metric)

    return FiniteCallback()


def trial_main(config: dict, *, spec: SweepSpec, plan, info, feeds) -> None:
    """One Tune trial: the spec's config with `config` (sampled values) trained and evaluated."""
    import ray.tune

    from zsar.train.inputs import build_feeds, loop_data
    from zsar.train.launch import run_with_ray_train
    from zsar.train.loop import WorkerContext, run_loop
    from zsar.train.reporter import TuneReporter

    from ray.data import DataContext

    # A reused actor waits this long for the previous trial's thread to end (Tune's default, 2 s,
    # is shorter than a loaded machine needs to tear down a trial, and the next trial then fails).
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "60")

    data_ctx = DataContext.get_current()  # zsar prints its own lines; one per Ray Data run is noise here
    data_ctx.enable_progress_bars = False
    data_ctx.print_on_execution_start = False
    cfg = spec.trial_config(config)
    if feeds is None:  # the space changes decoding: this trial's own feeds
        feeds, _ = build_feeds(cfg, plan)
    if cfg.resources.workers == 0:
        ctx = WorkerContext()
        run_loop(cfg.to_dict(), info, loop_data(feeds, info, cfg, ctx), FiniteReporter(TuneReporter(), spec.metric), ctx)
        return
    from ray.tune.integration.ray_train import TuneReportCallback

    trial_dir = Path(ray.tune.get_context().get_trial_dir())
    run_with_ray_train(cfg, info, trial_dir, "train", None, None, feeds,
                       callbacks=[_finite_train_callback(spec.metric), TuneReportCallback()])


class TrialLines:
    """One line per finished trial, beside Tune's own table."""

    def __new__(cls, metric: str):
        import ray.tune

        class _Lines(ray.tune.Callback):
            def on_trial_complete(self, iteration, trials, trial, **info):
                result = trial.last_result or {}
                value = result.get(metric)
                done = sum(t.status in ("TERMINATED", "ERROR") or t is trial for t in trials)  # this one's status is set after
                params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(trial.config.items()))
                sys.stderr.write(f"[zsar] trial {trial.trial_id} finished ({done}/{len(trials)}): {metric}="
                                 f"{_short(value)} after {result.get('training_iteration', 0)} epoch(s); {params}\n")

            def on_trial_error(self, iteration, trials, trial, **info):
                sys.stderr.write(f"[zsar] trial {trial.trial_id} FAILED: {trial_error(trial)}\n")

        return _Lines()


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def experiment_path(spec: SweepSpec, storage: str | None) -> tuple[str, str]:
    from zsar.home import zsar_home

    root = storage or str(Path(zsar_home()) / "sweeps")
    if "://" not in root:
        root = str(Path(root).resolve())
    return root, f"{root.rstrip('/')}/{spec.name}"


def run_sweep(spec_path: str | Path, *, trials: int | None = None, resume: bool = False, address: str | None = None,
              storage: str | None = None, root: str | None = None, verbose: int = 1) -> SweepResult:
    import ray.tune

    from zsar.ray_runtime import init_ray
    from zsar.track import mlflow_log as track
    from zsar.track.sweep_runs import SweepRuns
    from zsar.log import log
    from zsar.train.loop import plan_info
    from zsar.train import record
    from zsar.train.inputs import build_feeds
    from zsar.train.plan import checked_plan
    from zsar.train.preflight import preflight

    spec = load_spec(spec_path, trials=trials, root=root)
    base = spec.base_config()
    plan = checked_plan(base, base.split)
    init_ray(address)
    check_resources(spec)
    storage_root, path = experiment_path(spec, storage)
    if resume and not ray.tune.Tuner.can_restore(path):
        raise ConfigError(f"nothing to resume at {path}; run without --resume to start the sweep")
    if not resume and ray.tune.Tuner.can_restore(path):
        raise ConfigError(f"a sweep named '{spec.name}' exists at {path}: --resume to continue it, or set `name:` in the spec")
    uri = track.resolve_uri(base.tracking.uri)
    track.ensure_experiment(uri, base.tracking.experiment)  # once, before trials run in parallel

    info = plan_info(plan, spec.metric, *preflight(base, plan))  # every video probed before any trial
    t0 = time.time()
    feeds = None if data_is_swept(spec) else build_feeds(base, plan)[0]
    log(f"sweep {spec.name}: {spec.num_samples} trials of {spec.method} on {spec.dataset}/{spec.protocol}/{spec.split}, "
        f"selecting on {spec.metric} ({spec.mode}, selection={spec.selection}); data ready in {time.time() - t0:.1f}s")
    trainable = ray.tune.with_parameters(trial_main, spec=spec, plan=plan if feeds is None else None, info=info,
                                         feeds=feeds)
    if spec.workers > 1:  # the trial only drives a TorchTrainer, whose workers hold the resources
        resources = {"cpu": 0.1}
    else:
        resources = {"cpu": spec.cpus, "gpu": spec.gpus}
    trainable = ray.tune.with_resources(trainable, resources)

    if resume:
        tuner = ray.tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=False)
        log(f"resuming sweep {path}")
    else:
        callbacks = [SweepRuns(spec, uri, path, inputs=record.record(base, plan), config_hash=record.config_hash),
                     TrialLines(spec.metric)]
        tuner = _new_tuner(spec, trainable, storage_root, callbacks, verbose)
    t_fit = time.time()
    grid = tuner.fit()
    fit_s = time.time() - t_fit
    from zsar.track.sweep_runs import read_state, trial_counts

    state = read_state(path)
    counts = trial_counts(state)
    interrupted = counts["unfinished"] > 0 or counts["finished"] + counts["failed"] < spec.num_samples
    if not interrupted and counts["finished"] == 0:
        first = next((r.error for r in grid if r.error), None)
        raise ZsarError(f"every trial of sweep {spec.name} failed; first error: {_first_line(first)}")
    best = state.get("best") or {}
    return SweepResult(path, state.get("parent"), best.get("params"), best.get("value"), spec.metric, counts,
                       best.get("config_yaml"), fit_s, interrupted)


def _new_tuner(spec: SweepSpec, trainable, storage_root: str, callbacks: list, verbose: int):
    """Optuna's TPE (seeded, with the preset and the spec's points first) under a concurrency
    limit, ASHA on training iterations (epochs)."""
    import optuna
    import ray.tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(space=spec.optuna_space(), metric=spec.metric, mode=spec.mode, points_to_evaluate=spec.points,
                            sampler=optuna.samplers.TPESampler(seed=spec.seed))
    scheduler = ASHAScheduler(time_attr="training_iteration", metric=spec.metric, mode=spec.mode, max_t=spec.max_t,
                              grace_period=min(spec.grace_period, spec.max_t), reduction_factor=spec.reduction_factor)
    return ray.tune.Tuner(
        trainable,
        tune_config=ray.tune.TuneConfig(
            num_samples=spec.num_samples,
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent),
            # one-worker trials reuse their actor (no new process, no re-imports per trial);
            # a multi-worker trial tears down its own TorchTrainer, so it gets a fresh one
            scheduler=scheduler, reuse_actors=spec.workers == 1,
        ),
        run_config=ray.tune.RunConfig(
            name=spec.name, storage_path=storage_root, verbose=verbose, callbacks=callbacks,
            checkpoint_config=ray.tune.CheckpointConfig(num_to_keep=1),
            failure_config=ray.tune.FailureConfig(max_failures=0),
        ),
    )


def _first_line(error) -> str:
    text = str(error or "").strip().splitlines()
    causes = [line for line in text if "Error:" in line]
    return (causes[-1] if causes else text[-1] if text else "unknown")[:400]


