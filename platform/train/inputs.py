"""A checked plan -> the Ray Datasets a run reads: decoded clips (live, or from the prepared-clip
cache) or a frozen encoder's outputs from the feature cache.

Datasets are named "train" and "eval/<part>" (`dataset_name`). `build_datasets` is what a run and
a sweep call; `prepare_clips` (`zsar prepare`) writes the same parts into the prepared-clip cache.
"""

from __future__ import annotations

import dataclasses
import itertools
import re

from zsar.config import ExperimentConfig
from zsar.errors import ConfigError
from zsar.data.dataset import Plan
from zsar.home import cache_dir
from zsar.log import log
from zsar.registry import DATASETS, METHODS
from zsar.train.loop import LoopData


def dataset_name(part_name: str) -> str:
    """A part's name made safe for a dataset/file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part_name)


def part_spec(cfg: ExperimentConfig, train: bool):
    """How a manifest part's files become model input (a ClipSpec, or a SkeletonSpec)."""
    if DATASETS.get(cfg.dataset).modality == "skeleton":
        from zsar.data.skeleton import skeleton_spec

        return skeleton_spec(cfg.data, train)
    from zsar.data.pipeline import clip_spec

    return clip_spec(cfg.data, cfg.data.size or backbone_size(cfg), train)


def decode(cfg: ExperimentConfig, manifest, spec, train: bool, seed, part: str | None = None):
    """A Ray Dataset of decoded inputs for `manifest`, for the dataset's modality (video: from
    the prepared-clip cache when it holds these clips)."""
    if DATASETS.get(cfg.dataset).modality == "skeleton":
        from zsar.data.skeleton import skeleton_dataset

        return skeleton_dataset(manifest, spec, cfg.data, train=train, seed=seed)
    from zsar.data.pipeline import decoded_dataset

    prepared = prepared_clips(cfg, manifest, spec, train, part)
    return prepared if prepared is not None else decoded_dataset(manifest, spec, cfg.data, train=train, seed=seed)


def prepared_clips(cfg: ExperimentConfig, manifest, spec, train: bool, part: str | None):
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
    return parts + [(f"eval/{dataset_name(p.name)}", p.manifest, False) for p in plan.evals]


def build_datasets(cfg: ExperimentConfig, plan: Plan) -> tuple[dict, list]:
    """Ray Datasets by name ("train", "eval/<part>"), and what the feature cache did for each."""
    parts = decode_parts(cfg, plan)
    method_cls = METHODS.get(cfg.method)
    frozen = method_cls.frozen_inputs(cfg.method_config()) if cfg.data.feature_cache else ()
    out, uses = {}, []
    identity = None
    for name, manifest, train in parts:
        spec = part_spec(cfg, train)
        if frozen and spec.train:
            log(f"feature cache bypassed for {name}: data.augment draws new training clips every epoch "
                "(data.augment=false makes them cacheable)")
        if frozen and not spec.train:
            if identity is None:  # the weights' fingerprint is part of the key
                from zsar.models.backbone import create_backbone

                identity = create_backbone(cfg.backbone, towers=method_cls.backbone_towers(cfg.method_config())).identity
            ds, use = cached_features(cfg, name, manifest, spec, frozen, identity)
            uses.append((name, use))
            out[name] = ds.randomize_block_order(seed=cfg.seed) if train else ds
        else:
            out[name] = decode(cfg, manifest, spec, train, cfg.seed if train else None, part=name)
    return out, uses


def cached_features(cfg: ExperimentConfig, part: str, manifest, spec, frozen, identity: str):
    """The frozen inputs of `manifest`'s clips from the feature cache, encoded on a miss."""
    import ray.data

    from zsar.data import features

    key = features.feature_key(identity, frozen, manifest, spec_key(spec))
    what = (f"{', '.join(f.name for f in frozen)} of {cfg.backbone.name} for {cfg.method}: {cfg.dataset} "
            f"{cfg.protocol}/{cfg.split} {part}, {manifest.num_rows} videos")
    gpu = cfg.resources.gpu and ray.cluster_resources().get("GPU", 0) >= 1

    def build(tmp) -> int:
        decoded = decode(cfg, manifest, spec, False, None, part=part)
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


def spec_key(spec) -> dict:
    """The settings that decide a part's pixels (how frames are read is left out)."""
    from zsar.data.video import READ_ONLY_FIELDS

    return {k: v for k, v in dataclasses.asdict(spec).items() if k not in READ_ONLY_FIELDS}


def backbone_size(cfg: ExperimentConfig) -> int:
    from zsar.models.backbone import image_size

    return image_size(cfg.backbone.name)


def feature_cache_metrics(uses) -> dict:
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
                    evals={p.name: batches(f"eval/{dataset_name(p.name)}", False) for p in info.evals})


def prepare_clips(cfg: ExperimentConfig, cache_root: str | None = None, rebuild: bool = False, log=log) -> list[dict]:
    """`zsar prepare`: write every part a run of `cfg` decodes (its split, or each split for
    `all`) to the prepared-clip cache; what was done for each part."""
    from zsar.data.prepared import PreparedCache, default_root, draws, prepare_part
    from zsar.ray_runtime import init_ray
    from zsar.train.plan import build_plan, restrict_to_trained_classes

    dataset_cls = DATASETS.get(cfg.dataset)
    if dataset_cls.modality != "video":
        raise ConfigError(f"zsar prepare makes video clips; '{cfg.dataset}' is a {dataset_cls.modality} dataset "
                          "(its files are read directly)")
    split = dataset_cls.check_protocol(cfg.protocol, cfg.split)
    splits = dataset_cls.splits_for_all(cfg.protocol) if split == "all" else (split,)
    cache = PreparedCache(cache_root or cfg.data.prepared_cache or default_root())
    init_ray(cfg.resources.address)
    done = []
    for s in splits:
        split_cfg = dataclasses.replace(cfg, split=s)
        plan = restrict_to_trained_classes(split_cfg, build_plan(split_cfg, s))
        for name, manifest, train in decode_parts(split_cfg, plan):
            spec = part_spec(split_cfg, train)
            part = f"{cfg.dataset}/{cfg.protocol}/{s}/{name}"
            kind = f"{draws(spec, cfg.data.prepared_clips)} random clips" if spec.train else f"{spec.num_views} fixed views"
            what = f"{part}: {manifest.num_rows} videos, {kind} of {spec.num_frames}x{spec.size}px ({spec.sampler})"
            result = prepare_part(cache, manifest, spec, cfg.data, train=train, clips=cfg.data.prepared_clips,
                                  seed=cfg.seed, part=part, what=what, rebuild=rebuild, log=log)
            state = f"written in {result['seconds']:.1f}s" if result["written"] else "already prepared"
            log(f"{part}: {result['rows']} videos, {len(result['failures'])} failed; {state} (key {result['key']})")
            for f in result["failures"][:20]:
                log(f"  failed {f['path']}: {f['error']}")
            done.append(result)
    return done
