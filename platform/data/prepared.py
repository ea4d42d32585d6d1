"""The prepared-clip cache: decoded, sampled clips written once by `zsar prepare` and read back by
`zsar train` / `zsar eval` (and by the feature cache's producer) instead of decoding the videos.

An entry holds one manifest part: evaluation parts as their fixed views ([V*C, T, S, S, 3] uint8
per video), training parts as K pre-sampled clips per video ([K, 1, T, S, S, 3], `data.
prepared_clips`, drawn with `seed`); reading a training entry picks one of the K clips of every
video at random each epoch. Shards are Parquet files with tensor columns, written to a temporary
folder and published by one rename once their manifest (rows, sizes, checksums, and the settings
that made them) is written: the frozen-feature cache's scheme (`zsar.data.features`). The key
covers the manifest's rows and every setting that decides the clips' pixels, so an entry made
with other settings (or for other files) is never read: the runner looks the key up, decodes the
videos on a miss, and says when an entry for the same part exists with other settings. Failed
files are stored as failed rows (ok=False, the reason in `error`) and are counted downstream
exactly as when decoding live. The cache root may be a local folder or a URI (`zsar.data.remote`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import uuid

import numpy as np

from zsar.data import features, remote
from zsar.data.order import row_rng, seed_key
from zsar.data.pipeline import clip_bytes, decode_rows, decoded_dataset, hash_rows, row_window
from zsar.data.video import ClipSpec, load_clip, spec_key

FORMAT_VERSION = 1
COLUMNS = ["video", "label", "index", "path", "ok", "short", "error"]


def draws(spec: ClipSpec, clips: int) -> int:
    """Clips stored per video: K for random training clips, else the one fixed set of views."""
    return max(int(clips), 1) if spec.train else 1


def settings(spec: ClipSpec, clips: int, seed: int | None) -> dict:
    """Everything besides the manifest that decides an entry's pixels (kept in its manifest)."""
    return {**spec_key(spec), "clips": draws(spec, clips), "seed": seed if spec.train else None}


def prepared_key(manifest, spec: ClipSpec, clips: int = 1, seed: int | None = None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT_VERSION, "kind": "clips", "settings": settings(spec, clips, seed)},
                        sort_keys=True, default=str).encode())
    h.update(manifest_digest(manifest).encode())
    return h.hexdigest()[:24]


def manifest_digest(manifest) -> str:
    h = hashlib.sha256()
    hash_rows(h, manifest)
    return h.hexdigest()[:16]


def decode_prepared(batch: dict, spec: dict, seed_key: list[int], clips: int = 1) -> dict:
    """Ray Data UDF (the contract of `pipeline.decode_batch`): a training row gets `clips` random
    clips, drawn reproducibly from (seed_key, index); other rows their fixed views."""
    from zsar.data.pipeline import decode_batch

    clip_spec = ClipSpec(**spec)
    if not clip_spec.train:
        return decode_batch(batch, spec, seed_key)
    shape = (clips, 1, clip_spec.num_frames, clip_spec.size, clip_spec.size, 3)

    def load(i, rng):
        path = str(batch["path"][i])
        window = row_window(batch, i)
        made = [load_clip(path, clip_spec, rng, open_fn=remote.opener(path), window=window) for _ in range(clips)]
        return np.stack([m[0] for m in made]), made[0][1]

    return decode_rows(batch, "video", shape, np.uint8, load, seed_key)


def pick_clip(batch: dict, seed_key: list[int]) -> dict:
    """One of the K stored clips of each training row: row i takes clip
    `row_rng(seed_key, index_i).integers(K)` (seed_key = the run's seed and the epoch)."""
    video = batch["video"]
    choice = [int(row_rng(seed_key, int(i)).integers(0, video.shape[1])) for i in batch["index"]]
    return {**batch, "video": video[np.arange(len(video)), choice]}


def _differences(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    shown = [f"{k} {old.get(k)!r} (now {new.get(k)!r})" for k in keys if old.get(k) != new.get(k)]
    return ", ".join(shown)


class PreparedCache(features.EntryStore):
    """Entries of prepared clips under `root` (a folder or a URI), one folder per key."""

    kind = "clips"

    def __init__(self, root: str):
        super().__init__(root)
        self.root = str(root)

    def path(self, key: str) -> str:
        return self.entry_path(key)

    def problem(self, key: str, expected_rows: int | None = None) -> str | None:
        """None when `key` is a complete entry (sizes and row counts; shards are large)."""
        return features.check_entry(self.path(key), expected_rows, fs=self.fs, checksums=False)

    def write(self, key: str, ds, what: str, **meta) -> None:
        """Write `ds` (decoded rows) as the entry `key`, published by one rename."""
        tmp = f"{self.base.rstrip('/')}/.tmp-{key}-{uuid.uuid4().hex[:8]}"
        try:
            ds.select_columns(COLUMNS).write_parquet(tmp, filesystem=self.fs)
            features.publish(tmp, self.path(key), key, what, fs=self.fs, kind="clips", **meta)
        finally:
            self.fs.delete_dir_contents(tmp, missing_dir_ok=True)
            try:
                self.fs.delete_dir(tmp)
            except OSError:
                pass

    def read(self, key: str):
        """The entry as a lazy Ray Dataset of the decode UDF's columns (training rows hold their
        K clips: `pick_clip` chooses one per epoch)."""
        return features.read_shards(features.entry_files(self.path(key), self.fs), self.fs, COLUMNS)

    def shards(self, key: str):
        """The entry's Parquet files, for reading without Ray Data (`feed.BlockFeed.from_shards`)."""
        from zsar.data.feed import Shards

        return Shards(features.entry_files(self.path(key), self.fs), self.fs, COLUMNS)

    def failures(self, key: str) -> list[dict]:
        """path and error of every failed row of an entry (read without the clips)."""
        import pyarrow.dataset as pads

        shards = [f"{self.path(key)}/{name}" for name in (features.read_manifest(self.path(key), self.fs) or {}).get("files", {})]
        table = pads.dataset(shards, filesystem=self.fs, format="parquet").to_table(columns=["path", "ok", "error"])
        return [{"path": p, "error": e} for p, ok, e in zip(*(table.column(c).to_pylist() for c in ("path", "ok", "error")))
                if not ok]

    def stale(self, part: str, key: str, now: dict, digest: str) -> list[str]:
        """Why each other entry of the same part is not the one wanted (for the log)."""
        out = []
        for e in self.entries():
            if e["part"] != part or e["key"] == key:
                continue
            why = _differences(e["settings"] or {}, now)
            if e["manifest"] != digest:
                why = ", ".join(x for x in ("other videos or labels", why) if x)
            out.append(f"{e['key']} ({why or 'an older format'})")
        return out


def default_root() -> str:
    from zsar.home import cache_dir

    return str(cache_dir("clips"))


def find_prepared(cache: PreparedCache, manifest, spec: ClipSpec, *, clips: int, seed: int | None,
                  part: str | None = None, log=print) -> str | None:
    """The key of a complete entry of `manifest`'s clips with exactly these settings, else None
    (after saying why when an entry for the same part was made otherwise)."""
    key = prepared_key(manifest, spec, clips, seed)
    problem = cache.problem(key, manifest.num_rows)
    if problem is None:
        log(f"prepared clips {key}: {manifest.num_rows} videos{f' ({part})' if part else ''} from {cache.root}")
        features.count_hit(cache.path(key), cache.fs)
        return key
    if cache.fs.get_file_info(cache.path(key)).type.name != "NotFound":
        log(f"prepared clips {key}{f' ({part})' if part else ''}: {problem}; not used (zsar prepare rebuilds it)")
    elif part is not None:
        for why in cache.stale(part, key, settings(spec, clips, seed), manifest_digest(manifest)):
            log(f"prepared clips for {part} exist with other settings, not used: {why} (zsar prepare makes a matching entry)")
    return None


def prepared_dataset(cache: PreparedCache, manifest, spec: ClipSpec, *, train: bool, clips: int, seed: int | None,
                     part: str | None = None, log=print):
    """The prepared clips of `manifest` (`find_prepared`) as a lazy Ray Dataset, or None."""
    key = find_prepared(cache, manifest, spec, clips=clips, seed=seed, part=part, log=log)
    return None if key is None else cache.read(key)


def prepare_part(cache: PreparedCache, manifest, spec: ClipSpec, data_cfg, *, train: bool, clips: int, seed: int | None,
                 part: str, what: str, rebuild: bool = False, log=print) -> dict:
    """Decode and write one part unless a complete entry exists; what was done."""
    key = prepared_key(manifest, spec, clips, seed)
    t0 = time.time()
    problem = cache.problem(key, manifest.num_rows)
    if problem is None and not rebuild:
        return {"part": part, "key": key, "rows": manifest.num_rows, "written": False, "seconds": 0.0,
                "failures": cache.failures(key)}
    if cache.fs.get_file_info(cache.path(key)).type.name != "NotFound":
        log(f"prepared clips {key}: {problem or 'rebuild asked'}; rebuilding them")
        cache.fs.delete_dir(cache.path(key))
    k = draws(spec, clips)
    decode = functools.partial(decode_prepared, clips=k)
    ds = decoded_dataset(manifest, spec, data_cfg, seed_key=seed_key(seed or 0, None), decode=decode,
                         row_bytes=k * clip_bytes(spec))
    cache.write(key, ds, what, part=part, settings=settings(spec, clips, seed), manifest=manifest_digest(manifest))
    problem = cache.problem(key, manifest.num_rows)
    if problem:
        raise RuntimeError(f"prepared clips {key} failed their check right after they were written: {problem}")
    return {"part": part, "key": key, "rows": manifest.num_rows, "written": True, "seconds": time.time() - t0,
            "failures": cache.failures(key)}
