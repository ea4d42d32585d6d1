"""Feeds: a worker's batches are the same whatever decodes them (live with 1 or 3 tasks, blocks in
any order, a prepared entry) and follow zsar.data.order."""

import functools

import numpy as np
import pyarrow as pa
import pytest

from zsar.config import DataConfig
from zsar.data.feed import BlockFeed, LiveFeed, StreamFeed
from zsar.data.order import seed_key, train_positions
from zsar.data.pipeline import decoded_dataset
from zsar.data.prepared import pick_clip
from zsar.data.video import ClipSpec
from conftest import REAL_CLIPS

# 10 rows of the four small clips: the order is the point, not the decoder (the 1080p clip would
# take most of each epoch's decoding)
SMALL = [str(p) for p in REAL_CLIPS if not p.name.startswith("ntu")]
PATHS = [SMALL[i % len(SMALL)] for i in range(10)]
TRAIN = ClipSpec(num_frames=2, size=16, train=True, flip=True)
FIXED = ClipSpec(num_frames=2, size=16)


def manifest() -> pa.Table:
    return pa.table({"path": PATHS, "label": [i % 3 for i in range(len(PATHS))], "index": list(range(len(PATHS)))})


def live(spec, tasks, batch, seed=0):
    make = functools.partial(decoded_dataset, spec=spec, data_cfg=DataConfig(decode_tasks=tasks, decode_batch=batch))
    return LiveFeed(manifest(), make, seed, fixed=not spec.train)


def epoch(feed, e, rank=0, world=1, global_batch=4):
    return list(feed.train_batches(e, rank, world, global_batch))


def same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert np.array_equal(x["index"], y["index"])
        assert np.array_equal(x["video"], y["video"])


def test_live_batches_follow_the_epoch_order_whatever_the_decode_tasks(ray_session):
    one, three = live(TRAIN, tasks=1, batch=1), live(TRAIN, tasks=3, batch=2)
    first = epoch(one, 0)
    same(first, epoch(three, 0))
    assert np.array_equal(np.concatenate([b["index"] for b in first]), train_positions(10, 0, 0, 4))
    second = epoch(one, 1)
    assert not np.array_equal(first[0]["index"], second[0]["index"])  # a new order each epoch
    again = epoch(three, 1)
    same(second, again)  # the same clips, drawn from (seed, epoch, index)
    by_index = {int(i): v for b in first for i, v in zip(b["index"], b["video"])}
    redrawn = {int(i): v for b in second for i, v in zip(b["index"], b["video"])}
    common = set(by_index) & set(redrawn)
    assert common and any(not np.array_equal(by_index[i], redrawn[i]) for i in common)  # new random clips


def test_two_workers_split_each_global_batch_of_one_worker(ray_session):
    feed = live(TRAIN, tasks=2, batch=2)
    whole = epoch(feed, 2, global_batch=4)
    halves = [epoch(feed, 2, rank=r, world=2, global_batch=4) for r in range(2)]
    for step, batch in enumerate(whole):
        joined = np.concatenate([halves[0][step]["video"], halves[1][step]["video"]])
        assert np.array_equal(joined, batch["video"])


def test_blocks_made_in_any_order_read_back_as_live_decoding(ray_session):
    rows = manifest()
    decoded = decoded_dataset(rows, FIXED, DataConfig(decode_tasks=2, decode_batch=1), seed_key=seed_key(0, None))
    shuffled = decoded.randomize_block_order(seed=11)  # blocks as a finishing order might leave them
    blocks = BlockFeed.from_dataset(shuffled, rows.num_rows, seed=0)
    same(epoch(blocks, 3), epoch(live(FIXED, tasks=1, batch=3), 3))
    evaluated = list(blocks.eval_batches(1, 2, 3))
    assert np.concatenate([b["index"] for b in evaluated]).tolist() == [1, 3, 5, 7, 9]


def test_a_missing_row_is_an_error_not_a_shorter_epoch(ray_session):
    rows = manifest()
    decoded = decoded_dataset(rows.slice(0, 9), FIXED, DataConfig(), seed_key=seed_key(0, None))
    with pytest.raises(ValueError, match="1 of 10 rows are missing"):
        BlockFeed.from_dataset(decoded, rows.num_rows, seed=0)


def test_prepared_k_clips_pick_one_per_seed_epoch_and_index(ray_session):
    import ray.data

    k_clips = ray.data.from_items([{"index": i, "video": np.full((3, 1, 2), i * 10 + np.arange(3)[:, None, None]),
                                    "label": 0} for i in range(6)])
    feed = BlockFeed.from_dataset(k_clips, 6, seed=4, pick=pick_clip)
    a, b = epoch(feed, 0, global_batch=2), epoch(feed, 0, global_batch=2)
    same(a, b)
    picked = {int(i): int(v.ravel()[0]) % 10 for batch in a for i, v in zip(batch["index"], batch["video"])}
    later = {int(i): int(v.ravel()[0]) % 10 for e in range(1, 6) for batch in epoch(feed, e, global_batch=2)
             for i, v in zip(batch["index"], batch["video"])}
    assert all(0 <= k < 3 for k in picked.values()) and later != picked


def test_a_stream_is_deterministic_and_workers_take_disjoint_rows(ray_session):
    import ray.data

    ds = ray.data.from_items([{"index": i, "video": np.full(2, i), "label": 0} for i in range(40)], override_num_blocks=8)
    feed = StreamFeed(ds, 40, seed=1, buffer_rows=8)
    first = epoch(feed, 0, global_batch=8)
    same(first, epoch(feed, 0, global_batch=8))
    assert len(first) == 5 and sorted(np.concatenate([b["index"] for b in first])) == list(range(40))
    assert not np.array_equal(first[0]["index"], epoch(feed, 1, global_batch=8)[0]["index"])
    ranks = [np.concatenate([b["index"] for b in epoch(feed, 0, r, 2, 8)]) for r in range(2)]
    assert len(set(ranks[0]) & set(ranks[1])) == 0 and len(ranks[0]) == len(ranks[1]) == 20
