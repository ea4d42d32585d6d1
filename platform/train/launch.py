"""Launching the loop: in this process (`resources.workers=0`, one-worker sweep trials) or under a
Ray Train `TorchTrainer` (each worker runs `train_func`), and turning a user error raised in a
worker back into that error on the driver (`user_error_in`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from zsar.errors import ZsarError
from zsar.track import mlflow_log as track
from zsar.train import checkpoint as ckpt
from zsar.config import ExperimentConfig, from_dict
from zsar.train.inputs import loop_data
from zsar.train.loop import SCORE, PlanInfo, WorkerContext, run_loop
from zsar.train.workers import scaling_kwargs, write_record


def run_in_driver(cfg, info, run_dir, logger, resume_from, feeds):
    from zsar.train.reporter import LocalReporter

    reporter = LocalReporter(run_dir, on_report=logger, keep=cfg.run.checkpoints_to_keep)
    ctx = WorkerContext()
    metrics = run_loop(cfg.to_dict(), info, loop_data(feeds, info, cfg, ctx), reporter, ctx, resume_from=resume_from)
    # LocalReporter keeps no record of its own (latest_checkpoint() is None): the newest complete
    # checkpoint in the run directory is the one to log, or the run's eval tables never reach MLflow.
    return metrics, ckpt.latest_complete(run_dir)[0]


def run_with_ray_train(cfg, info, storage: Path, name: str, logger, resume_from, feeds, callbacks=None):
    """Train under a TorchTrainer. Each worker reads its own rows from `feeds` (zsar.data.order
    decides which), so no Ray Train dataset sharding is involved. `callbacks` (Ray Train
    UserCallbacks) default to the MLflow logger's; a sweep trial passes Tune's report callback."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    score = info.primary_metric
    trainer = TorchTrainer(
        train_func,
        train_loop_config={
            "cfg": cfg.to_dict(),
            "info": info,
            "resume_from": resume_from,
            "feeds": feeds,
            "run_dir": str(storage / name),
        },
        torch_config=TorchConfig(backend="nccl" if cfg.resources.gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            **scaling_kwargs(cfg.resources),
            use_gpu=cfg.resources.gpu,
            resources_per_worker={"CPU": cfg.resources.cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=str(storage),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=cfg.run.checkpoints_to_keep,
                checkpoint_score_attribute=SCORE,  # reported every epoch (the primary metric where evaluated)
                checkpoint_score_order="max",
            ),
            failure_config=ray.train.FailureConfig(max_failures=cfg.run.max_failures),
            callbacks=callbacks if callbacks is not None else [track.make_train_callback(logger)],
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
        ),
    )
    try:
        result = trainer.fit()
    except SystemExit:  # Ray Train's own Ctrl-C handler (SIGTERM reaches it too) aborts the run, then exits
        raise KeyboardInterrupt from None
    except ray.train.TrainingFailedError as e:
        cause = user_error_in(e)
        if cause is not None:
            raise cause from None
        raise
    metrics = dict(result.metrics or {})
    best = None
    if result.best_checkpoints:
        best = max(result.best_checkpoints, key=lambda cm: cm[1].get(score, float("-inf")))[0].path
    elif result.checkpoint is not None:
        best = result.checkpoint.path
    return metrics, best


def user_error_in(error: BaseException) -> ZsarError | None:
    """A ZsarError raised in a worker reaches the driver wrapped; unwrap it for the CLI."""
    seen = set()
    stack = [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ZsarError):
            return e
        stack += [e.__cause__, e.__context__]
        stack += list(getattr(e, "worker_failures", {}).values()) if isinstance(getattr(e, "worker_failures", None), dict) else []
        for attr in ("cause", "error", "controller_failure"):
            stack.append(getattr(e, attr, None) if isinstance(getattr(e, attr, None), BaseException) else None)
    return None

def train_func(config: dict) -> None:
    """Ray Train entry point: record where this worker runs, then run the training loop."""
    import ray
    import ray.train

    if config.get("run_dir"):
        context = ray.train.get_context()
        write_record(config["run_dir"], context.get_world_rank(), context.get_world_size(),
                     ray.get_runtime_context().get_node_id())
    train_func_per_worker(config)


def train_func_per_worker(config: dict) -> None:
    """Ray Train entry point: one call per worker."""
    import ray.train

    from zsar.train.reporter import TrainReporter

    quiet_ray_train_reports()
    context = ray.train.get_context()
    use_gpu = config["cfg"]["resources"]["gpu"] and torch.cuda.is_available()
    local_rank = context.get_local_rank()
    if use_gpu:
        torch.cuda.set_device(local_rank)
    ctx = WorkerContext(
        rank=context.get_world_rank(),
        world_size=context.get_world_size(),
        device=f"cuda:{local_rank}" if use_gpu else "cpu",
        local_rank=local_rank,
    )

    info: PlanInfo = config["info"]
    data = loop_data(config["feeds"], info, from_dict(ExperimentConfig, config["cfg"]), ctx)
    run_loop(config["cfg"], info, data, TrainReporter(), ctx, resume_from=config.get("resume_from"))


def quiet_ray_train_reports() -> None:
    """Ray Train logs every report at INFO under a logger named after its own file, which
    LoggingConfig does not reach; zsar prints its own per-epoch lines instead."""
    import logging

    from ray.train.v2._internal.execution import context as train_context

    logging.getLogger(train_context.__file__).setLevel(logging.WARNING)
