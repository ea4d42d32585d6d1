"""Reading a cache entry into a run's feed: through a Ray Data execution, against straight from
its Parquet shards on the driver (what `zsar.data.feed.fixed_feed` does for entries that fit the
object store). Both make the same `BlockFeed`; the rows are checked equal.

The entry is written by Ray Data like a feature-cache entry: `--rows` rows of `--frames` x `--dim`
float32 features in `--shards` files. Timed alternately, `--repeats` times each, on one Ray
instance; printed: the median seconds of each read and their ratio.

    python benchmarks/cache_read.py [--rows 96] [--frames 8] [--dim 512] [--shards 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=96)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import ray
    import ray.data

    from zsar.data.feed import BlockFeed, Shards
    from zsar.data.features import entry_files, publish

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        items = [{"index": i, "label": i % 8, "ok": True, "path": f"v{i}.mp4",
                  "frame_features": rng.standard_normal((1, args.frames, args.dim), dtype=np.float32)}
                 for i in range(args.rows)]
        ray.data.from_items(items, override_num_blocks=args.shards).write_parquet(f"{tmp}/.tmp")
        publish(f"{tmp}/.tmp", f"{tmp}/entry", "bench", "benchmark entry")
        files = entry_files(f"{tmp}/entry")

        def via_ray():
            return BlockFeed.from_dataset(ray.data.read_parquet(f"{tmp}/entry", file_extensions=["parquet"]), args.rows, 0)

        def via_shards():
            return BlockFeed.from_shards(Shards(files), args.rows, 0)

        times = {"ray_data": [], "shards": []}
        feeds = {}
        for _ in range(args.repeats):
            for name, read in (("ray_data", via_ray), ("shards", via_shards)):
                t0 = time.perf_counter()
                feeds[name] = read()
                batches = list(feeds[name].eval_batches(0, 1, 32))
                times[name].append(time.perf_counter() - t0)
                feeds[name] = batches
        for a, b in zip(feeds["ray_data"], feeds["shards"], strict=True):
            assert all(np.array_equal(a[k], b[k]) for k in a), "the two reads differ"
    ray.shutdown()
    ray_s, shard_s = statistics.median(times["ray_data"]), statistics.median(times["shards"])
    print(f"entry: {args.rows} rows of {args.frames}x{args.dim} float32 in {len(files)} shards")
    print(f"{'read':<12}{'median s':>10}")
    print(f"{'ray data':<12}{ray_s:>10.3f}")
    print(f"{'shards':<12}{shard_s:>10.3f}")
    print(f"ratio ray data / shards: {ray_s / shard_s:.1f}x")


if __name__ == "__main__":
    main()
