"""The driver: config -> protocol plan -> Ray datasets -> Ray Train -> MLflow.

`run(cfg)` trains (or, with `optim.epochs=0` or an evaluation-only method, evaluates) one config.
`--split all` runs every split of the protocol as a child MLflow run and logs the means on a
parent run. Relaunching a run with the same `run.name` resumes it from its last checkpoint and
continues the same MLflow run.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from zsar.config import ExperimentConfig
from zsar.data.dataset import Part, Plan
from zsar.errors import ConfigError, DataError, ZsarError
from zsar.home import cache_dir, runs_dir
from zsar.registry import DATASETS, METHODS
from zsar.track import mlflow_log as track
from zsar.train import checkpoint as ckpt
from zsar.train.loop import LoopData, WorkerContext, log, plan_info, run_loop


@dataclass
class RunResult:
    run_id: str
    run_name: str
    metrics: dict
    checkpoint: str | None
    tracking_uri: str
    children: list = field(default_factory=list)


def primary_metric(plan: Plan) -> str:
    if plan.selection == "val":  # hyperparameters are selected on held-out training classes
        return "val_hm"
    if plan.kind == "base2novel":
        return "hm"
    gzsl = [p for p in plan.evals if p.seen is not None]
    if gzsl:
        return f"{gzsl[0].prefix}h"
    first = plan.evals[0].prefix
    return f"{first.split('/')[0]}/top1_mean" if first.count("/") == 2 else f"{first}top1"


def build_plan(cfg: ExperimentConfig, split: str) -> Plan:
    from zsar.data.classnames import overlap

    dataset_cls = DATASETS.get(cfg.dataset)
    dataset_cls.check_protocol(cfg.protocol, split)
    plan = dataset_cls(cfg.root).plan(cfg.protocol, split)
    for target in cfg.eval_targets:
        target_cls = DATASETS.get(target.dataset)
        root = target.root or cfg.roots.get(target.dataset)
        if root is None and target_cls.needs_root:
            raise ConfigError(
                f"eval target '{target.dataset}' has no root: --set roots.{target.dataset}=DIR, a root in its "
                f"eval_targets entry, or --set eval_targets=[] to evaluate on none"
            )
        splits = target.splits or [target_cls.check_protocol(target.protocol, None)]
        for target_split in splits:
            target_cls.check_protocol(target.protocol, target_split)
        source = target_cls(root)
        for target_split in splits:
            target_plan = source.plan(target.protocol, target_split)
            name = f"{target.dataset}/{target_split}"
            for part in target_plan.evals:
                prefix = f"{name}/"
                if len(target_plan.evals) > 1:  # e.g. a base-to-novel target: one prefix per part
                    prefix += f"{part.name}_"
                plan.evals.append(Part(f"{name}/{part.name}", part.manifest, part.labels, prefix))
                if plan.train is not None:  # cross-dataset class overlap is part of the protocol: reported, not removed
                    shared = overlap(plan.train.labels.names, part.labels.names)
                    plan.notes.setdefault("cross_dataset_overlap", {})[f"{name}/{part.name}"] = {
                        "classes": shared, "count": len(shared), "of": len(part.labels),
                    }
            if target_plan.notes:
                plan.notes.setdefault("target_notes", {})[name] = target_plan.notes
        shared = plan.notes.get("cross_dataset_overlap", {}).get(f"{target.dataset}/{splits[0]}/test")
        if shared and shared["count"]:
            log(f"{shared['count']} of the {shared['of']} {target.dataset} classes are {cfg.dataset} training classes too "
                f"(part of the published protocol; listed in plan.json)")
        plan.notes.setdefault("eval_targets", []).append({**dataclasses.asdict(target), "root": root})
    if not plan.evals:
        raise ConfigError(f"protocol '{cfg.protocol}' of '{cfg.dataset}' evaluates on eval_targets, and none are set")
    if cfg.text.descriptions:
        from zsar.data.descriptions import attach_descriptions

        attach_descriptions(plan, cfg.text.descriptions)
    from zsar.data.holdout import apply_selection

    return apply_selection(plan, cfg.selection, cfg.seed)


def restrict_to_trained_classes(cfg: ExperimentConfig, plan: Plan) -> Plan:
    """A closed-set method (a classifier) is scored only on parts whose classes it trains on."""
    if not METHODS.get(cfg.method).closed_set or plan.train is None:
        return plan
    known = set(plan.train.labels.names)
    keep = [p for p in plan.evals if set(p.labels.names) <= known]
    skipped = [p.name for p in plan.evals if p not in keep]
    if skipped:
        plan.notes["not_scored_by_closed_set_method"] = skipped
    if not keep:
        raise DataError(f"method '{cfg.method}' scores only its training classes, and no evaluation part of "
                        f"{cfg.dataset}/{cfg.protocol} has only those")
    plan.evals = keep
    return plan


def check_no_unseen_in_checkpoints(cfg: ExperimentConfig, plan: Plan) -> None:
    """Refuse weights (run.init_from, a method's stage-1 encoder) trained on a held-out class."""
    if not plan.unseen:
        return
    method_cls = METHODS.get(cfg.method)
    for path in [cfg.run.init_from, *method_cls.pretrained_checkpoints(cfg.method_config())]:
        if not path:
            continue
        if not Path(path).is_dir():
            raise ZsarError(f"checkpoint not found: {path}")
        classes = ckpt.trained_classes(path)
        if classes is None:
            raise DataError(f"checkpoint {path} does not record its training classes ({ckpt.TRAINED_CLASSES}); "
                            f"cannot verify that it never saw the unseen classes of {plan.dataset}/{plan.split}")
        leaked = sorted(set(classes) & set(plan.unseen))
        if leaked:
            raise DataError(f"checkpoint {path} was trained on classes that {plan.dataset}/{plan.protocol}/{plan.split} "
                            f"holds out ({', '.join(leaked[:5])}); train it under the same split")


def validate(cfg: ExperimentConfig, plan: Plan) -> None:
    method_cls = METHODS.get(cfg.method)
    if method_cls.modality != DATASETS.get(cfg.dataset).modality:
        raise ConfigError(f"method '{cfg.method}' is for {method_cls.modality}, dataset '{cfg.dataset}' is {DATASETS.get(cfg.dataset).modality}")
    for target in cfg.eval_targets:
        if DATASETS.get(target.dataset).modality != method_cls.modality:
            raise ConfigError(f"eval target '{target.dataset}' is {DATASETS.get(target.dataset).modality}, method '{cfg.method}' is for {method_cls.modality}")
    check_no_unseen_in_checkpoints(cfg, plan)
    workers = max(cfg.resources.workers, 1)
    trains = method_cls.trains and cfg.optim.epochs > 0
    if trains:
        if plan.train is None:
            raise DataError(f"protocol '{cfg.protocol}' of '{cfg.dataset}' has no training videos")
        if cfg.optim.batch_size % workers:
            raise ConfigError(f"optim.batch_size={cfg.optim.batch_size} must be divisible by resources.workers={workers}")
        if len(plan.train) // workers < cfg.optim.batch_size // workers:
            raise ConfigError(
                f"optim.batch_size={cfg.optim.batch_size} is larger than the {len(plan.train)} training videos"
            )
    for part in plan.evals:
        if len(part) == 0:
            raise DataError(f"evaluation part '{part.name}' has no videos")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def default_run_name(cfg: ExperimentConfig, split: str) -> str:
    return f"{cfg.method}-{cfg.dataset}-{cfg.protocol}-{split}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(cfg: ExperimentConfig, *, dry_run: bool = False) -> RunResult | dict:
    dataset_cls = DATASETS.get(cfg.dataset)
    split = dataset_cls.check_protocol(cfg.protocol, cfg.split)
    if split != "all":
        return run_split(dataclasses.replace(cfg, split=split), dry_run=dry_run)
    return run_all_splits(cfg, dataset_cls.splits_for_all(cfg.protocol), dry_run=dry_run)


def run_all_splits(cfg: ExperimentConfig, splits, *, dry_run: bool = False):
    from zsar.train.metrics import mean_std

    uri = track.resolve_uri(cfg.tracking.uri)
    name = cfg.run.name or default_run_name(cfg, "all")
    storage = Path(cfg.run.storage or runs_dir())
    parent_id = None
    if not dry_run:
        parent_id, _ = track.start_or_resume(
            storage / name, uri, cfg.tracking.experiment, name, _tags(cfg, "all"), cfg.to_dict()
        )
    children = []
    for split in splits:
        child_cfg = dataclasses.replace(cfg, split=split, run=dataclasses.replace(cfg.run, name=f"{name}-{split}"))
        children.append(run_split(child_cfg, dry_run=dry_run, parent_run_id=parent_id))
    if dry_run:
        return {"splits": children}
    keys = sorted(set.intersection(*(set(track.numeric(c.metrics)) for c in children)) - {"epoch"})
    means = {}
    for key in keys:
        means[f"{key}_mean"], means[f"{key}_std"] = mean_std([c.metrics[key] for c in children])
    track.log_metrics(uri, parent_id, means, step=0)
    track.finish(uri, parent_id)
    return RunResult(parent_id, name, means, None, uri, children)


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


def run_split(cfg: ExperimentConfig, *, dry_run: bool = False, parent_run_id: str | None = None) -> RunResult | dict:
    plan = restrict_to_trained_classes(cfg, build_plan(cfg, cfg.split))
    validate(cfg, plan)
    cfg.method_config()
    summary = {
        "method": cfg.method,
        "dataset": cfg.dataset,
        "protocol": cfg.protocol,
        "split": cfg.split,
        "train_videos": len(plan.train) if plan.train is not None else 0,
        "train_classes": len(plan.train.labels) if plan.train is not None else 0,
        "eval": {p.name: {"videos": len(p), "classes": len(p.labels)} for p in plan.evals},
    }
    if dry_run:
        return summary

    from zsar.ray_runtime import init_ray

    init_ray(cfg.resources.address)
    uri = track.resolve_uri(cfg.tracking.uri)
    name = cfg.run.name or default_run_name(cfg, cfg.split)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, name=name))
    storage = Path(cfg.run.storage or runs_dir())
    run_dir = storage / name
    run_id, resumed = track.start_or_resume(run_dir, uri, cfg.tracking.experiment, name, _tags(cfg, cfg.split), cfg.to_dict(), parent_run_id)
    if resumed and track.run_status(uri, run_id) == "FINISHED":
        log(f"run {name} already finished (MLflow run {run_id}); set run.name to start a new one")
        return _finished_result(uri, run_id, name, run_dir)
    log(f"{'resuming' if resumed else 'starting'} run {name} (MLflow run {run_id} in {uri})")
    resume_from = None
    if resumed:
        resume_from, epoch = ckpt.latest_complete(run_dir)
        complete = [c for c in run_dir.glob("checkpoint_*") if ckpt.is_complete(c)]
        backfilled = track.backfill_from_checkpoints(uri, run_id, complete, epoch)
        if backfilled:
            log(f"logged epochs {backfilled} from checkpoints whose reports were cut off")
    info = plan_info(plan, primary_metric(plan))
    logger = track.MetricsLogger(uri, run_id)
    try:
        if not resumed:
            track.log_params(uri, run_id, METHODS.get(cfg.method).cost_params(cfg))
        datasets, uses = _datasets(cfg, plan)
        if uses:
            track.log_metrics(uri, run_id, _feature_cache_metrics(uses), step=0)
        if cfg.resources.workers == 0:
            metrics, best = _run_in_driver(cfg, info, run_dir, logger, resume_from, datasets)
        else:
            metrics, best = run_with_ray_train(cfg, info, storage, name, logger, resume_from, datasets)
    except BaseException:
        track.finish(uri, run_id, status="FAILED" if not isinstance(sys.exc_info()[1], KeyboardInterrupt) else "KILLED")
        raise
    _log_final(uri, run_id, cfg, plan, metrics, best)
    track.finish(uri, run_id)
    return RunResult(run_id, name, metrics, best, uri)


def _clip_spec(cfg: ExperimentConfig, train: bool):
    """How a manifest part's files become model input (a ClipSpec, or a SkeletonSpec)."""
    if DATASETS.get(cfg.dataset).modality == "skeleton":
        from zsar.data.skeleton import skeleton_spec

        return skeleton_spec(cfg.data, train)
    from zsar.data.pipeline import clip_spec

    return clip_spec(cfg.data, cfg.data.size or _backbone_size(cfg), train)


def _decode(cfg: ExperimentConfig, manifest, spec, train: bool, seed, part: str | None = None):
    """A Ray Dataset of decoded inputs for `manifest`, for the dataset's modality (video: from
    the prepared-clip cache when it holds these clips)."""
    if DATASETS.get(cfg.dataset).modality == "skeleton":
        from zsar.data.skeleton import skeleton_dataset

        return skeleton_dataset(manifest, spec, cfg.data, train=train, seed=seed)
    from zsar.data.pipeline import decoded_dataset

    prepared = _prepared(cfg, manifest, spec, train, part)
    return prepared if prepared is not None else decoded_dataset(manifest, spec, cfg.data, train=train, seed=seed)


def _prepared(cfg: ExperimentConfig, manifest, spec, train: bool, part: str | None):
    if not cfg.data.use_prepared:
        return None
    from zsar.data import prepared

    cache = prepared.PreparedCache(cfg.data.prepared_cache or prepared.default_root())
    return prepared.prepared_dataset(cache, manifest, spec, train=train, clips=cfg.data.prepared_clips, seed=cfg.seed,
                                     part=part and f"{cfg.dataset}/{cfg.protocol}/{cfg.split}/{part}", log=log)


def decode_parts(cfg: ExperimentConfig, plan: Plan) -> list[tuple[str, object, bool]]:
    """(name, manifest, train) of every manifest part a run decodes: "train", "eval/<part>"."""
    parts = []
    if plan.train is not None and METHODS.get(cfg.method).trains and cfg.optim.epochs > 0:
        parts.append(("train", plan.train.manifest, True))
    return parts + [(f"eval/{_safe(p.name)}", p.manifest, False) for p in plan.evals]


def _datasets(cfg: ExperimentConfig, plan: Plan) -> tuple[dict, list]:
    """Ray Datasets by name ("train", "eval/<part>"), and what the feature cache did for each."""
    parts = decode_parts(cfg, plan)
    method_cls = METHODS.get(cfg.method)
    frozen = method_cls.frozen_inputs(cfg.method_config()) if cfg.data.feature_cache else ()
    out, uses = {}, []
    identity = None
    for name, manifest, train in parts:
        spec = _clip_spec(cfg, train)
        if frozen and spec.train:
            log(f"feature cache bypassed for {name}: data.augment draws new training clips every epoch "
                "(data.augment=false makes them cacheable)")
        if frozen and not spec.train:
            if identity is None:  # the weights' fingerprint is part of the key
                from zsar.models.backbone import create_backbone

                identity = create_backbone(cfg.backbone, towers=method_cls.backbone_towers(cfg.method_config())).identity
            ds, use = _cached_features(cfg, name, manifest, spec, frozen, identity)
            uses.append((name, use))
            out[name] = ds.randomize_block_order(seed=cfg.seed) if train else ds
        else:
            out[name] = _decode(cfg, manifest, spec, train, cfg.seed if train else None, part=name)
    return out, uses


def _cached_features(cfg: ExperimentConfig, part: str, manifest, spec, frozen, identity: str):
    """The frozen inputs of `manifest`'s clips from the feature cache, encoded on a miss."""
    import ray.data

    from zsar.data import features

    key = features.feature_key(identity, frozen, manifest, _spec_key(spec))
    what = (f"{', '.join(f.name for f in frozen)} of {cfg.backbone.name} for {cfg.method}: {cfg.dataset} "
            f"{cfg.protocol}/{cfg.split} {part}, {manifest.num_rows} videos")
    gpu = cfg.resources.gpu and ray.cluster_resources().get("GPU", 0) >= 1

    def build(tmp) -> int:
        decoded = _decode(cfg, manifest, spec, False, None, part=part)
        encoded = decoded.map_batches(
            features.FeatureProducer,
            fn_constructor_kwargs={"cfg_dict": cfg.to_dict(), "names": [f.name for f in frozen],
                                   "device": "cuda" if gpu else "cpu"},
            batch_size=cfg.optim.eval_batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=cfg.data.feature_actors),
            num_gpus=1 if gpu else 0,
            num_cpus=1,
        )
        encoded.write_parquet(str(tmp))
        return manifest.num_rows

    return features.FeatureCache(cache_dir("features")).dataset(key, manifest.num_rows, build, what, log=log)


def _spec_key(spec) -> dict:
    """The settings that decide a part's pixels (how frames are read is left out)."""
    from zsar.data.video import READ_ONLY_FIELDS

    return {k: v for k, v in dataclasses.asdict(spec).items() if k not in READ_ONLY_FIELDS}


def _backbone_size(cfg: ExperimentConfig) -> int:
    import open_clip

    from zsar.models.backbone import _add_zsar_configs

    _add_zsar_configs()
    model_cfg = open_clip.get_model_config(cfg.backbone.name)
    if model_cfg is None:
        raise ConfigError(f"backbone.name: unknown backbone '{cfg.backbone.name}'")
    size = model_cfg["vision_cfg"]["image_size"]
    return size[0] if isinstance(size, (list, tuple)) else int(size)


def _feature_cache_metrics(uses) -> dict:
    out = {"time/features_s": sum(u.seconds for _, u in uses)}
    for name, use in uses:
        out[f"features/{name}/hit"] = float(use.hit)
        out[f"features/{name}/encoded"] = float(use.encoded)
    return out


def driver_loop_data(datasets: dict, info, seed: int) -> LoopData:
    """The loop's batches read in this process (a driver run, or a one-worker sweep trial)."""
    epochs = itertools.count()

    def batches(name, train):
        ds = datasets[name]
        if train:  # a seeded shuffle per epoch, so that a config trains the same way again (zsar best)
            return lambda bs: ds.iter_batches(batch_size=bs, batch_format="numpy", drop_last=True,
                                              local_shuffle_buffer_size=4 * bs, local_shuffle_seed=seed * 1000 + next(epochs))
        return lambda bs: ds.iter_batches(batch_size=bs, batch_format="numpy", drop_last=False)

    return LoopData(train=batches("train", True) if "train" in datasets else None,
                    evals={p.name: batches(f"eval/{_safe(p.name)}", False) for p in info.evals})


def _run_in_driver(cfg, info, run_dir, logger, resume_from, datasets):
    from zsar.train.reporter import LocalReporter

    data = driver_loop_data(datasets, info, cfg.seed)
    reporter = LocalReporter(run_dir, on_report=logger, keep=cfg.run.checkpoints_to_keep)
    metrics = run_loop(cfg.to_dict(), info, data, reporter, WorkerContext(), resume_from=resume_from)
    # LocalReporter keeps no record of its own (latest_checkpoint() is None): the newest complete
    # checkpoint in the run directory is the one to log, or the run's eval tables never reach MLflow.
    return metrics, ckpt.latest_complete(run_dir)[0]


def _data_config():
    import ray.train

    class ExactEvalDataConfig(ray.train.DataConfig):
        """Training data splits evenly (equal=True keeps DDP ranks in lockstep); evaluation sets
        split with equal=False, so that no row is dropped or repeated."""

        def configure(self, datasets, world_size, worker_handles, worker_node_ids, **kwargs):
            output = [{} for _ in range(world_size)]
            for name, ds in datasets.items():
                ds = ds.copy(ds)
                ds.context.execution_options = self._resolve_execution_options(name)
                for i, shard in enumerate(ds.streaming_split(world_size, equal=(name == "train"))):
                    output[i][name] = shard
            return output

    return ExactEvalDataConfig()


def run_with_ray_train(cfg, info, storage: Path, name: str, logger, resume_from, datasets, callbacks=None):
    """Train under a TorchTrainer. `callbacks` (Ray Train UserCallbacks) default to the MLflow
    logger's; a sweep trial passes Tune's report callback instead."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from zsar.cluster import workers
    score = info.primary_metric
    trainer = TorchTrainer(
        workers.train_func,
        train_loop_config={
            "cfg": cfg.to_dict(),
            "info": info,
            "resume_from": resume_from,
            "has_train": "train" in datasets,
            "dataset_names": {p.name: f"eval/{_safe(p.name)}" for p in info.evals},
            "run_dir": str(storage / name),
        },
        torch_config=TorchConfig(backend="nccl" if cfg.resources.gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            **workers.scaling_kwargs(cfg.resources),
            use_gpu=cfg.resources.gpu,
            resources_per_worker={"CPU": cfg.resources.cpus_per_worker},
        ),
        datasets=datasets,
        dataset_config=_data_config(),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=str(storage),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=cfg.run.checkpoints_to_keep,
                checkpoint_score_attribute=score,
                checkpoint_score_order="max",
            ),
            failure_config=ray.train.FailureConfig(max_failures=cfg.run.max_failures),
            callbacks=callbacks if callbacks is not None else [track.make_train_callback(logger)],
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
        ),
    )
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as e:
        cause = _user_error_in(e)
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


def _user_error_in(error: BaseException) -> ZsarError | None:
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
        for attr in ("cause", "error"):
            stack.append(getattr(e, attr, None) if isinstance(getattr(e, attr, None), BaseException) else None)
    return None


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
    return RunResult(run_id, name, dict(run.data.metrics), None, uri)


def checkpoint_config(path: str) -> dict:
    if not (Path(path) / ckpt.CONFIG).is_file():
        raise ZsarError(f"not a zsar checkpoint (no {ckpt.CONFIG}): {path}")
    return ckpt.read_config(path)

