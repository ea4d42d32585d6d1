"""The training loop on a CUDA device with bf16 autocast, for every video method, without Ray
(accuracy on the demo is the CPU tests' job; these check the device path):
the demo's motion classes are rendered in memory (no decoder) and fed to `run_loop` directly.
Skipped on machines without a GPU (see conftest)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsar.config import resolve
from zsar.data.synth import base_novel, draw_params, render
from zsar.models.text import LabelSet
from zsar.train.loop import LoopData, PartInfo, PlanInfo, WorkerContext, run_loop
from zsar.train.reporter import LocalReporter

pytestmark = pytest.mark.gpu

VIDEO_METHODS = ["frozen_clip", "vificlip", "sc_clip"]
FRAMES, SIZE = 8, 32


def _rows(classes, per_class, seed):
    video, label = [], []
    for c, cls in enumerate(classes):
        for i in range(per_class):
            params = draw_params(np.random.default_rng([seed, c, i]), cls)
            video.append(render(params, FRAMES, 64)[:, ::2, ::2][None])  # [V=1, T, 32, 32, 3]
            label.append(c)
    return np.stack(video), np.asarray(label)


def _batches(video, label, shuffle_seed=None):
    def batches(bs):
        order = np.arange(len(label)) if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(len(label))
        for s in range(0, len(order) - (bs - 1 if shuffle_seed is not None else 0), bs):
            i = order[s:s + bs]
            n = len(i)
            yield {"video": video[i], "label": label[i], "index": i, "path": np.array([f"v{j}" for j in i], dtype=object),
                   "ok": np.ones(n, bool), "short": np.zeros(n, bool), "error": np.array([""] * n, dtype=object)}
    return batches


@pytest.mark.parametrize("method", VIDEO_METHODS)
def test_loop_on_cuda_with_bf16_learns_and_matches_cpu_scores(method, tmp_path):
    base = base_novel()[0][:4]
    train_x, train_y = _rows(base, 32, seed=0)
    test_x, test_y = _rows(base, 8, seed=1)
    labels = LabelSet(tuple(base))
    info = PlanInfo(kind="base2novel", train=PartInfo("train", "", labels, len(train_y)),
                    evals=[PartInfo("base", "base_", labels, len(test_y))], primary_metric="base_top1")
    cfg = resolve(method=method, dataset="demo", protocol="base2novel", overrides={
        "backbone": {"name": "zsar-tiny"}, "data": {"num_frames": FRAMES, "views": 1, "crops": 1},
        "optim": {"epochs": 8, "eval_every": 8, "batch_size": 16, "amp": True}})  # lr etc.: the demo presets
    data = LoopData(train=_batches(train_x, train_y, shuffle_seed=0), evals={"base": _batches(test_x, test_y)})
    reporter = LocalReporter(tmp_path / "run")
    metrics = run_loop(cfg.to_dict(), info, data, reporter, WorkerContext(device="cuda:0"))

    assert np.isfinite(metrics["base_top1"])
    if method != "frozen_clip":
        losses = [r["train/loss"] for r in reporter.reports]
        assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses

    # The checkpoint written on the GPU scores the same on the CPU (fp32 both sides).
    eval_cfg = resolve(method=method, dataset="demo", protocol="base2novel", overrides={
        "backbone": {"name": "zsar-tiny"}, "data": {"num_frames": FRAMES, "views": 1, "crops": 1},
        "optim": {"epochs": 0, "amp": False}, "run": {"init_from": str(sorted((tmp_path / "run").glob("checkpoint_*"))[-1])}})
    scores = {}
    for device in ("cpu", "cuda:0"):
        rep = LocalReporter(tmp_path / f"eval-{device.replace(':', '')}")
        scores[device] = run_loop(eval_cfg.to_dict(), PlanInfo("base2novel", None, info.evals, "base_top1"),
                                  LoopData(train=None, evals={"base": _batches(test_x, test_y)}), rep, WorkerContext(device=device))
    assert scores["cpu"]["base_top1"] == pytest.approx(scores["cuda:0"]["base_top1"], abs=100 / len(test_y) + 1e-6)
    assert torch.cuda.max_memory_allocated() > 0
