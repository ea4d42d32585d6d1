"""Which rows a worker reads, and in which order: a function of (seed, epoch, manifest index) only."""

import numpy as np
import pytest

from zsar.data.order import epoch_order, eval_positions, row_rng, seed_key, train_positions, train_steps


def test_an_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    a = epoch_order(50, seed=3, epoch=2)
    assert sorted(a) == list(range(50))
    assert np.array_equal(a, epoch_order(50, seed=3, epoch=2))
    assert not np.array_equal(a, epoch_order(50, seed=3, epoch=3))  # a new order every epoch
    assert not np.array_equal(a, epoch_order(50, seed=4, epoch=2))
    assert not np.array_equal(a, np.arange(50))


@pytest.mark.parametrize("world", [1, 2, 4])
def test_workers_share_each_global_batch_exactly(world):
    n, batch, seed, epoch = 37, 8, 5, 1
    steps = train_steps(n, batch)
    assert steps == 4  # the last partial batch (5 rows) is dropped
    order = epoch_order(n, seed, epoch)
    shards = [train_positions(n, seed, epoch, batch, rank, world) for rank in range(world)]
    per = batch // world
    for s in range(steps):
        step_rows = np.concatenate([shard[s * per:(s + 1) * per] for shard in shards])
        assert np.array_equal(step_rows, order[s * batch:(s + 1) * batch])  # rank r holds the r-th slice
    assert len(np.unique(np.concatenate(shards))) == steps * batch


def test_the_global_batch_must_split_evenly():
    with pytest.raises(ValueError, match="not divisible"):
        train_positions(20, 0, 0, 6, 0, 4)


def test_evaluation_rows_are_dealt_round_robin_and_each_scored_once():
    shards = [eval_positions(10, r, 3) for r in range(3)]
    assert [list(s) for s in shards] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]


def test_row_draws_depend_on_seed_epoch_and_index_only():
    draw = lambda key, i: row_rng(key, i).random(3)  # noqa: E731
    assert np.array_equal(draw(seed_key(0, 1), 7), draw(seed_key(0, 1), 7))
    assert not np.array_equal(draw(seed_key(0, 1), 7), draw(seed_key(0, 2), 7))
    assert not np.array_equal(draw(seed_key(0, 1), 7), draw(seed_key(0, 1), 8))
    assert not np.array_equal(draw(seed_key(0, 1), 7), draw(seed_key(1, 1), 7))
    assert not np.array_equal(draw(seed_key(0, None), 7), draw(seed_key(0, 0), 7))  # fixed draws are their own
