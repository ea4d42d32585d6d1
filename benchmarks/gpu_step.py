"""Training-step throughput of the video methods at ViT-B/16 shape on one GPU (bf16 autocast).

A step is what the training loop runs: forward, backward and the AdamW update, with random
weights and random frames (the step's cost does not depend on either). Prints clips/s and images/s
per method and frame count, the peak GPU memory, and for `sc_clip` the share of a step spent in SQG
(timed with CUDA synchronisation around the method's `sqg_masks`). These are the GPU-side figures
that the CPU:GPU ratio of `cluster/README.md` divides by the decoder's clips/s per core.

    python benchmarks/gpu_step.py [--batch 32] [--steps 10] [--methods vificlip sc_clip] [--frames 8 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch


def build(method_name: str, num_frames: int, device):
    from zsar.config import resolve
    from zsar.models.backbone import create_backbone
    from zsar.registry import METHODS

    exp = resolve(method=method_name, dataset="demo", protocol="base2novel",
                  overrides={"backbone": {"name": "ViT-B-16", "pretrained": None}, "data": {"num_frames": num_frames}})
    cls = METHODS.get(method_name)
    backbone = create_backbone(exp.backbone, towers=cls.backbone_towers(exp.method_config()))
    torch.manual_seed(0)
    method = cls(exp.method_config(), backbone, exp)
    method.bind_train_labels(None)
    return method.to(device), backbone.image_size


def timed(method, name: str, times: list):
    inner = getattr(method, name)

    def wrapper(*args, **kwargs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = inner(*args, **kwargs)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        return out

    setattr(method, name, wrapper)


def measure(method_name: str, num_frames: int, batch: int, steps: int, device) -> dict:
    from zsar.models.text import LabelSet

    method, size = build(method_name, num_frames, device)
    method.train()
    labels = LabelSet(tuple(f"action {i}" for i in range(32)))
    params = [p for p in method.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    video = torch.randn(batch, num_frames, 3, size, size, device=device)
    data = {"video": video, "label": torch.arange(batch, device=device) % len(labels)}
    sqg: list[float] = []
    if hasattr(method, "sqg_masks"):
        timed(method, "sqg_masks", sqg)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps + 2):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = method.training_step(data, labels)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    step = statistics.median(times[2:])  # two warm-up steps
    row = {"method": method_name, "frames": num_frames, "batch": batch, "step_s": step, "clips_s": batch / step,
           "images_s": batch * num_frames / step, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
           "tunable_m": sum(p.numel() for p in params) / 1e6}
    if sqg:
        row["sqg_share"] = statistics.median(sqg[2:]) / step
    del method, opt, out
    torch.cuda.empty_cache()
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--methods", nargs="+", default=["vificlip", "sc_clip"])
    p.add_argument("--frames", nargs="+", type=int, default=[8, 32])
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_step.py needs a CUDA GPU")
    os.environ.setdefault("ZSAR_HOME", tempfile.mkdtemp(prefix="zsar-bench-"))
    torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.device("cuda")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, bf16 autocast, median of {args.steps} steps after 2 warm-ups")
    print(f"{'method':10} {'frames':>6} {'batch':>5} {'tunable M':>9} {'step s':>7} {'clips/s':>8} {'images/s':>9} {'peak GiB':>8} {'SQG share':>9}")
    for name in args.methods:
        for frames in args.frames:
            try:
                r = measure(name, frames, args.batch, args.steps, device)
            except torch.OutOfMemoryError:
                print(f"{name:10} {frames:>6} {args.batch:>5}  out of GPU memory")
                torch.cuda.empty_cache()
                continue
            share = f"{100 * r['sqg_share']:8.1f}%" if "sqg_share" in r else f"{'-':>9}"
            print(f"{r['method']:10} {r['frames']:>6} {r['batch']:>5} {r['tunable_m']:>9.1f} {r['step_s']:>7.3f} "
                  f"{r['clips_s']:>8.1f} {r['images_s']:>9.0f} {r['peak_gib']:>8.1f} {share}")


if __name__ == "__main__":
    main()
