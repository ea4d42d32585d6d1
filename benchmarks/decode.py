"""Decoding throughput, side by side in one run, on the same inputs:

1. a plain single-process PyAV loop: open, decode from the start, stop after the last wanted frame,
   the same resize (in the decoder's RGB conversion) and centre crop, nothing else;
2. `load_clip` on each file in turn (single process; it chooses per file between that and seeking);
3. the Ray Data pipeline (`zsar.data.pipeline.decoded_dataset`) on all cores, Ray start-up excluded;
4. the same pipeline decoding every frame of every video instead of stopping early or seeking.

Inputs: the real clips in tests/fixtures/real_clips plus, made from each of them by remuxing its
packets end to end without re-encoding (`zsar.data.remux`), a video of at least `--long-seconds`.
Each measurement decodes at least `--decodes` clips (the inputs cycled). The sampling is FROSTER /
SC-CLIP's 8x16 (8 frames at stride 16, one centre view, 224 px). The two single-process loops are
timed file by file in alternation (the machine's load hits both alike); `load_clip` is also compared
with the plain loop on the short real clips alone, where reading from the start should win. The
pipeline rows are also run on the long videos alone, where seeking matters most, and on the long
.mp4 and .avi files apart (MP4 seeks by timestamps, AVI by packet order). Printed: clips/s, the
ratios, the CPU time a clip took (the loops' process time; the pipeline's decode UDF's, summed over
workers, Ray's own overhead left out: on a shared machine these ratios are the steadier ones), the
peak RSS of the driver and of the busiest decode worker (its process's high-water mark), and
whether a decode worker had imported torch.

    python benchmarks/decode.py [--decodes 100] [--long-seconds 30] [--frames 8] [--stride 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from zsar.data.order import seed_key
from zsar.data.pipeline import decode_batch, decoded_dataset
from zsar.data.remux import repeat_remux
from zsar.data.video import ClipSpec, count_frames, load_clip, sample_indices
from zsar.data.views import crop_positions, rgb_frame

CLIPS = sorted(p for p in (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real_clips").iterdir()
               if p.suffix in (".mp4", ".avi"))
HEAVY = ("torch", "torchvision", "open_clip", "mlflow")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decode_with_rss(batch: dict, spec: dict, seed_key: list[int]) -> dict:
    """decode_batch, plus the worker's peak RSS so far (MB), whether it imported torch & co, and
    the CPU seconds the batch took (spread over its rows)."""
    t0 = time.process_time()
    out = decode_batch(batch, spec, seed_key)
    out["cpu_s"] = np.full(len(out["index"]), (time.process_time() - t0) / len(out["index"]))
    out["rss_mb"] = np.full(len(out["index"]), peak_rss_mb())
    out["heavy"] = np.full(len(out["index"]), any(m in sys.modules for m in HEAVY))
    return out


@dataclasses.dataclass
class Pipeline:
    decode_tasks: int
    decode_batch: int = 2


def plain_clip(path: str, spec: ClipSpec) -> np.ndarray:
    """The plain loop's clip: decode from the start, stop after the last wanted frame, resize the
    short side in the RGB conversion, centre crop."""
    import av

    with av.open(path) as c:
        stream = c.streams.video[0]
        stream.codec_context.thread_count = spec.decoder_threads
        indices = sample_indices(stream.frames or count_frames(c), spec)
        wanted, last, got = set(indices.tolist()), int(indices.max()), {}
        for n, frame in enumerate(c.decode(stream)):
            if n in wanted:
                got[n] = rgb_frame(frame, spec.resize_to)
            if n >= last:
                break
    frames = np.stack([got.get(int(i), got[max(got)]) for i in indices])
    (y, x), s = crop_positions(*frames.shape[1:3], spec.size, 1)[0], spec.size
    return np.ascontiguousarray(frames[:, y:y + s, x:x + s])


def side_by_side(paths: list[str], spec: ClipSpec) -> dict[str, tuple[float, float]]:
    """{"plain" | "load_clip": (clips/s, CPU ms a clip)}, each file timed under both in turn
    (alternating which goes first)."""
    wall, cpu = {"plain": 0.0, "load_clip": 0.0}, {"plain": 0.0, "load_clip": 0.0}
    runs = {"plain": lambda p: plain_clip(p, spec), "load_clip": lambda p: load_clip(p, spec)}
    for k, p in enumerate(paths):
        for name in (("plain", "load_clip") if k % 2 == 0 else ("load_clip", "plain")):
            t0, c0 = time.perf_counter(), time.process_time()
            runs[name](p)
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
    return {name: (len(paths) / wall[name], 1000 * cpu[name] / len(paths)) for name in wall}


def pipeline(paths: list[str], spec: ClipSpec, cores: int) -> tuple[float, float, float, int, bool]:
    """(clips/s, decode CPU ms a clip in the workers, peak worker RSS MB, failed rows, whether a
    worker had imported torch & co)."""
    manifest = pa.table({"path": paths, "label": [0] * len(paths), "index": list(range(len(paths)))})
    t0 = time.perf_counter()
    ds = decoded_dataset(manifest, spec, Pipeline(decode_tasks=cores), seed_key=seed_key(0, None),
                         decode=decode_with_rss)
    rows, rss, failed, heavy, cpu = 0, 0.0, 0, False, 0.0
    for batch in ds.iter_batches(batch_size=8, batch_format="numpy"):
        rows += len(batch["index"])
        cpu += float(batch["cpu_s"].sum())
        rss = max(rss, float(batch["rss_mb"].max()))
        failed += int((~batch["ok"]).sum())
        heavy = heavy or bool(batch["heavy"].any())
    assert rows == len(paths)
    return rows / (time.perf_counter() - t0), 1000 * cpu / rows, rss, failed, heavy


def report(rows: dict, cpu: dict, rss: list[float], heavy: bool, failed: int) -> None:
    print(f"{'':<48}{'clips/s':>9}{'CPU ms/clip':>13}")
    for name, value in rows.items():
        print(f"{name:<48}{value:>9.2f}{cpu[name]:>13.1f}")
    r, c = rows, cpu
    print(f"pipeline / load_clip loop, all inputs:         {r['pipeline, all inputs'] / r['load_clip loop, all inputs']:.2f}x"
          " (target >= 1.6x on a quiet 2-core machine)")
    print(f"pipeline / plain loop, all inputs:             {r['pipeline, all inputs'] / r['plain loop, all inputs']:.2f}x")
    print(f"load_clip / plain loop, all inputs:            {r['load_clip loop, all inputs'] / r['plain loop, all inputs']:.2f}x")
    print(f"load_clip / plain loop, short real clips:      {r['load_clip loop, short clips'] / r['plain loop, short clips']:.2f}x"
          f" (target >= 1.0x); by CPU time {c['plain loop, short clips'] / c['load_clip loop, short clips']:.2f}x")
    print(f"pipeline / decode everything, all inputs:      {r['pipeline, all inputs'] / r['pipeline decoding everything, all']:.2f}x")
    print(f"pipeline / decode everything, long:            {r['  long only, pipeline'] / r['  long only, decoding everything']:.2f}x"
          f" (target >= 2x); by CPU time {c['  long only, decoding everything'] / c['  long only, pipeline']:.2f}x")
    print(f"pipeline / decode everything, long .mp4:       {r['  long .mp4, pipeline'] / r['  long .mp4, decoding everything']:.2f}x"
          " (seeks by timestamps)")
    print(f"pipeline / decode everything, long .avi:       {r['  long .avi, pipeline'] / r['  long .avi, decoding everything']:.2f}x"
          " (seeks by packet order)")
    print(f"peak RSS: driver {peak_rss_mb():.0f} MB; decode worker {max(rss):.0f} MB (target <= 500 MB; "
          f"per row {', '.join(f'{x:.0f}' for x in rss)}); torch & co in a decode worker: {'yes' if heavy else 'no'}; "
          f"failed rows {failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decodes", type=int, default=100, help="clip decodes per measurement (at least)")
    parser.add_argument("--long-seconds", type=float, default=30.0)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    import ray

    cores = os.cpu_count() or 1
    spec = ClipSpec(num_frames=args.frames, sampler="dense", stride=args.stride, size=args.size, decoder_threads=1)
    everything = dataclasses.replace(spec, decode="all")
    with tempfile.TemporaryDirectory() as tmp:
        longs = [str(repeat_remux(p, Path(tmp) / f"long_{p.name}", args.long_seconds)) for p in CLIPS]
        mixed = [str(p) for p in CLIPS] + longs
        cycle = lambda files: [files[i % len(files)] for i in range(max(args.decodes, len(files)))]
        inputs, long_inputs, short_inputs = cycle(mixed), cycle(longs), cycle([str(p) for p in CLIPS])
        long_mp4 = cycle([p for p in longs if p.endswith(".mp4")])
        long_avi = cycle([p for p in longs if p.endswith(".avi")])
        print(f"{len(CLIPS)} real clips + {len(longs)} remuxed to >= {args.long_seconds:.0f} s; "
              f"{len(inputs)} decodes per row; {args.frames}x{args.stride} dense, {args.size} px; {cores} cores")

        rows, cpu = {}, {}
        for label, paths in (("short clips", short_inputs), ("all inputs", inputs)):
            for name, (speed, ms) in side_by_side(paths, spec).items():
                rows[f"{name} loop, {label}"], cpu[f"{name} loop, {label}"] = speed, ms

        ray.init(num_cpus=cores, include_dashboard=False, logging_level="ERROR")  # start-up not timed
        ray.data.DataContext.get_current().enable_progress_bars = False
        pipeline([str(CLIPS[0])] * 16 * cores, spec, cores)  # start every worker (imports), not timed
        measured = {
            "pipeline, all inputs": (inputs, spec), "pipeline decoding everything, all": (inputs, everything),
            "  long only, pipeline": (long_inputs, spec), "  long only, decoding everything": (long_inputs, everything),
            "  long .mp4, pipeline": (long_mp4, spec), "  long .mp4, decoding everything": (long_mp4, everything),
            "  long .avi, pipeline": (long_avi, spec), "  long .avi, decoding everything": (long_avi, everything),
        }
        rss, heavy, failed = [], False, 0
        for name, (paths, s) in measured.items():
            rows[name], cpu[name], peak, bad, imported = pipeline(paths, s, cores)
            rss.append(peak)
            heavy, failed = heavy or imported, failed + bad
        ray.shutdown()
    report(rows, cpu, rss, heavy, failed)


if __name__ == "__main__":
    main()
