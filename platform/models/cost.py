"""Cost figures a run logs as MLflow params: tunable parameters and multiply-accumulates (MACs)
of one clip's prediction, counted with random weights of the run's architecture.

`torch.utils.flop_counter` counts 2 FLOPs per MAC. PyTorch's fused attention paths (the MHA fast
path, SDPA's fused CPU kernel) are invisible to it, so both run in their plain matmul forms while
counting. For methods whose cost does not depend on the data (no clustering, no masks): the
video side on one clip of `data.num_frames` frames, plus scoring it against one class.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as nnf


def count_macs(fn) -> tuple[int, object]:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            result = fn()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops() // 2, result


_CACHE: dict = {}


def cached_cost(method_cls, exp, measure) -> dict:
    """`measure(method_cls, exp)`, once per process for each architecture: the backbone, the frame
    count and the method's hyperparameters (a run asks when it starts; sweep trials ask again)."""
    key = (method_cls.__name__, exp.backbone.name, exp.data.num_frames, repr(sorted(exp.hparams.items())))
    if key not in _CACHE:
        _CACHE[key] = measure(method_cls, exp)
    return dict(_CACHE[key])


def prediction_cost(method_cls, exp) -> dict:
    from zsar.models.backbone import create_backbone

    backbone = create_backbone(dataclasses.replace(exp.backbone, pretrained=None, checkpoint=None))
    method = method_cls(exp.method_config(), backbone, exp).eval()
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(1, exp.data.num_frames, 3, backbone.image_size, backbone.image_size, generator=gen)
    class_emb = nnf.normalize(torch.randn(1, backbone.embed_dim, generator=gen), dim=-1)
    macs, _ = count_macs(lambda: method.logits({"video": video}, class_emb))
    return {"cost.params_tunable": method.param_count()["params_tunable"], "cost.macs_per_clip": int(macs),
            "cost.gmacs_per_clip": round(macs / 1e9, 2)}
