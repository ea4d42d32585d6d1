"""What a worker reads: its rows of one manifest part, in the order `zsar.data.order` fixes, as
numpy batches (the decode UDF's columns: the input tensor, label, index, path, ok, short, error).

A feed is built once on the driver and sent to every worker (and every sweep trial), which asks
it for an epoch's training batches or for its evaluation batches. Three kinds:

- `LiveFeed`: rows decoded on demand. Each epoch a worker decodes exactly its own rows, in their
  order (Ray Data with preserve_order), with draws seeded by (seed, epoch, index).
- `BlockFeed`: fixed rows already decoded (evaluation views, training clips without
  augmentation, prepared clips, frozen features) held in Ray's object store as numpy blocks; a
  worker reads its rows by manifest index, so how the blocks were made (tasks, their order, live
  decoding or a cache) never shows. A cache entry's shards are read on the driver, one block
  each, without a Ray Data execution (which costs seconds even for a few rows).
- `StreamFeed`: fixed rows too large for the object store (a large prepared-clip or feature-cache
  entry): each epoch reads the entry's blocks in a seeded order and shuffles rows through a seeded
  buffer; every worker keeps every W-th row. Deterministic, but its order is not the one a
  `LiveFeed` or `BlockFeed` of the same rows would give (the log says so when it is chosen).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from zsar.data.order import eval_positions, row_rng, seed_key, train_positions, train_steps

OBJECT_STORE_LIMIT = 1 << 30  # fixed rows up to 1 GiB are held in Ray's object store
BLOCKS_HELD = 64  # blocks a reader keeps mapped between batches


def _take(columns: dict, rows: np.ndarray) -> dict:
    return {k: v[rows] for k, v in columns.items()}


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclass
class LiveFeed:
    """Rows decoded on demand. `make(rows_table, seed_key=...)` returns a Ray Dataset that
    decodes `rows_table` in its order (zsar.data.pipeline.decoded_dataset)."""

    manifest: object  # pyarrow.Table
    make: Callable
    seed: int
    fixed: bool  # the same draws every epoch (no augmentation)

    @property
    def num_rows(self) -> int:
        return self.manifest.num_rows

    def _decode(self, positions: np.ndarray, key: list[int], batch_size: int) -> Iterator[dict]:
        if len(positions) == 0:
            return iter(())
        import pyarrow as pa

        ds = self.make(self.manifest.take(pa.array(positions)), seed_key=key)
        return ds.iter_batches(batch_size=batch_size, batch_format="numpy", drop_last=False, prefetch_batches=2)

    def train_batches(self, epoch: int, rank: int, world: int, global_batch: int) -> Iterator[dict]:
        positions = train_positions(self.num_rows, self.seed, epoch, global_batch, rank, world)
        return self._decode(positions, seed_key(self.seed, None if self.fixed else epoch), global_batch // world)

    def eval_batches(self, rank: int, world: int, batch_size: int) -> Iterator[dict]:
        return self._decode(eval_positions(self.num_rows, rank, world), seed_key(self.seed, None), batch_size)


@dataclass(frozen=True)
class Shards:
    """The Parquet files of a published cache entry (on `fs`, local when None)."""

    files: list[str]
    fs: object = None
    columns: list[str] | None = None


def _block_indices(block: dict) -> np.ndarray:
    return np.asarray(block["index"], dtype=np.int64)


@dataclass
class BlockFeed:
    """Fixed rows in Ray's object store, read by manifest index. `pick(batch, seed_key)` turns a
    stored training row into the epoch's row (a prepared entry's K clips -> one)."""

    refs: list  # ObjectRef[dict[str, np.ndarray]], one per block
    where: np.ndarray  # [n, 2]: (block, row within it) of manifest index i
    seed: int
    pick: Callable | None = None
    _held: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)

    @classmethod
    def from_dataset(cls, ds, num_rows: int, seed: int, pick: Callable | None = None) -> "BlockFeed":
        """The rows of a Ray Dataset (executed once; its blocks stay in the object store)."""
        import ray

        refs = ds.to_numpy_refs()
        get_indices = ray.remote(_block_indices)
        return cls.from_blocks(refs, ray.get([get_indices.remote(r) for r in refs]), num_rows, seed, pick)

    @classmethod
    def from_shards(cls, shards: "Shards", num_rows: int, seed: int, pick: Callable | None = None) -> "BlockFeed":
        """The rows of a cache entry's Parquet shards, read here and put in the object store one
        block per shard: the same blocks Ray Data would make, without starting an execution."""
        import pyarrow.parquet as pq
        import ray
        from ray.data.block import BlockAccessor  # also registers Ray's tensor column types

        refs, indices = [], []
        for f in shards.files:
            block = BlockAccessor.for_block(pq.read_table(f, filesystem=shards.fs, columns=shards.columns)).to_numpy()
            indices.append(_block_indices(block))
            refs.append(ray.put(block))
        return cls.from_blocks(refs, indices, num_rows, seed, pick)

    @classmethod
    def from_blocks(cls, refs: list, indices: list[np.ndarray], num_rows: int, seed: int,
                    pick: Callable | None = None) -> "BlockFeed":
        where = np.full((num_rows, 2), -1, dtype=np.int64)
        for block, idx in enumerate(indices):
            if len(idx) and (idx.min() < 0 or idx.max() >= num_rows):
                raise ValueError(f"row index {int(idx.max())} outside a part of {num_rows} rows")
            where[idx, 0] = block
            where[idx, 1] = np.arange(len(idx))
        missing = np.flatnonzero(where[:, 0] < 0)
        if missing.size:
            raise ValueError(f"{missing.size} of {num_rows} rows are missing from the data (first index {missing[0]})")
        return cls(refs, where, seed, pick)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_held"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._held = OrderedDict()

    @property
    def num_rows(self) -> int:
        return len(self.where)

    def _blocks(self, ids: np.ndarray) -> dict[int, dict]:
        import ray

        wanted = [int(b) for b in np.unique(ids)]
        new = [b for b in wanted if b not in self._held]
        for b, block in zip(new, ray.get([self.refs[b] for b in new])):
            self._held[b] = block
        for b in wanted:
            self._held.move_to_end(b)
        while len(self._held) > max(BLOCKS_HELD, len(wanted)):
            self._held.popitem(last=False)
        return {b: self._held[b] for b in wanted}

    def _read(self, positions: np.ndarray, batch_size: int, key: list[int] | None) -> Iterator[dict]:
        for start in range(0, len(positions), batch_size):
            where = self.where[positions[start:start + batch_size]]
            blocks = self._blocks(where[:, 0])
            parts, slots = [], []
            for b, block in blocks.items():
                sel = np.flatnonzero(where[:, 0] == b)
                parts.append(_take(block, where[sel, 1]))
                slots.append(sel)
            slot = np.concatenate(slots)
            inverse = np.empty_like(slot)
            inverse[slot] = np.arange(len(slot))
            batch = _take(_concat(parts), inverse)
            yield self.pick(batch, key) if (self.pick is not None and key is not None) else batch

    def train_batches(self, epoch: int, rank: int, world: int, global_batch: int) -> Iterator[dict]:
        positions = train_positions(self.num_rows, self.seed, epoch, global_batch, rank, world)
        return self._read(positions, global_batch // world, seed_key(self.seed, epoch))

    def eval_batches(self, rank: int, world: int, batch_size: int) -> Iterator[dict]:
        return self._read(eval_positions(self.num_rows, rank, world), batch_size, None)


@dataclass
class StreamFeed:
    """Fixed rows read as a stream each epoch (see the module docstring)."""

    dataset: object  # a lazy ray.data.Dataset, in a fixed order
    num_rows: int
    seed: int
    pick: Callable | None = None
    buffer_rows: int = 1024

    def _rows(self, ds) -> Iterator[dict]:
        for batch in ds.iter_batches(batch_size=256, batch_format="numpy", prefetch_batches=2):
            for i in range(len(batch["index"])):
                yield _take(batch, np.array([i]))

    def train_batches(self, epoch: int, rank: int, world: int, global_batch: int) -> Iterator[dict]:
        per_worker, steps = global_batch // world, train_steps(self.num_rows, global_batch)
        blocks = row_rng([self.seed, epoch], 0)  # one block order for every rank: they split one stream
        ds = self.dataset.randomize_block_order(seed=int(blocks.integers(0, 2**31 - 1)))
        rng = row_rng([self.seed, epoch, rank], 1)
        out: list[dict] = []
        made = 0
        key = seed_key(self.seed, epoch)
        mine = (row for i, row in enumerate(self._rows(ds)) if i % world == rank)
        for row in _shuffled(mine, self.buffer_rows, rng):
            out.append(row)
            if len(out) == per_worker:
                batch = _concat(out)
                yield self.pick(batch, key) if self.pick is not None else batch
                out, made = [], made + 1
                if made == steps:
                    return

    def eval_batches(self, rank: int, world: int, batch_size: int) -> Iterator[dict]:
        out: list[dict] = []
        for row in self._rows(self.dataset):
            if int(row["index"][0]) % world != rank:
                continue
            out.append(row)
            if len(out) == batch_size:
                yield _concat(out)
                out = []
        if out:
            yield _concat(out)


def _shuffled(rows: Iterable[dict], size: int, rng: np.random.Generator) -> Iterator[dict]:
    """A seeded shuffle buffer: a pure function of the row sequence and the generator."""
    buffer: list[dict] = []
    for row in rows:
        if len(buffer) < size:
            buffer.append(row)
            continue
        i = int(rng.integers(0, size))
        yield buffer[i]
        buffer[i] = row
    order = rng.permutation(len(buffer))
    for i in order:
        yield buffer[i]


def fixed_feed(dataset: Callable, num_rows: int, nbytes: int, seed: int, pick: Callable | None = None, log=None,
               shards: Shards | None = None):
    """A BlockFeed when the rows fit the object store's share (read straight from `shards` when the
    rows are a cache entry's), else a StreamFeed. `dataset()` makes the rows' lazy Ray Dataset; it
    is called only when that is what is read."""
    if nbytes <= OBJECT_STORE_LIMIT:
        if shards is not None:
            return BlockFeed.from_shards(shards, num_rows, seed, pick)
        return BlockFeed.from_dataset(dataset(), num_rows, seed, pick)
    if log is not None:
        log(f"{num_rows} fixed rows ({nbytes / 2**30:.1f} GiB) are streamed each epoch in a seeded block order with a "
            "seeded shuffle buffer: deterministic, but not the order live decoding would give")
    return StreamFeed(dataset(), num_rows, seed, pick)
