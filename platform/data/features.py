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
import os
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
    manifest's rows and the sampling/view settings."""
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT_VERSION, "encoder": encoder_identity,
                         "outputs": [[f.name, f.output] for f in frozen], "spec": spec},
                        sort_keys=True, default=str).encode())
    for column in ("path", "label", "index"):
        h.update(column.encode())
        h.update("\x00".join(str(v) for v in manifest.column(column).to_pylist()).encode())
    return h.hexdigest()[:24]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_entry(path: Path, expected_rows: int | None = None) -> str | None:
    """None when `path` is a complete cache entry; else what is wrong with it."""
    import pyarrow.parquet as pq

    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return "no readable manifest"
    total = 0
    for name, meta in manifest["files"].items():
        f = path / name
        if not f.is_file():
            return f"shard {name} is missing"
        if f.stat().st_size != meta["bytes"] or _sha256(f) != meta["sha256"]:
            return f"shard {name} does not match its checksum"
        try:
            rows = pq.ParquetFile(f).metadata.num_rows
        except Exception as e:  # a damaged footer
            return f"shard {name} is unreadable ({type(e).__name__})"
        if rows != meta["rows"]:
            return f"shard {name} has {rows} rows, the manifest says {meta['rows']}"
        total += rows
    if total != manifest["rows"] or (expected_rows is not None and total != expected_rows):
        return f"{total} rows, expected {expected_rows if expected_rows is not None else manifest['rows']}"
    return None


def _publish(tmp: Path, final: Path, key: str, what: str) -> None:
    import pyarrow.parquet as pq

    files = {}
    for f in sorted(tmp.glob("*.parquet")):
        files[f.name] = {"rows": pq.ParquetFile(f).metadata.num_rows, "bytes": f.stat().st_size, "sha256": _sha256(f)}
    rows = sum(m["rows"] for m in files.values())
    (tmp / MANIFEST).write_text(json.dumps({"key": key, "what": what, "rows": rows, "created": time.time(),
                                            "files": files}, indent=1))
    try:
        os.rename(tmp, final)  # one step: readers see nothing or the whole entry
    except OSError:  # another run published the same key first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


def _count_hit(path: Path) -> None:
    stats = entry_stats(path)
    stats["hits"] = stats.get("hits", 0) + 1
    stats["last_used"] = time.time()
    tmp = path / f".{STATS}.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(stats))
    os.replace(tmp, path / STATS)


def entry_stats(path: Path) -> dict:
    try:
        return json.loads((Path(path) / STATS).read_text())
    except (OSError, ValueError):
        return {}


class FeatureProducer:
    """Ray Data actor UDF: builds the method once (its frozen weights) and maps decoded clips
    [B, V, ...] to the declared frozen tensors [B, V, ...]; failed rows keep ok=False and zeros."""

    def __init__(self, cfg_dict: dict, names: list[str], device: str = "cpu"):
        import torch

        from zsar.config import ExperimentConfig, from_dict
        from zsar.models.backbone import create_backbone
        from zsar.registry import METHODS

        import zsar.methods  # noqa: F401  (registers the methods in this worker)

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


class FeatureCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key

    def dataset(self, key: str, expected_rows: int, build, what: str, log=print) -> tuple[object, CacheUse]:
        """The cached features of `key` as a Ray Dataset; `build(tmp_dir) -> clips encoded` writes
        them on a miss (or when the entry fails its check, which is reported)."""
        import ray.data

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
                _publish(tmp, final, key, what)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            problem = check_entry(final, expected_rows)
            if problem:
                raise RuntimeError(f"feature cache {key} failed its check right after it was written: {problem}")
            log(f"feature cache {key}: encoded {encoded} clips ({what}) in {time.time() - t0:.1f}s")
        else:
            _count_hit(final)
            log(f"feature cache {key}: hit, {expected_rows} rows ({what})")
        ds = ray.data.read_parquet(str(final), file_extensions=["parquet"])
        return ds, CacheUse(key, hit, encoded, time.time() - t0, str(final))

    def entries(self) -> list[dict]:
        """key, what, rows, bytes, created, hits, last_used, ok for every entry."""
        out = []
        for path in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                manifest = json.loads((path / MANIFEST).read_text())
            except (OSError, ValueError):
                manifest = {}
            stats = entry_stats(path)
            out.append({
                "key": path.name,
                "what": manifest.get("what", "?"),
                "rows": manifest.get("rows", 0),
                "bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
                "created": manifest.get("created"),
                "hits": stats.get("hits", 0),
                "last_used": stats.get("last_used"),
            })
        return out

    def remove(self, key: str | None = None) -> list[str]:
        """Remove one entry (a unique key prefix is enough), or every entry with key None."""
        entries = [p for p in self.root.iterdir() if p.is_dir()]
        if key is None:
            chosen = entries
        else:
            chosen = [p for p in entries if p.name.startswith(key) and not p.name.startswith(".")]
            if len(chosen) != 1:
                from zsar.errors import ConfigError

                found = "no entry" if not chosen else f"{len(chosen)} entries"
                raise ConfigError(f"cache key '{key}': {found} matches it (zsar cache ls lists the keys)")
        for p in chosen:
            shutil.rmtree(p, ignore_errors=True)
        return [p.name for p in chosen if not p.name.startswith(".")]
