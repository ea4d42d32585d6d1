"""A checked plan -> the feeds a run reads (zsar.data.feed): decoded clips (live, or from the
prepared-clip cache) or a frozen encoder's outputs from the feature cache.

Feeds are named "train" and "eval/<part>" (`dataset_name`). `build_feeds` is what a run and a sweep
call, once, on the driver; `loop_data` is what each worker makes of them; `prepare_clips`
(`zsar prepare`) writes the same parts into the prepared-clip cache.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shutil

from zsar.config import ExperimentConfig
from zsar.data.dataset import Plan
from zsar.data.order import seed_key
from zsar.errors import ConfigError
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


def decoder(cfg: ExperimentConfig, spec):
    """`make(rows, seed_key=...)`: a lazy Ray Dataset decoding `rows` (a manifest table) in their
    order, for the dataset's modality. Picklable: feeds carry it to the workers."""
    if DATASETS.get(cfg.dataset).modality == "skeleton":
        from zsar.data.skeleton import skeleton_dataset

        return functools.partial(skeleton_dataset, spec=spec, data_cfg=cfg.data)
    from zsar.data.pipeline import decoded_dataset

    return functools.partial(decoded_dataset, spec=spec, data_cfg=cfg.data)


def row_bytes(spec) -> int:
    from zsar.data.pipeline import clip_bytes

    return spec.nbytes if hasattr(spec, "nbytes") else clip_bytes(spec)


def prepared_entry(cfg: ExperimentConfig, manifest, spec, part: str | None):
    """(cache, key) of the prepared-clip entry for these rows and settings, or None."""
    if not cfg.data.use_prepared or DATASETS.get(cfg.dataset).modality != "video":
        return None
    from zsar.data import prepared

    cache = prepared.PreparedCache(cfg.data.prepared_cache or prepared.default_root())
    key = prepared.find_prepared(cache, manifest, spec, clips=cfg.data.prepared_clips, seed=cfg.seed,
                                 part=part and f"{cfg.dataset}/{cfg.protocol}/{cfg.split}/{part}", log=log)
    return None if key is None else (cache, key)


LOOK_UP = object()  # `fixed_clips`: the part's prepared clips are not looked up yet


def fixed_clips(cfg: ExperimentConfig, manifest, spec, part: str | None, entry=LOOK_UP):
    """The fixed clips of `manifest` (no per-epoch draws) as a lazy dataset: prepared (`entry`, as
    `prepared_entry` found it), or decoded."""
    if entry is LOOK_UP:
        entry = prepared_entry(cfg, manifest, spec, part)
    if entry is not None:
        return entry[0].read(entry[1])
    return decoder(cfg, spec)(manifest, seed_key=seed_key(cfg.seed, None))


def decoded_feed(cfg: ExperimentConfig, name: str, manifest, spec):
    """A part's decoded rows: prepared clips when the cache holds them, fixed rows decoded once
    when they fit the object store, else decoded every epoch."""
    from zsar.data.feed import OBJECT_STORE_LIMIT, BlockFeed, LiveFeed, fixed_feed
    from zsar.data.prepared import draws, pick_clip

    n = manifest.num_rows
    entry = prepared_entry(cfg, manifest, spec, name)
    if entry is not None:
        cache, key = entry
        k = draws(spec, cfg.data.prepared_clips)
        return fixed_feed(functools.partial(cache.read, key), n, n * k * row_bytes(spec), cfg.seed,
                          pick_clip if spec.train else None, log=log, shards=cache.shards(key))
    make = decoder(cfg, spec)
    if not spec.train and n * row_bytes(spec) <= OBJECT_STORE_LIMIT:
        return BlockFeed.from_dataset(make(manifest, seed_key=seed_key(cfg.seed, None)), n, cfg.seed)
    return LiveFeed(manifest, make, cfg.seed, fixed=not spec.train)


def decode_parts(cfg: ExperimentConfig, plan: Plan) -> list[tuple[str, object, bool]]:
    """(name, manifest, train) of every manifest part a run decodes: "train", "eval/<part>"."""
    parts = []
    if plan.train is not None and METHODS.get(cfg.method).trains and cfg.optim.epochs > 0:
        parts.append(("train", plan.train.manifest, True))
    return parts + [(f"eval/{dataset_name(p.name)}", p.manifest, False) for p in plan.evals]


def build_feeds(cfg: ExperimentConfig, plan: Plan) -> tuple[dict, list]:
    """Feeds by name ("train", "eval/<part>"), and what the feature cache did for each part."""
    from zsar.data import features
    from zsar.data.feed import Shards, fixed_feed

    method_cls = METHODS.get(cfg.method)
    frozen = method_cls.frozen_inputs(cfg.method_config()) if cfg.data.feature_cache else ()
    feeds, cached = {}, []
    for name, manifest, train in decode_parts(cfg, plan):
        spec = part_spec(cfg, train)
        if frozen and spec.train:
            log(f"feature cache bypassed for {name}: data.augment draws new training clips every epoch "
                "(data.augment=false makes them cacheable)")
        if frozen and not spec.train:
            cached.append((name, manifest, spec))
            feeds[name] = None  # filled below, in the parts' order
        else:
            feeds[name] = decoded_feed(cfg, name, manifest, spec)
    uses = []
    if cached:
        from zsar.models.backbone import create_backbone

        # the weights' fingerprint is part of the key
        identity = create_backbone(cfg.backbone, towers=method_cls.backbone_towers(cfg.method_config())).identity
        uses = cached_features(cfg, cached, frozen, identity)
        for (name, manifest, _), (_, use) in zip(cached, uses, strict=True):
            feeds[name] = fixed_feed(functools.partial(features.read_entry, use.path), manifest.num_rows,
                                     features.entry_bytes(use.path), cfg.seed, log=log,
                                     shards=Shards(features.entry_files(use.path)))
    return feeds, uses


def cached_features(cfg: ExperimentConfig, parts: list[tuple], frozen, identity: str) -> list[tuple[str, object]]:
    """(name, `CacheUse`) of the frozen inputs of each (name, manifest, spec) part, encoded on a
    miss: the missed parts decoded live share one pass (`encode.encode_together`)."""
    import uuid

    from zsar.data import features
    from zsar.train import encode

    cache = features.FeatureCache(cache_dir("features"))
    keyed = [encode.FrozenPart(name, m, spec, features.feature_key(identity, frozen, m, spec_key(spec)))
             for name, m, spec in parts]
    missing = [p for p in keyed if not cache.path(p.key).is_dir()]
    prepared = {p.name: prepared_entry(cfg, p.manifest, p.spec, p.name) for p in missing}
    together = [p for p in missing if prepared[p.name] is None and encode.indexed(p.manifest)]
    if len({p.manifest.schema for p in together}) != 1 or len({repr(p.spec) for p in together}) != 1:
        together = []
    staging = cache.root / f".tmp-parts-{uuid.uuid4().hex[:8]}"
    try:
        staged, pass_seconds = ({}, 0.0) if len(together) < 2 else encode.encode_together(
            cfg, together, frozen, staging, decoder(cfg, together[0].spec))
        uses = []
        for p in keyed:
            what = (f"{', '.join(f.name for f in frozen)} of {cfg.backbone.name} for {cfg.method}: {cfg.dataset} "
                    f"{cfg.protocol}/{cfg.split} {p.name}, {p.manifest.num_rows} videos")
            if p.name in staged:
                build = functools.partial(encode.move_staged, staged[p.name], p.manifest.num_rows)
            else:
                build = functools.partial(_encode_part, cfg, p, frozen, prepared.get(p.name, LOOK_UP))
            use = cache.entry(p.key, p.manifest.num_rows, build, what, log=log)
            if p.name in staged and use.encoded and pass_seconds:  # the shared pass's time, counted once
                use, pass_seconds = dataclasses.replace(use, seconds=use.seconds + pass_seconds), 0.0
            uses.append((p.name, use))
        return uses
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _encode_part(cfg: ExperimentConfig, part, frozen, prepared, tmp) -> int:
    from zsar.train.encode import encode

    encode(cfg, fixed_clips(cfg, part.manifest, part.spec, part.name, entry=prepared), frozen, tmp)
    return part.manifest.num_rows


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


def loop_data(feeds: dict, info, cfg: ExperimentConfig, ctx) -> LoopData:
    """This worker's batches of every part (a driver run, a sweep trial or a Ray Train worker)."""
    def train(epoch: int):
        return feeds["train"].train_batches(epoch, ctx.rank, ctx.world_size, cfg.optim.batch_size)

    def part_batches(feed):
        return lambda: feed.eval_batches(ctx.rank, ctx.world_size, cfg.optim.eval_batch_size)

    return LoopData(train=train if "train" in feeds else None,
                    evals={p.name: part_batches(feeds[f"eval/{dataset_name(p.name)}"]) for p in info.evals})


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
