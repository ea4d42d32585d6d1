"""The frozen-feature cache: outputs of frozen encoders computed once, reused across runs, methods
and sweep trials.

A method declares the frozen tensors it reads (`Method.frozen_inputs`, e.g. CLIP's per-frame image
embeddings); for each manifest part whose clips are the same every epoch (evaluation views, or
training with `data.augment=false`) the runner asks this module for a dataset of those features
instead of decoded clips. A miss runs the producer, a Ray Data step whose actor pool holds the
frozen encoder (one GPU per actor when the run has GPUs), and writes Parquet shards to a temporary
folder that is published by one rename once its manifest (row counts and checksums) is written; a
hit reads the shards back. A key covers everything that produced the features, so a cache is
never reused for other inputs; a corrupt or truncated shard fails the manifest check and the entry
is rebuilt. Frozen text embeddings have their own cache (`zsar.models.text.ClassEmbeddingCache`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STATS = "stats.json"


@dataclass(frozen=True)
class FrozenInput:
    """A tensor a method reads that frozen weights compute from the decoded clip."""

    name: str  # the batch key, e.g. "frame_features"
    output: str  # what is taken, e.g. "visual.encode_image of every frame" (part of the key)


@dataclass
class CacheUse:
    """What the cache did for one manifest part (logged by the runner)."""

    key: str
    hit: bool
    encoded: int  # clips the producer encoded (0 on a hit)
    seconds: float
    path: str


def feature_key(encoder_identity: str, frozen, manifest: pa.Table, spec: dict) -> str:
    """A hash of the encoder (name + weights fingerprint), the outputs taken (`FrozenInput`s), the
    manifest's rows (with their segment windows, if any) and the sampling/view settings."""
    from zsar.data.pipeline import hash_rows

    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT_VERSION, "encoder": encoder_identity,
                         "outputs": [[f.name, f.output] for f in frozen], "spec": spec},
                        sort_keys=True, default=str).encode())
    hash_rows(h, manifest)
    return h.hexdigest()[:24]


def _local(fs):
    import pyarrow.fs as pafs

    return fs or pafs.LocalFileSystem()


def _sha256(path, fs=None) -> str:
    h = hashlib.sha256()
    with _local(fs).open_input_stream(str(path)) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path, fs=None) -> dict | None:
    """An entry's manifest.json, or None when there is no readable one."""
    try:
        with _local(fs).open_input_stream(f"{path}/{MANIFEST}") as f:
            return json.loads(f.read().decode())
    except (OSError, ValueError):
        return None


def entry_bytes(path, fs=None) -> int:
    """The bytes of an entry's shards, from its manifest (0 when it has none)."""
    manifest = read_manifest(path, fs) or {}
    return sum(int(meta.get("bytes", 0)) for meta in manifest.get("files", {}).values())


def entry_files(path, fs=None) -> list[str]:
    """The shard files an entry's manifest lists, in name order."""
    manifest = read_manifest(path, fs) or {}
    return [f"{path}/{name}" for name in sorted(manifest.get("files", {}))]


def read_entry(path):
    """A feature entry's shards as a lazy Ray Dataset."""
    return read_shards(entry_files(path))


def read_shards(files: list[str], fs=None, columns: list[str] | None = None):
    """Parquet shards as a lazy Ray Dataset, one block a shard, read by plain Ray tasks.

    Not `ray.data.read_parquet`: its file listing and sampling cost ~2-3 s a read here (new worker
    processes every time) whatever the size; the files are known from the entry's manifest."""
    import ray.data

    from zsar.data.pipeline import ordered_execution

    if not files:
        raise ValueError("no shard files to read")
    ordered_execution()  # shard by shard, in the order given
    return ray.data.from_items([{"file": f} for f in files], override_num_blocks=len(files)).map_batches(
        _ShardReader(fs, columns), batch_size=1, batch_format="pyarrow", zero_copy_batch=True)


class _ShardReader:
    """map_batches function: a batch of one shard path -> that shard's rows."""

    def __init__(self, fs, columns):
        self.fs, self.columns = fs, columns

    def __call__(self, batch):
        import pyarrow.parquet as pq

        (path,) = batch.column("file").to_pylist()
        return pq.read_table(path, filesystem=self.fs, columns=self.columns)


def check_entry(path, expected_rows: int | None = None, fs=None, checksums: bool = True) -> str | None:
    """None when `path` (on `fs`, local by default) is a complete cache entry; else what is wrong
    with it. checksums=False checks sizes and row counts only (entries of decoded clips are large)."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    fs = _local(fs)
    manifest = read_manifest(path, fs)
    if manifest is None:
        return "no readable manifest"
    total = 0
    for name, meta in manifest["files"].items():
        f = f"{path}/{name}"
        info = fs.get_file_info(f)
        if info.type != pafs.FileType.File:
            return f"shard {name} is missing"
        if info.size != meta["bytes"] or (checksums and _sha256(f, fs) != meta["sha256"]):
            return f"shard {name} does not match its checksum"
        try:
            with fs.open_input_file(f) as handle:
                rows = pq.ParquetFile(handle).metadata.num_rows
        except Exception as e:  # a damaged footer
            return f"shard {name} is unreadable ({type(e).__name__})"
        if rows != meta["rows"]:
            return f"shard {name} has {rows} rows, the manifest says {meta['rows']}"
        total += rows
    if total != manifest["rows"] or (expected_rows is not None and total != expected_rows):
        return f"{total} rows, expected {expected_rows if expected_rows is not None else manifest['rows']}"
    return None


def publish(tmp, final, key: str, what: str, fs=None, **extra) -> None:
    """Write the manifest (rows, sizes, checksums of every shard, and `extra`) into `tmp`, then
    rename `tmp` to `final`: readers see nothing or the whole entry."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    fs = _local(fs)
    files = {}
    shards = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(str(tmp)))
                    if i.type == pafs.FileType.File and i.path.endswith(".parquet"))
    for f in shards:
        with fs.open_input_file(f) as handle:
            rows = pq.ParquetFile(handle).metadata.num_rows
        files[f.rsplit("/", 1)[-1]] = {"rows": rows, "bytes": fs.get_file_info(f).size, "sha256": _sha256(f, fs)}
    rows = sum(m["rows"] for m in files.values())
    with fs.open_output_stream(f"{tmp}/{MANIFEST}") as out:
        out.write(json.dumps({"key": key, "what": what, "rows": rows, "created": time.time(),
                              "files": files, **extra}, indent=1, default=str).encode())
    try:
        fs.move(str(tmp), str(final))
    except OSError:  # another run published the same key first: keep theirs
        fs.delete_dir(str(tmp))


def count_hit(path, fs=None) -> None:
    fs = _local(fs)
    stats = entry_stats(path, fs)
    stats["hits"] = stats.get("hits", 0) + 1
    stats["last_used"] = time.time()
    tmp = f"{path}/.{STATS}.{uuid.uuid4().hex}"
    with fs.open_output_stream(tmp) as out:
        out.write(json.dumps(stats).encode())
    fs.move(tmp, f"{path}/{STATS}")


def entry_stats(path, fs=None) -> dict:
    try:
        with _local(fs).open_input_stream(f"{path}/{STATS}") as f:
            return json.loads(f.read().decode())
    except (OSError, ValueError):
        return {}


class FeatureProducer:
    """Ray Data actor UDF: builds the method once (its frozen weights) and maps decoded clips
    [B, V, ...] to the declared frozen tensors [B, V, ...]; failed rows keep ok=False and zeros."""

    def __init__(self, cfg_dict: dict, names: list[str], device: str = "cpu"):
        import torch

        from zsar.config import ExperimentConfig, from_dict
        from zsar.models.backbone import create_backbone
        from zsar.registry import METHODS  # its lookups import the method modules in this worker

        torch.set_num_threads(1)
        cfg = from_dict(ExperimentConfig, cfg_dict)
        method_cls = METHODS.get(cfg.method)
        method_cfg = cfg.method_config()
        backbone = create_backbone(cfg.backbone, device="cpu", towers=method_cls.backbone_towers(method_cfg))
        self.method = method_cls(method_cfg, backbone, cfg).to(device).eval()
        self.device = torch.device(device)
        self.names = names

    def __call__(self, batch: dict) -> dict:
        import torch

        key = self.method.input_key
        clips = batch.pop(key)
        ok = np.asarray(batch["ok"], dtype=bool)
        out = {k: np.asarray(v) for k, v in batch.items()}
        with torch.no_grad():
            x = self.method.to_input(clips, self.device)  # B, V, ...
            b, v = x.shape[:2]
            for name in self.names:
                feats = self.method.compute_frozen(name, x.flatten(0, 1)).float()
                feats = feats.view(b, v, *feats.shape[1:]).cpu().numpy()
                feats[~ok] = 0.0
                out[name] = feats
        return out


class EntryStore:
    """Cache entries, one folder per key under a local folder or a URI: listing and removal, shared
    by the frozen-feature cache and the prepared-clip cache (`zsar cache ls|rm`)."""

    kind = "features"

    def __init__(self, root):
        from zsar.data import remote

        self.fs, self.base = remote.resolve(str(root))
        self.fs.create_dir(self.base, recursive=True)

    def entry_path(self, key: str) -> str:
        return f"{self.base.rstrip('/')}/{key}"

    def _folders(self) -> list[str]:
        import pyarrow.fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(self.base, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def keys(self) -> list[str]:
        return [k for k in self._folders() if not k.startswith(".")]

    def entries(self) -> list[dict]:
        """key, kind, what, rows, bytes, created, hits, last_used (and part, settings, manifest) of every entry."""
        import pyarrow.fs as pafs

        out = []
        for key in self.keys():
            path = self.entry_path(key)
            manifest = read_manifest(path, self.fs) or {}
            stats = entry_stats(path, self.fs)
            files = self.fs.get_file_info(pafs.FileSelector(path, recursive=True))
            out.append({
                "key": key, "kind": self.kind, "what": manifest.get("what", "?"), "rows": manifest.get("rows", 0),
                "bytes": sum(f.size or 0 for f in files if f.type == pafs.FileType.File),
                "created": manifest.get("created"), "hits": stats.get("hits", 0), "last_used": stats.get("last_used"),
                "part": manifest.get("part"), "settings": manifest.get("settings"), "manifest": manifest.get("manifest"),
            })
        return out

    def remove(self, key: str | None = None) -> list[str]:
        """Remove one entry (a unique key prefix is enough), or every entry (and any unpublished
        temporary folder) with key None; the removed keys."""
        if key is None:
            chosen, hidden = self.keys(), [k for k in self._folders() if k.startswith(".")]
        else:
            chosen, hidden = [k for k in self.keys() if k.startswith(key)], []
            if len(chosen) != 1:
                from zsar.errors import ConfigError

                found = "no entry" if not chosen else f"{len(chosen)} entries"
                raise ConfigError(f"cache key '{key}': {found} matches it (zsar cache ls lists the keys)")
        for k in chosen + hidden:
            self.fs.delete_dir(self.entry_path(k))
        return chosen


class FeatureCache(EntryStore):
    def __init__(self, root: str | Path):
        super().__init__(root)
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def entry(self, key: str, expected_rows: int, build, what: str, log=print) -> CacheUse:
        """The complete entry of `key`; `build(tmp_dir) -> clips encoded` writes it on a miss (or
        when the entry fails its check, which is reported)."""
        final = self.path(key)
        t0 = time.time()
        hit = final.is_dir() and check_entry(final, expected_rows) is None
        encoded = 0
        if not hit:
            if final.is_dir():
                log(f"feature cache {key}: {check_entry(final, expected_rows)}; rebuilding it")
                shutil.rmtree(final, ignore_errors=True)
            tmp = self.root / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
            try:
                encoded = build(tmp)
                publish(tmp, final, key, what)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            problem = check_entry(final, expected_rows)
            if problem:
                raise RuntimeError(f"feature cache {key} failed its check right after it was written: {problem}")
            log(f"feature cache {key}: encoded {encoded} clips ({what}) in {time.time() - t0:.1f}s")
        else:
            count_hit(final)
            log(f"feature cache {key}: hit, {expected_rows} rows ({what})")
        return CacheUse(key, hit, encoded, time.time() - t0, str(final))
