"""Clips/s one CPU core decodes with zsar's decode path (PyAV + the training sampler and crops),
the figure behind the CPU:GPU ratio in cluster/README.md.

One process, one decoder thread, one torch thread: the per-core rate, counted in CPU seconds of
this process (time.process_time), so that other load on a shared machine does not lower it.
Wall-clock clips/s are printed beside it. Each clip is a ViT-B/16
training clip (8 segment-sampled frames, random-resized crop to 224) or an evaluation clip
(8 frames, 1 view, centre 224), decoded from the real test clips in tests/fixtures/real_clips
(Kinetics/UCF/NTU-style files, 240p to 1080p). The rate is printed per file and for the mix.

    python benchmarks/decode_per_core.py [--seconds 20] [--size 224] [--frames 8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from zsar.data.video import ClipSpec, load_clip

CLIPS = sorted(p for p in (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real_clips").iterdir()
               if p.suffix in (".mp4", ".avi"))


def rate(path: Path, spec: ClipSpec, seconds: float) -> tuple[float, float]:
    """(clips per CPU second, clips per wall second)."""
    rng = np.random.default_rng(0)
    load_clip(str(path), spec, rng)  # warm-up (codec init, page cache)
    n, c0, t0 = 0, time.process_time(), time.perf_counter()
    while time.process_time() - c0 < seconds:
        load_clip(str(path), spec, rng)
        n += 1
    return n / (time.process_time() - c0), n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0, help="time per file and mode")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--frames", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    per = args.seconds / len(CLIPS)
    print(f"{len(CLIPS)} real clips, {args.frames} frames at {args.size}px, 1 decoder thread, 1 torch thread")
    for mode, train in (("train", True), ("eval", False)):
        spec = ClipSpec(num_frames=args.frames, size=args.size, train=train, flip=train, decoder_threads=1)
        rates = {p.name: rate(p, spec, per) for p in CLIPS}
        for name, (cpu, wall) in rates.items():
            print(f"  {mode:<5} {name:<45} {cpu:7.2f} clips per CPU-s ({wall:.2f}/s wall)")
        mean_time = sum(1 / cpu for cpu, _ in rates.values()) / len(rates)  # a mix of these files, one each
        print(f"{mode}: {1 / mean_time:.2f} clips/s per core over the mix")


if __name__ == "__main__":
    main()
