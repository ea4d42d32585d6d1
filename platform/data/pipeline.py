"""Manifest -> Ray Data -> decoded clips.

`map_batches(decode_batch)` runs on CPU tasks (`TaskPoolStrategy`); each file's errors are caught
inside the UDF, so one corrupt video never drops the good videos of its block. A failed row keeps
its place with `ok=False`, a zero clip and the reason in `error`; consumers skip it and count it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from zsar.data.video import ClipSpec, load_clip


def clip_spec(data_cfg, size: int, train: bool) -> ClipSpec:
    return ClipSpec(
        num_frames=data_cfg.num_frames,
        sampler=data_cfg.sampler,
        stride=data_cfg.stride,
        views=data_cfg.views,
        crops=data_cfg.crops,
        size=data_cfg.size or size,
        short_side=data_cfg.short_side,
        train=train and data_cfg.augment,
        flip=train and data_cfg.augment and data_cfg.flip,
        crop_scale=tuple(data_cfg.crop_scale),
        decoder_threads=data_cfg.decoder_threads,
    )


def decode_batch(batch: dict, spec: dict, seed: int | None = None) -> dict:
    """Ray Data UDF: decode every row's video; never raises for a bad file."""
    spec = ClipSpec(**spec)
    n = len(batch["path"])
    shape = (spec.num_views, spec.num_frames, spec.size, spec.size, 3)
    video = np.zeros((n,) + shape, dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    short = np.zeros(n, dtype=bool)
    errors = np.empty(n, dtype=object)
    for i in range(n):
        # Training clips draw fresh offsets every epoch; evaluation views are fixed.
        rng = np.random.default_rng(None if seed is None else [seed, int(batch["index"][i])])
        try:
            clip, is_short = load_clip(str(batch["path"][i]), spec, rng)
            video[i], short[i], ok[i], errors[i] = clip, is_short, True, ""
        except Exception as e:  # any decoder failure: keep the row, flag it
            errors[i] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    return {
        "video": video,
        "label": np.asarray(batch["label"], dtype=np.int64),
        "index": np.asarray(batch["index"], dtype=np.int64),
        "path": np.asarray(batch["path"], dtype=object),
        "ok": ok,
        "short": short,
        "error": errors,
    }


IN_MEMORY_LIMIT = 1 << 30  # decoded clips of deterministic sets up to 1 GiB are kept across epochs


def clip_bytes(spec: ClipSpec) -> int:
    return spec.num_views * spec.num_frames * spec.size * spec.size * 3


def decoded_dataset(manifest: pa.Table, spec: ClipSpec, data_cfg, *, train: bool, seed: int | None = None,
                    decode=decode_batch, row_bytes: int | None = None, columns=("path", "label", "index")):
    """A Ray Dataset of decoded clips for `manifest` (see the module docstring).

    Clips without per-epoch randomness (evaluation views, training without augmentation) are the
    same every epoch: when they fit in IN_MEMORY_LIMIT they are decoded once and materialised in
    the object store; otherwise (and for augmented training) the dataset stays lazy and streams.
    Other modalities pass their own `decode` UDF (same contract as `decode_batch`: `spec` as a dict,
    failed rows kept with ok=False), the decoded size of one row, and the manifest `columns` it reads.
    """
    import ray.data

    table = manifest.select(list(columns))
    if train:
        # Manifests are grouped by class: mix the rows once, and the blocks' order every epoch.
        order = np.random.default_rng(seed or 0).permutation(table.num_rows)
        table = table.take(pa.array(order))
    rows_per_block = max(data_cfg.decode_batch, -(-table.num_rows // 64))  # at most 64 blocks
    blocks = [table.slice(i, rows_per_block) for i in range(0, max(table.num_rows, 1), rows_per_block)]
    ds = ray.data.from_arrow(blocks)
    ds = ds.map_batches(
        decode,
        fn_kwargs={"spec": dataclasses.asdict(spec), "seed": None if train else seed},
        batch_size=data_cfg.decode_batch,
        batch_format="numpy",
        compute=ray.data.TaskPoolStrategy(size=data_cfg.decode_tasks),
        num_cpus=1,
        zero_copy_batch=True,
    )
    row_bytes = clip_bytes(spec) if row_bytes is None else row_bytes
    if not spec.train and manifest.num_rows * row_bytes <= IN_MEMORY_LIMIT:
        ds = ds.materialize()
    return ds.randomize_block_order(seed=seed) if train else ds  # seeded: a config trains the same way again
