"""`mgsa`'s parts recomputed by hand: the Dual Adapter with UNEQUAL tower widths (the projected
shared adapter ViT-B/16 uses, 512-wide text vs 768-wide vision), MSM, the decorrelation loss, MAB's
gated cross-attention over its context, the video embedding and every loss term with its direction.

The backbone is a tiny open_clip config written for these tests (vision width 64, text width 48)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as nnf

from reference import ref_attention
from zsar.config import resolve
from zsar.methods.mgsa_modules import AdaptedBlock, MotionAggregation, MotionSeparation, decorrelation
from zsar.models.backbone import create_backbone
from zsar.models.text import LabelSet, encode_text, pool_prompts
from zsar.registry import METHODS

LABELS = LabelSet(("moving left slowly", "moving right quickly", "growing slowly"))
UNEQUAL = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 48, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="module")
def unequal_name(tmp_path_factory):
    import open_clip

    folder = tmp_path_factory.mktemp("model_configs")
    (folder / "zsar-test-unequal.json").write_text(json.dumps(UNEQUAL))
    open_clip.add_model_config(folder)
    return "zsar-test-unequal"


def build(backbone="zsar-tiny", **hparams):
    exp = resolve(method="mgsa", dataset="demo", protocol="base2novel",
                  overrides={"backbone": {"name": backbone, "pretrained": None}, "hparams": hparams})
    torch.manual_seed(0)
    method = METHODS.get("mgsa")(exp.method_config(), create_backbone(exp.backbone), exp)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # every trainable weight away from its identity start
        for name, p in method.named_parameters():
            if p.requires_grad:
                p.copy_(p + 0.2 * torch.randn(p.shape, generator=gen))
    return method


def batch(n=4, t=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(n, t, 3, 32, 32, generator=gen), "label": torch.tensor([2, 0, 1, 2])[:n]}


def ref_bottleneck(ad, x):
    return nnf.gelu(x @ ad.down.weight.t() + ad.down.bias) @ ad.up.weight.t() + ad.up.bias


# ---------------------------------------------------------------------- the Dual Adapter


def test_unequal_widths_share_the_visual_adapter_through_an_orthonormal_projection(unequal_name):
    method = build(unequal_name)
    visual, text = method.clip.visual.transformer.resblocks, method.clip.transformer.resblocks
    assert visual[0].block.ln_1.normalized_shape[0] == 64 and text[0].block.ln_1.normalized_shape[0] == 48
    for i in range(2):
        assert isinstance(text[i], AdaptedBlock) and isinstance(visual[i], AdaptedBlock)
        core = visual[i].adapter
        proj = text[i].adapter.proj  # [48, 64]
        assert text[i].adapter.shared is core  # the same weights, not a copy
        assert proj.shape == (48, 64) and torch.allclose(proj @ proj.t(), torch.eye(48), atol=1e-5)
        x = torch.randn(2, 5, 48)
        with torch.no_grad():
            y = text[i].block(x)
            expected = y + ref_bottleneck(core, y @ proj) @ proj.t()  # y + P^T adapter(P y)
            assert torch.allclose(text[i](x), expected, atol=1e-5)
            xv = torch.randn(2, 5, 64)
            yv = visual[i].block(xv)
            assert torch.allclose(visual[i](xv), yv + ref_bottleneck(core, yv), atol=1e-5)


def test_a_step_with_unequal_widths_trains_the_shared_adapter_from_both_towers(unequal_name):
    method = build(unequal_name)
    method.train()
    out = method.training_step(batch(), LABELS)
    assert torch.isfinite(out["loss"])
    core = method.clip.visual.transformer.resblocks[0].adapter
    text_only = pool_prompts(encode_text(method.clip, method.tokenizer, ["moving left slowly"]), [1]).sum()
    grad = torch.autograd.grad(text_only, core.down.weight)[0]
    assert grad.abs().max() > 0  # the text tower reaches the shared weights through P


# ---------------------------------------------------------------------- MSM, decorrelation, MAB


@pytest.mark.parametrize("t", [6, 7])
def test_haar_split_by_hand(t):
    x = torch.randn(2, t, 5)
    static, motion, weights = MotionSeparation("haar", 5)(x)
    for k in range((t + 1) // 2):
        even, odd = x[:, 2 * k], x[:, min(2 * k + 1, t - 1)]
        assert torch.allclose(motion[:, k], odd - even, atol=1e-6)  # detail: motion
        assert torch.allclose(static[:, k], (even + odd) / 2, atol=1e-6)  # approximation: pair mean
        assert weights[0, k] == (2.0 if 2 * k + 1 < t else 1.0)
    mean = (static * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)
    assert torch.allclose(mean, x.mean(1), atol=1e-6)


def test_difference_split_and_learned_lifting_at_init_by_hand():
    x = torch.randn(2, 5, 4)
    static, motion, weights = MotionSeparation("difference", 4)(x)
    assert torch.allclose(static[:, 0], x.mean(1), atol=1e-6) and weights.tolist() == [[1.0], [1.0]]
    assert torch.allclose(motion, torch.stack([x[:, i + 1] - x[:, i] for i in range(4)], 1), atol=1e-6)
    haar = MotionSeparation("haar", 4)(x)
    lifting = MotionSeparation("learned_lifting", 4)(x)
    for a, b in zip(haar, lifting):
        assert torch.allclose(a, b, atol=1e-6)


def test_decorrelation_by_hand():
    static = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]])  # weighted mean (w 2, 1): [2, 2, 0] / 3
    weights = torch.tensor([[2.0, 1.0]])
    motion = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 0.0]]])
    s = torch.tensor([1.0, 1.0, 0.0]) / math.sqrt(2)
    cos = [1 / math.sqrt(2), 0.0, 1.0]
    assert decorrelation(static, motion, weights) == pytest.approx(sum(c * c for c in cos) / 3, rel=1e-5)
    assert float(s.norm()) == pytest.approx(1.0)


def ref_mab(block, motion, context):
    """motion + tanh(g) * MHA(ln_q(motion), ln_kv(context), ln_kv(context)), head by head."""
    out = [ref_attention(block.attn, block.ln_q(motion[i]), block.ln_kv(context[i])) for i in range(len(motion))]
    return motion + torch.tanh(block.gate) * torch.stack(out)


def test_mab_is_gated_cross_attention_over_its_context():
    torch.manual_seed(0)
    block = MotionAggregation(8, 2)
    with torch.no_grad():
        block.gate.fill_(0.8)
    motion, context = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    with torch.no_grad():
        assert torch.allclose(block(motion, context), ref_mab(block, motion, context), atol=1e-5)
        moved = context.clone()
        moved[:, 2] += torch.randn(2, 8)  # not a constant shift: ln_kv would remove that
        assert not torch.allclose(block(motion, moved), block(motion, context), atol=1e-4)  # it reads the context


def ref_video(method, video, context_kind):
    x = method.clip.encode_image(video.flatten(0, 1)).view(*video.shape[:2], -1).float()
    t = x.shape[1]
    idx_odd = [min(2 * k + 1, t - 1) for k in range((t + 1) // 2)]
    even, odd = x[:, 0::2], x[:, idx_odd]
    static, motion = (even + odd) / 2, odd - even
    weights = torch.tensor([2.0 if 2 * k + 1 < t else 1.0 for k in range((t + 1) // 2)])
    context = x if context_kind == "frames" else static
    for block in method.mab:
        motion = ref_mab(block, motion, context)
    s = (static * weights[None, :, None]).sum(1) / weights.sum()
    v = s @ method.static_proj.weight.t() + method.static_proj.bias + motion.mean(1) @ method.motion_proj.weight.t() + method.motion_proj.bias
    return nnf.normalize(v, dim=-1), static, motion, weights


@pytest.mark.parametrize("context", ["frames", "static"])
def test_video_embedding_by_hand_with_the_configured_mab_context(context):
    method = build(mab_context=context)
    data = batch()
    with torch.no_grad():
        got = method.encode_video(data)
        assert torch.allclose(got, ref_video(method, data["video"], context)[0], atol=1e-5)
        other = ref_video(method, data["video"], "static" if context == "frames" else "frames")[0]
        assert not torch.allclose(got, other, atol=1e-4)  # the other context gives another embedding


def test_every_loss_term_by_hand_and_the_negative_term_pulls_toward_the_positive():
    method = build(lambda_neg=0.7, lambda_sep=0.3)
    method.train()
    data = batch()
    y = data["label"]
    names = list(LABELS.names)
    with torch.no_grad():
        prompts = method.prompts(LABELS)
        pos = pool_prompts(encode_text(method.clip, method.tokenizer, [s for p in prompts for s in p]), [len(p) for p in prompts])
        neg = pool_prompts(encode_text(method.clip, method.tokenizer, [f"not {n}." for n in names]), [1] * len(names))
        v, static, motion, weights = ref_video(method, data["video"], "frames")
        scale = float(method.clip.logit_scale.exp())
        ce = sum(-torch.log_softmax(scale * v[i] @ pos.t(), -1)[y[i]] for i in range(len(y))) / len(y)
        sp, sn = scale * (v * pos[y]).sum(-1), scale * (v * neg[y]).sum(-1)
        neg_loss = (-sp + torch.logaddexp(sp, sn)).mean()  # -log e^{s v.pos_y} / (e^{s v.pos_y} + e^{s v.neg_y})
        sep = decorrelation(static, motion, weights[None].expand(len(y), -1))
        out = method.training_step(data, LABELS)
    assert torch.allclose(out["ce"], ce, atol=1e-4)
    assert torch.allclose(out["neg"], neg_loss, atol=1e-4)
    assert torch.allclose(out["sep"], sep, atol=1e-5)
    assert torch.allclose(out["loss"], ce + 0.7 * neg_loss + 0.3 * sep, atol=1e-4)
    # direction: a video on its positive prompt scores a lower negative loss than one on its negative
    on_pos = scale * torch.stack([(pos[y] * pos[y]).sum(-1), (pos[y] * neg[y]).sum(-1)], 1)
    on_neg = scale * torch.stack([(neg[y] * pos[y]).sum(-1), (neg[y] * neg[y]).sum(-1)], 1)
    first = torch.zeros(len(y), dtype=torch.long)
    assert nnf.cross_entropy(on_pos, first) < nnf.cross_entropy(on_neg, first)


def test_inference_score_subtracts_gamma_times_the_negative():
    method = build(gamma_neg=0.4)
    method.eval()
    with torch.no_grad():
        prompts = method.prompts(LABELS)
        pos = pool_prompts(encode_text(method.clip, method.tokenizer, [s for p in prompts for s in p]), [len(p) for p in prompts])
        neg = pool_prompts(encode_text(method.clip, method.tokenizer, [f"not {n}." for n in LABELS.names]), [1] * 3)
        assert torch.allclose(method.class_embeddings(LABELS), pos - 0.4 * neg, atol=1e-5)
