"""Steps/s of zsar's training loop under Ray Train against a plain PyTorch loop.

Same tiny model (vificlip on zsar-tiny), same in-memory batches, same torch thread count (printed),
measured side by side in one run. Ray start-up is timed separately and not counted. The Ray figure
is the loop's own training time per epoch (run_loop under TorchTrainer with 1 worker), so
evaluation and checkpointing between epochs do not count against it.

    python benchmarks/train_overhead.py [--steps 60] [--epochs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch


def make_batches(steps: int, batch: int, frames: int, size: int, classes: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "video": rng.integers(0, 256, (batch, 1, frames, size, size, 3), dtype=np.uint8),
            "label": rng.integers(0, classes, batch).astype(np.int64),
            "index": np.arange(batch, dtype=np.int64) + i * batch,
            "path": np.array([f"mem{i}"] * batch, dtype=object),
            "error": np.array([""] * batch, dtype=object),
            "ok": np.ones(batch, dtype=bool),
        }
        for i in range(steps)
    ]


def experiment(args):
    from zsar.config import resolve

    return resolve(
        method="vificlip", dataset="demo", protocol="base2novel",
        overrides={"optim": {"epochs": args.epochs, "batch_size": args.batch, "eval_every": 1000},
                   "resources": {"workers": 1, "torch_threads": args.threads}, "run": {"name": "bench"}},
    )


def labels(classes: int):
    from zsar.models.text import LabelSet

    return LabelSet(tuple(f"class {i}" for i in range(classes)))


def plain_loop(args, batches) -> list[float]:
    """The same steps with nothing around them: steps/s per epoch."""
    from zsar.models.backbone import create_backbone
    from zsar.registry import METHODS
    from zsar.data.views import normalize_clips

    torch.set_num_threads(args.threads)
    cfg = experiment(args)
    backbone = create_backbone(cfg.backbone)
    method = METHODS.get("vificlip")(cfg.method_config(), backbone, cfg)
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=cfg.optim.lr)
    label_set = labels(args.classes)
    rates = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        for b in batches:
            out = method({"video": normalize_clips(b["video"][:, 0], backbone.mean, backbone.std, "cpu"),
                          "label": torch.from_numpy(b["label"])}, label_set)
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
        rates.append(len(batches) / (time.perf_counter() - t0))
    return rates


def ray_train_loop(args, batches) -> list[float]:
    import ray.train
    from ray.train.torch import TorchTrainer

    from zsar.train.loop import PartInfo, PlanInfo

    cfg = experiment(args)
    info = PlanInfo(kind="full", train=PartInfo("train", "", labels(args.classes), len(batches) * args.batch), evals=[], primary_metric="top1")

    def train_func(config):
        from zsar.train.loop import LoopData, WorkerContext, run_loop
        from zsar.train.reporter import TrainReporter

        data = LoopData(train=lambda bs: iter(config["batches"]), evals={})
        run_loop(config["cfg"], config["info"], data, TrainReporter(), WorkerContext())

    with tempfile.TemporaryDirectory() as storage:
        result = TorchTrainer(
            train_func,
            train_loop_config={"cfg": cfg.to_dict(), "info": info, "batches": batches},
            scaling_config=ray.train.ScalingConfig(num_workers=1, resources_per_worker={"CPU": 1}),
            run_config=ray.train.RunConfig(name="bench", storage_path=storage,
                                           logging_config=ray.train.LoggingConfig(log_level="WARNING")),
        ).fit()
        # every epoch reports a checkpoint, so each epoch's metrics are among the kept checkpoints
        reports = sorted((m for _, m in result.best_checkpoints), key=lambda m: m["epoch"])
    rates = [m["train/steps"] / m["time/train_s"] for m in reports]
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    args = parser.parse_args()
    os.environ.setdefault("ZSAR_HOME", tempfile.mkdtemp(prefix="zsar-bench-"))
    batches = make_batches(args.steps, args.batch, args.frames, 32, args.classes)

    from zsar.ray_runtime import init_ray

    t0 = time.perf_counter()
    init_ray()
    startup = time.perf_counter() - t0

    plain = plain_loop(args, batches)
    under_ray = ray_train_loop(args, batches)
    plain_2 = plain_loop(args, batches)  # again, so drift on a shared machine shows

    warm = lambda r: statistics.median(r[1:] if len(r) > 1 else r)  # noqa: E731 (first epoch warms up)
    plain_rate = statistics.median([warm(plain), warm(plain_2)])
    ray_rate = warm(under_ray)
    print(f"torch threads: {args.threads} (both loops); batch {args.batch} x {args.frames} frames of 32x32; "
          f"{args.steps} steps x {args.epochs} epochs; model vificlip/zsar-tiny")
    print(f"Ray start-up (not counted): {startup:.1f} s")
    print(f"plain PyTorch loop:   {plain_rate:7.2f} steps/s   (per epoch: {', '.join(f'{r:.2f}' for r in plain + plain_2)})")
    print(f"zsar loop, Ray Train: {ray_rate:7.2f} steps/s   (per epoch: {', '.join(f'{r:.2f}' for r in under_ray)})")
    print(f"ratio Ray Train / plain: {ray_rate / plain_rate:.2f}  (target >= 0.8)")


if __name__ == "__main__":
    main()
