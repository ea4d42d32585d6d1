"""Manifest -> Ray Data -> decoded clips.

The decode tasks import numpy, pyarrow and PyAV only (zsar.data.video, zsar.data.frames,
zsar.data.views; no torch, open_clip or mlflow: tests/data/test_lean_imports.py), so a decode
worker stays a few hundred MB.

`map_batches(decode_batch)` runs on CPU tasks (`TaskPoolStrategy`); each file's errors are caught
inside the UDF, so one corrupt video never drops the good videos of its block. A failed row keeps
its place with `ok=False`, a zero clip and the reason in `error`; consumers skip it and count it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from zsar.data.order import row_rng
from zsar.data.remote import opener
from zsar.data.video import ClipSpec, read_clip


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


def failure_reason(error: BaseException) -> str:
    """One line saying why a file failed (the failures table and `zsar data check` show it)."""
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first}"[:300]


def truncation_reason(header: int, frames: int) -> str:
    return f"truncated: the header says {header} frames, {frames} decode"


def decode_rows(batch: dict, key: str, shape: tuple, dtype, load, seed_key: list[int]) -> dict:
    """The never-raise part of every decode UDF: `load(i, rng) -> (array, short[, truncated])`
    for each row i of `batch`; a row whose load raises keeps its place with ok=False, zeros and
    the reason in `error`, so one bad file never costs the good files of its batch or block. A
    truncated row (decoded within the frames its file really holds) keeps ok=True and says how
    many frames its header claims and how many decode in `error`. A row whose `skip` column
    (zsar.train.preflight) holds a reason is failed with it, without loading.

    Row i draws from `order.row_rng(seed_key, index_i)`: its clip depends on (seed, epoch, manifest
    index) only, whichever task decodes it and in whatever order.
    """
    n = len(batch["path"])
    out = np.zeros((n,) + tuple(shape), dtype=dtype)
    ok = np.zeros(n, dtype=bool)
    short = np.zeros(n, dtype=bool)
    truncated = np.zeros(n, dtype=bool)
    errors = np.full(n, "", dtype=object)
    for i in range(n):
        rng = row_rng(seed_key, int(batch["index"][i]))
        if "skip" in batch and batch["skip"][i]:  # a file the pre-flight probe found bad: not opened again
            errors[i] = str(batch["skip"][i])
            continue
        try:
            got = load(i, rng)
            out[i], short[i] = got[0], got[1]
            if len(got) > 2 and got[2]:
                truncated[i], errors[i] = True, got[3]
            ok[i] = True
        except Exception as e:  # any reader or decoder failure is a property of the file
            errors[i] = failure_reason(e)
    return {
        key: out,
        "label": np.asarray(batch["label"], dtype=np.int64),
        "index": np.asarray(batch["index"], dtype=np.int64),
        "path": np.asarray(batch["path"], dtype=object),
        "ok": ok,
        "short": short,
        "truncated": truncated,
        "error": errors,
    }


WINDOW_COLUMNS = ("start_s", "end_s")  # a row's segment of its video, in seconds (caption segments)
KEY_COLUMNS = ("path", "label", "index")  # what names a row's clip in the caches' keys (+ its window)


def key_columns(manifest) -> tuple[str, ...]:
    """The manifest columns that decide which clip a row is: `KEY_COLUMNS`, and the window
    columns where the manifest has them (so a manifest without windows keeps its old keys)."""
    return KEY_COLUMNS + tuple(c for c in WINDOW_COLUMNS if c in manifest.column_names)


def hash_rows(h, manifest, names: bool = True) -> None:
    """Feed the manifest's `key_columns` into the hash `h` (each column's name first, `names`)."""
    for column in key_columns(manifest):
        if names:
            h.update(column.encode())
        h.update("\x00".join(str(v) for v in manifest.column(column).to_pylist()).encode())


def row_window(batch: dict, i: int) -> tuple[float, float] | None:
    """Row i's segment (start, end) in seconds, or None (the whole video)."""
    if WINDOW_COLUMNS[0] not in batch:
        return None
    return float(batch[WINDOW_COLUMNS[0]][i]), float(batch[WINDOW_COLUMNS[1]][i])


def decode_batch(batch: dict, spec: dict, seed_key: list[int]) -> dict:
    """Ray Data UDF: decode every row's video (local path or URI), within its segment window where
    the manifest gives one (`WINDOW_COLUMNS`); never raises for a bad file."""
    spec = ClipSpec(**spec)
    shape = (spec.num_views, spec.num_frames, spec.size, spec.size, 3)

    def load(i, rng):
        path = str(batch["path"][i])
        clip = read_clip(path, spec, rng, open_fn=opener(path), window=row_window(batch, i))
        return clip.video, clip.short, clip.truncated, truncation_reason(clip.header, clip.frames)

    return decode_rows(batch, "video", shape, np.uint8, load, seed_key)


IN_MEMORY_LIMIT = 1 << 30  # decoded clips of deterministic sets up to 1 GiB are kept across epochs


def clip_bytes(spec: ClipSpec) -> int:
    return spec.num_views * spec.num_frames * spec.size * spec.size * 3


SOURCE_FRAME_BYTES = 1920 * 1080 * 3  # a decoded 1080p frame: the largest the decoder holds for a clip


def task_memory(row_bytes: int, batch_size: int, frames_held: int = 0) -> int:
    """Bytes one decode task reserves (Ray's `memory=`): its output batch twice (numpy + Arrow),
    the source-resolution frames of one video, and the worker process itself (Ray, pyarrow, numpy,
    PyAV and the decoder's reference frames; no torch: benchmarks/decode.py measured a peak of
    ~360 MB for 8x224 clips, 1080p files among them)."""
    return 2 * row_bytes * batch_size + frames_held * SOURCE_FRAME_BYTES + (512 << 20)


def guided_block_sizes(rows: int, tasks: int, batch: int) -> list[int]:
    """Rows per block (one decode task each), shrinking toward the end: each block takes
    1/(2 x tasks) of the rows still left, at least one batch and at most max(8 batches, rows/64).

    Every task costs the streaming executor a scheduling round (~0.1-0.2 s on Ray 2.60, measured
    in benchmarks/decode.py), so early blocks are large; the last ones are one batch, so no task
    is left decoding alone at the end while the other cores idle (guided self-scheduling).
    """
    cap = max(8 * batch, -(-rows // 64))
    sizes, left = [], rows
    while left > 0:
        k = min(max(-(-left // (2 * tasks)), batch), cap, left)
        sizes.append(k)
        left -= k
    return sizes


def decoded_dataset(manifest: pa.Table, spec, data_cfg, *, seed_key: list[int], decode=decode_batch,
                    row_bytes: int | None = None, columns=("path", "label", "index")):
    """A lazy Ray Dataset of `manifest`'s rows decoded in the manifest's order (see the module
    docstring); each row's draws come from (seed_key, its index).

    Other modalities pass their own `decode` UDF (same contract as `decode_batch`: `spec` as a dict,
    failed rows kept with ok=False), the decoded size of one row, and the manifest `columns` it reads.
    """
    import ray.data

    ordered_execution()
    extra = ("skip",) + WINDOW_COLUMNS
    columns = list(columns) + [c for c in extra if c in manifest.column_names and c not in columns]
    table = manifest.select(columns)
    sizes = guided_block_sizes(table.num_rows, data_cfg.decode_tasks, data_cfg.decode_batch)
    starts = np.cumsum([0] + sizes[:-1])
    ds = ray.data.from_arrow([table.slice(int(a), k) for a, k in zip(starts, sizes)] or [table])
    row_bytes = clip_bytes(spec) if row_bytes is None else row_bytes
    held = spec.num_frames * spec.views if isinstance(spec, ClipSpec) else 0
    return ds.map_batches(
        decode,
        fn_kwargs={"spec": dataclasses.asdict(spec), "seed_key": list(seed_key)},
        batch_size=data_cfg.decode_batch,
        batch_format="numpy",
        compute=ray.data.TaskPoolStrategy(size=data_cfg.decode_tasks),
        num_cpus=1,
        memory=task_memory(row_bytes, data_cfg.decode_batch, held),
        zero_copy_batch=True,
    )


def ordered_execution() -> None:
    """Ray Data in this process yields rows in their input order (blocks that finish early wait),
    so what a consumer reads never depends on which task finished first."""
    from ray.data import DataContext

    DataContext.get_current().execution_options.preserve_order = True
