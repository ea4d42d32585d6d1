"""Which rows a worker reads, in which order, and with which random draws: a pure function of
(seed, absolute epoch, manifest index), never of the order in which Ray Data tasks finish.

- Training: epoch e visits the part's rows in `epoch_order(n, seed, e)`, a seeded permutation of
  manifest positions. Step s of the run takes the global batch `order[s*B:(s+1)*B]`; worker r of
  W takes the r-th slice of it (`train_positions`). So 1 worker and W workers with the same
  global batch see the same rows at every step, and the last partial batch is dropped.
- Evaluation: worker r of W scores positions r, r+W, ... in manifest order (`eval_positions`).
- Random clip offsets, crops, flips and the choice among a prepared entry's K clips of row i in
  epoch e come from `row_rng(seed, e, i)`; fixed views (evaluation, training without
  augmentation) from `row_rng(seed, FIXED, i)`.
"""

from __future__ import annotations

import numpy as np

ORDER_STREAM = 0x5EED_0  # keeps the order's generator apart from the rows' draws
FIXED = 2**31 - 1  # the "epoch" of draws that are the same every epoch (no run has that many)


def seed_key(seed: int, epoch: int | None) -> list[int]:
    """The generator key of an epoch's draws (`epoch=None`: the fixed draws)."""
    return [int(seed), FIXED if epoch is None else int(epoch)]


def row_rng(key: list[int], index: int) -> np.random.Generator:
    return np.random.default_rng([*key, int(index)])


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The manifest positions in the order epoch `epoch` (absolute, from 0) visits them."""
    return np.random.default_rng([int(seed), int(epoch), ORDER_STREAM]).permutation(n)


def train_steps(n: int, global_batch: int) -> int:
    return n // global_batch


def train_positions(n: int, seed: int, epoch: int, global_batch: int, rank: int = 0, world: int = 1) -> np.ndarray:
    """This worker's rows of epoch `epoch`, in step order: per step, `global_batch // world` rows."""
    if global_batch % world:
        raise ValueError(f"global batch {global_batch} is not divisible by {world} workers")
    steps = train_steps(n, global_batch)
    per_worker = global_batch // world
    order = epoch_order(n, seed, epoch)[: steps * global_batch]
    return order.reshape(steps, world, per_worker)[:, rank, :].reshape(-1)


def eval_positions(n: int, rank: int = 0, world: int = 1) -> np.ndarray:
    return np.arange(rank, n, world)
