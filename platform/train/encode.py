"""Frozen inputs (`Method.frozen_inputs`) of fixed clips, encoded for the feature cache
(`inputs.cached_features` decides what to encode).

The parts a run misses that are decoded live are encoded in one Ray Data pass (`encode_together`):
their manifests are stacked, each part's `index` shifted past the parts before it, decoded and
encoded by one actor pool, which builds the frozen encoder once, and the written shards are split
back into one folder per part holding that part's own row indices. Each entry holds the rows a pass
of its own would write; a pass per part would start a pool (a process, the model's imports and
weights) for each of a run's evaluation parts.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from zsar.config import ExperimentConfig
from zsar.data.order import seed_key
from zsar.log import log


@dataclasses.dataclass
class FrozenPart:
    name: str
    manifest: pa.Table
    spec: object
    key: str


def indexed(manifest: pa.Table) -> bool:
    """Whether the rows' `index` is 0..n-1 (what `encode_together` shifts and shifts back)."""
    index = manifest["index"].to_numpy()
    return bool(np.array_equal(np.sort(index), np.arange(manifest.num_rows)))


def move_staged(folder: Path, rows: int, tmp) -> int:
    """A feature-cache build (`FeatureCache.entry`) for a part `encode_together` wrote."""
    shutil.move(str(folder), str(tmp))
    return rows


def encode(cfg: ExperimentConfig, clips, frozen, out) -> None:
    """Write the frozen inputs of the clip dataset `clips` as Parquet shards into `out`."""
    import ray
    import ray.data

    from zsar.data.features import FeatureProducer

    gpu = cfg.resources.gpu and ray.cluster_resources().get("GPU", 0) >= 1
    encoded = clips.map_batches(
        FeatureProducer,
        fn_constructor_kwargs={"cfg_dict": cfg.to_dict(), "names": [f.name for f in frozen],
                               "device": "cuda" if gpu else "cpu"},
        batch_size=cfg.optim.eval_batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=cfg.data.feature_actors),
        num_gpus=1 if gpu else 0,
        num_cpus=1,
    )
    encoded.write_parquet(str(out))


def encode_together(cfg: ExperimentConfig, parts: list[FrozenPart], frozen, staging: Path, decode) -> tuple[dict, float]:
    """Encode `parts` in one pass into `staging`: ({part name: folder of its shards}, seconds).
    `decode(manifest, seed_key=...)`: their clips as a lazy dataset (`inputs.decoder`)."""
    t0 = time.time()
    sizes = [p.manifest.num_rows for p in parts]
    offsets = np.cumsum([0, *sizes])
    stacked = []
    for p, start in zip(parts, offsets):
        assert indexed(p.manifest), p.name
        index = p.manifest["index"].to_numpy()
        stacked.append(p.manifest.set_column(p.manifest.schema.get_field_index("index"), "index",
                                             pa.array(index + start, pa.int64())))
    clips = decode(pa.concat_tables(stacked), seed_key=seed_key(cfg.seed, None))
    encode(cfg, clips, frozen, staging / "all")
    folders = split_shards(staging / "all", sizes, staging)
    folders = {p.name: folder for p, folder in zip(parts, folders)}
    seconds = time.time() - t0
    log(f"feature cache: {int(offsets[-1])} clips of {len(parts)} parts ({', '.join(p.name for p in parts)}) "
        f"encoded in one pass ({seconds:.1f}s)")
    return folders, seconds


def split_shards(stacked: Path, sizes: list[int], out: Path) -> list[Path]:
    """The shards in `stacked`, whose rows' `index` runs over parts of `sizes` rows one after the
    other, split into one folder per part (`out/<i>`, shard names kept) with the part's own
    indices 0..size-1."""
    import pyarrow.parquet as pq

    offsets = np.cumsum([0, *sizes])
    folders = [out / str(i) for i in range(len(sizes))]
    for folder in folders:
        folder.mkdir(parents=True)
    for shard in sorted(stacked.glob("*.parquet")):
        table = pq.read_table(shard)
        index = table["index"].to_numpy()
        for folder, lo, hi in zip(folders, offsets[:-1], offsets[1:]):
            rows = (index >= lo) & (index < hi)
            if rows.any():
                own = table.filter(pa.array(rows))
                own = own.set_column(own.schema.get_field_index("index"), "index",
                                     pa.array(index[rows] - lo, table.schema.field("index").type))
                pq.write_table(own, folder / shard.name)
    return folders
