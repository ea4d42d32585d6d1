"""Share of an `sc_clip` training step spent in SQG (seeds, K-means and mask fusion), on CPU.

Two shapes, measured side by side in one run with random weights: the demo's tiny backbone and
ViT-B/16 (8 frames at 224 px, the paper's shape, with a CPU-sized batch). A step is forward,
backward and the AdamW update, as the training loop runs it; SQG time is measured inside the same
steps (the method's `sqg_masks`), and then split into K-means and fusion on the same tokens.
Random tokens cluster differently from real CLIP tokens: K-means' cost depends only on the shapes,
fusion's on how many sweeps the transitive merge needs (printed).

    python benchmarks/sc_clip_step.py [--steps 3] [--threads 2] [--vit-batch 2] [--tiny-batch 16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch


def build(backbone: str, num_frames: int):
    from zsar.config import resolve
    from zsar.models.backbone import create_backbone
    from zsar.registry import METHODS

    exp = resolve(method="sc_clip", dataset="demo", protocol="base2novel",
                  overrides={"backbone": {"name": backbone, "pretrained": None}, "data": {"num_frames": num_frames}})
    backbone = create_backbone(exp.backbone)
    torch.manual_seed(0)
    return METHODS.get("sc_clip")(exp.method_config(), backbone, exp), backbone.image_size


def timed_sqg(method):
    """Wrap `method.sqg_masks` so that each call's wall time is recorded."""
    times, inner = [], method.sqg_masks

    def sqg_masks(dense):
        t0 = time.perf_counter()
        out = inner(dense)
        times.append(time.perf_counter() - t0)
        return out

    method.sqg_masks = sqg_masks
    return times


def split_sqg(method, dense):
    """K-means (with the seeds) and fusion (with compaction) timed apart on the same tokens."""
    import torch.nn.functional as nnf

    from zsar.methods.sc_clip_sqg import compact, merge_groups, spherical_kmeans, window_seeds

    cfg, (h, w) = method.cfg, method.grid
    b, t, hw, e = dense.shape
    t0 = time.perf_counter()
    tokens = nnf.normalize(dense.float(), dim=-1)
    seeds = nnf.normalize(window_seeds(tokens.reshape(b, t, h, w, e), method.window_specs), dim=-1)
    assign, centres, counts = spherical_kmeans(tokens.reshape(b, t * hw, e), seeds, cfg.kmeans_iters)
    t1 = time.perf_counter()
    root = merge_groups(centres, counts > 0, cfg.delta)
    slot, valid = compact(root.gather(1, assign), root.shape[1])
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, seeds.shape[1], int(valid.sum(1).float().mean())


def measure(name: str, backbone: str, batch: int, steps: int, num_frames: int = 8) -> dict:
    from zsar.models.text import LabelSet

    method, size = build(backbone, num_frames)
    method.train()
    labels = LabelSet(tuple(f"action {i}" for i in range(8)))
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    data = {"video": torch.randn(batch, num_frames, 3, size, size, generator=gen), "label": torch.arange(batch) % 8}
    method.class_embeddings(labels)  # text embeddings are cached: not part of a step
    sqg_times = timed_sqg(method)
    step_times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        out = method.training_step(data, labels)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        step_times.append(time.perf_counter() - t0)
    step, sqg = statistics.median(step_times[1:]), statistics.median(sqg_times[1:])  # the first is warm-up
    with torch.no_grad():
        dense = method.encode_tokens(data["video"], True)[0]
    kmeans, fusion, seeds, masks = split_sqg(method, dense)
    return {"name": name, "batch": batch, "step_s": step, "sqg_s": sqg, "share": sqg / step, "kmeans_s": kmeans,
            "fusion_s": fusion, "seeds": seeds, "masks": masks}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tiny-batch", type=int, default=16)
    p.add_argument("--vit-batch", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import os

    os.environ.setdefault("ZSAR_HOME", tempfile.mkdtemp(prefix="zsar-bench-"))
    rows = [measure("zsar-tiny (demo)", "zsar-tiny", args.tiny_batch, args.steps),
            measure("ViT-B/16", "ViT-B-16", args.vit_batch, args.steps)]
    print(f"torch threads: {torch.get_num_threads()}, 8 frames, median of {args.steps} steps after one warm-up")
    print(f"{'shape':20} {'batch':>5} {'K seeds':>8} {'masks':>6} {'step s':>8} {'SQG s':>7} {'SQG share':>9} "
          f"{'K-means s':>9} {'fusion s':>8}")
    for r in rows:
        print(f"{r['name']:20} {r['batch']:>5} {r['seeds']:>8} {r['masks']:>6} {r['step_s']:>8.3f} {r['sqg_s']:>7.3f} "
              f"{100 * r['share']:>8.1f}% {r['kmeans_s']:>9.3f} {r['fusion_s']:>8.3f}")


if __name__ == "__main__":
    main()
