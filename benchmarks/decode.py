"""Decoding throughput, side by side in one run, on the same inputs:

1. a plain single-process PyAV loop (`load_clip` on each file in turn, seek-and-stop);
2. the Ray Data pipeline (`zsar.data.pipeline.decoded_dataset`) on all cores, Ray start-up excluded;
3. the same pipeline decoding every frame of every video instead of seeking and stopping.

Inputs: the real clips in tests/fixtures/real_clips plus, made from each of them by remuxing its
packets end to end without re-encoding (`zsar.data.remux`), a video of at least `--long-seconds`.
Each measurement decodes at least `--decodes` clips (the inputs cycled). The sampling is FROSTER /
SC-CLIP's 8x16 (8 frames at stride 16, one centre view, 224 px). The pipeline rows are also run on
the long videos alone, where seek-and-stop matters most, and on the long .mp4 and .avi files apart
(MP4 seeks by timestamps, AVI by packet order). Printed: clips/s, the ratios, and the peak RSS of
the driver and of the busiest decode worker.

    python benchmarks/decode.py [--decodes 100] [--long-seconds 30] [--frames 8] [--stride 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from zsar.data.pipeline import decode_batch, decoded_dataset
from zsar.data.remux import repeat_remux
from zsar.data.video import ClipSpec, load_clip

CLIPS = sorted(p for p in (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real_clips").iterdir()
               if p.suffix in (".mp4", ".avi"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decode_with_rss(batch: dict, spec: dict, seed=None) -> dict:
    """decode_batch, plus the worker's peak RSS so far (MB) on every row."""
    out = decode_batch(batch, spec, seed)
    out["rss_mb"] = np.full(len(out["index"]), peak_rss_mb())
    return out


@dataclasses.dataclass
class Pipeline:
    decode_tasks: int
    decode_batch: int = 2
    augment: bool = False


def plain_loop(paths: list[str], spec: ClipSpec) -> float:
    t0 = time.perf_counter()
    for p in paths:
        load_clip(p, spec)
    return len(paths) / (time.perf_counter() - t0)


def pipeline(paths: list[str], spec: ClipSpec, cores: int) -> tuple[float, float, int]:
    """(clips/s, peak worker RSS MB, failed rows)."""
    manifest = pa.table({"path": paths, "label": [0] * len(paths), "index": list(range(len(paths)))})
    t0 = time.perf_counter()
    ds = decoded_dataset(manifest, spec, Pipeline(decode_tasks=cores), train=False, seed=0, decode=decode_with_rss)
    rows, rss, failed = 0, 0.0, 0
    for batch in ds.iter_batches(batch_size=8, batch_format="numpy"):
        rows += len(batch["index"])
        rss = max(rss, float(batch["rss_mb"].max()))
        failed += int((~batch["ok"]).sum())
    assert rows == len(paths)
    return rows / (time.perf_counter() - t0), rss, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decodes", type=int, default=100, help="clip decodes per measurement (at least)")
    parser.add_argument("--long-seconds", type=float, default=30.0)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    import ray
    import torch

    torch.set_num_threads(1)
    cores = os.cpu_count() or 1
    spec = ClipSpec(num_frames=args.frames, sampler="dense", stride=args.stride, size=args.size, decoder_threads=1)
    everything = dataclasses.replace(spec, decode="all")
    with tempfile.TemporaryDirectory() as tmp:
        longs = [str(repeat_remux(p, Path(tmp) / f"long_{p.name}", args.long_seconds)) for p in CLIPS]
        mixed = [str(p) for p in CLIPS] + longs
        cycle = lambda files: [files[i % len(files)] for i in range(max(args.decodes, len(files)))]  # noqa: E731
        inputs, long_inputs = cycle(mixed), cycle(longs)
        long_mp4 = cycle([p for p in longs if p.endswith(".mp4")])
        long_avi = cycle([p for p in longs if p.endswith(".avi")])
        print(f"{len(CLIPS)} real clips + {len(longs)} remuxed to >= {args.long_seconds:.0f} s; "
              f"{len(inputs)} decodes per row; {args.frames}x{args.stride} dense, {args.size} px; {cores} cores")

        ray.init(num_cpus=cores, include_dashboard=False, logging_level="ERROR")  # start-up not timed
        ray.data.DataContext.get_current().enable_progress_bars = False
        pipeline([str(CLIPS[0])] * 16 * cores, spec, cores)  # start every worker (imports), not timed

        loop = plain_loop(inputs, spec)
        piped, rss_seek, failed = pipeline(inputs, spec, cores)
        piped_all, rss_all, _ = pipeline(inputs, everything, cores)
        long_seek, _, _ = pipeline(long_inputs, spec, cores)
        long_all, _, _ = pipeline(long_inputs, everything, cores)
        mp4_seek, _, _ = pipeline(long_mp4, spec, cores)
        mp4_all, _, _ = pipeline(long_mp4, everything, cores)
        avi_seek, _, _ = pipeline(long_avi, spec, cores)
        avi_all, _, _ = pipeline(long_avi, everything, cores)
        ray.shutdown()

    print(f"{'':<44}{'clips/s':>9}")
    print(f"{'plain single-process PyAV loop':<44}{loop:>9.2f}")
    print(f"{'Ray Data pipeline, seek-and-stop':<44}{piped:>9.2f}")
    print(f"{'Ray Data pipeline, decode everything':<44}{piped_all:>9.2f}")
    print(f"{'  long videos only, seek-and-stop':<44}{long_seek:>9.2f}")
    print(f"{'  long videos only, decode everything':<44}{long_all:>9.2f}")
    print(f"{'  long .mp4 only, seek-and-stop':<44}{mp4_seek:>9.2f}")
    print(f"{'  long .mp4 only, decode everything':<44}{mp4_all:>9.2f}")
    print(f"{'  long .avi only, seek-and-stop':<44}{avi_seek:>9.2f}")
    print(f"{'  long .avi only, decode everything':<44}{avi_all:>9.2f}")
    print(f"pipeline / plain loop:                         {piped / loop:.2f}x (target >= 1.6x on 2 cores)")
    print(f"seek-and-stop / decode everything, all inputs: {piped / piped_all:.2f}x")
    print(f"seek-and-stop / decode everything, long:       {long_seek / long_all:.2f}x (target >= 2x)")
    print(f"seek-and-stop / decode everything, long .mp4:  {mp4_seek / mp4_all:.2f}x (by timestamps)")
    print(f"seek-and-stop / decode everything, long .avi:  {avi_seek / avi_all:.2f}x (by packet order)")
    print(f"peak RSS: driver {peak_rss_mb():.0f} MB; decode worker {max(rss_seek, rss_all):.0f} MB "
          f"(seek {rss_seek:.0f}, everything {rss_all:.0f}); failed rows {failed}")


if __name__ == "__main__":
    main()
