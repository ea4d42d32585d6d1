"""`mgsa`: each part checked against what it must do, on the 32-pixel random-weight CLIP."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as nnf

from zsar.config import resolve
from zsar.methods.mgsa_modules import AdaptedBlock, MotionSeparation, decorrelation
from zsar.models.backbone import create_backbone
from zsar.models.text import LabelSet, encode_text, pool_prompts
from zsar.registry import METHODS

LABELS = LabelSet(("moving left slowly", "moving right quickly", "growing slowly"))


def build(**hparams):
    exp = resolve(method="mgsa", dataset="demo", protocol="base2novel", overrides={"hparams": hparams})
    torch.manual_seed(0)
    return METHODS.get("mgsa")(exp.method_config(), create_backbone(exp.backbone), exp), exp


def batch(n=4, t=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(n, t, 3, 32, 32, generator=gen), "label": torch.arange(n) % len(LABELS.names)}


def test_at_step_zero_video_and_text_embeddings_are_frozen_clips():
    method, exp = build()
    clip = create_backbone(exp.backbone)  # the same seeded weights, no adapters
    data = batch(t=7)  # an odd frame count too: the static path still averages every frame once
    with torch.no_grad():
        frames = clip.model.encode_image(data["video"].flatten(0, 1)).view(4, 7, -1)
        expected = nnf.normalize(frames.mean(1), dim=-1)
        assert torch.allclose(method.encode_video(data), expected, atol=1e-5)
        prompts = method.prompts(LABELS)
        text = pool_prompts(encode_text(clip.model, clip.tokenizer, [s for p in prompts for s in p]), [len(p) for p in prompts])
        assert torch.allclose(method.class_embeddings(LABELS), text, atol=1e-5)


@pytest.mark.parametrize("mode", ["haar", "learned_lifting"])
@pytest.mark.parametrize("t", [8, 7])
def test_lifting_split_reconstructs_x_exactly(mode, t):
    msm = MotionSeparation(mode, 16)
    if mode == "learned_lifting":  # any learnt filters keep the split invertible
        with torch.no_grad():
            msm.predict.weight.normal_()
            msm.update.weight.normal_()
    x = torch.randn(2, t, 16, dtype=torch.float64)
    msm = msm.double()
    static, motion, weights = msm(x)
    assert torch.allclose(msm.inverse(static, motion, t), x, atol=1e-10)
    assert weights.sum(1).tolist() == [t, t]


def test_haar_static_is_the_pair_mean_and_a_still_video_has_no_motion():
    x = torch.randn(2, 6, 16)
    static, motion, _ = MotionSeparation("haar", 16)(x)
    assert torch.allclose(static, (x[:, 0::2] + x[:, 1::2]) / 2, atol=1e-6)
    still = x[:, :1].expand(2, 6, 16)
    for mode in ("haar", "learned_lifting", "difference"):
        _, motion, _ = MotionSeparation(mode, 16)(still)
        assert motion.abs().max() == 0, mode


def test_decorrelation_is_zero_for_orthogonal_parts_and_one_for_parallel():
    s = torch.tensor([[[1.0, 0.0]]])
    w = torch.ones(1, 1)
    assert decorrelation(s, torch.tensor([[[0.0, 3.0]]]), w) == 0
    assert decorrelation(s, torch.tensor([[[-2.0, 0.0]]]), w) == pytest.approx(1.0)


def test_gate_starts_at_zero_and_receives_gradient():
    method, _ = build()
    assert float(method.mab[0].gate.detach()) == 0.0
    method.train()
    method.training_step(batch(), LABELS)["loss"].backward()
    assert method.mab[0].gate.grad is not None and float(method.mab[0].gate.grad.abs()) > 0


def test_negative_prompts_use_only_the_class_own_name():
    method, _ = build(gamma_neg=0.5)
    one = LabelSet(("growing slowly",))
    assert method.negative_prompts(one) == [["not growing slowly."]]
    with torch.no_grad():
        alone = method._pooled(method.negative_prompts(one))
        among = method._pooled(method.negative_prompts(LABELS))
    assert torch.allclose(alone[0], among[2], atol=1e-6)  # other classes change nothing
    with torch.no_grad():
        pos, neg = method.prompt_embeddings(LABELS)
        assert torch.allclose(method.class_embeddings(LABELS), pos - 0.5 * neg)


def test_a_step_moves_the_adapters_and_leaves_frozen_clip_unchanged():
    method, _ = build()
    frozen = {n: p.detach().clone() for n, p in method.clip.named_parameters() if not p.requires_grad}
    tunable = {n: p.detach().clone() for n, p in method.named_parameters() if p.requires_grad}
    assert frozen and all(".adapter." in n for n, p in method.clip.named_parameters() if p.requires_grad)
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-2)
    method.train()
    method.training_step(batch(), LABELS)["loss"].backward()
    opt.step()
    for n, p in method.clip.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    moved = [n for n, p in method.named_parameters() if p.requires_grad and not torch.equal(p, tunable[n])]
    assert any(".adapter.up." in n for n in moved) and "motion_proj.weight" in moved


def test_loss_is_the_weighted_sum_of_its_parts():
    method, exp = build()
    h = exp.hparams
    method.train()
    out = method.training_step(batch(), LABELS)
    assert set(out) == {"loss", "ce", "neg", "sep"}
    assert float(out["loss"]) == pytest.approx(float(out["ce"] + h["lambda_neg"] * out["neg"] + h["lambda_sep"] * out["sep"]), rel=1e-6)


def _modules(method):
    return {n.split(".")[0] for n, p in method.named_parameters() if p.requires_grad}


def test_each_switch_removes_exactly_its_part():
    full, _ = build()
    assert _modules(full) == {"clip", "msm", "mab", "static_proj", "motion_proj"} - {"msm"}  # Haar has no weights
    no_msm, _ = build(msm="off")
    assert _modules(no_msm) == {"clip", "static_proj"}
    no_mab, _ = build(mab_blocks=0)
    assert _modules(no_mab) == _modules(full) - {"mab"}
    lifting, _ = build(msm="learned_lifting")
    assert _modules(lifting) == _modules(full) | {"msm"}
    for m in (full, no_msm, no_mab):
        m.train()
    assert "sep" not in no_msm.training_step(batch(), LABELS)
    assert "sep" in no_mab.training_step(batch(), LABELS)
    no_neg, _ = build(lambda_neg=0.0)
    no_neg.train()
    assert set(no_neg.training_step(batch(), LABELS)) == {"loss", "ce", "sep"}
    assert no_neg.prompt_embeddings(LABELS)[1] is None  # no negative prompt is even encoded


def test_adapter_sharing_ties_the_towers_or_not():
    shared, _ = build(adapter_sharing="shared")
    separate, _ = build(adapter_sharing="separate")
    visual = [b for b in shared.clip.visual.transformer.resblocks if isinstance(b, AdaptedBlock)]
    text = [b for b in shared.clip.transformer.resblocks if isinstance(b, AdaptedBlock)]
    assert len(visual) == len(text) == 2
    assert all(v.adapter is t.adapter for v, t in zip(visual, text))  # equal widths: the same module
    count = lambda m: sum(p.numel() for n, p in m.clip.named_parameters() if p.requires_grad)  # noqa: E731
    assert count(separate) == 2 * count(shared)


def test_cost_counts_every_frame_of_the_prediction():
    costs = {}
    for frames in (2, 4):
        exp = resolve(method="mgsa", dataset="demo", protocol="base2novel", overrides={"data": {"num_frames": frames}})
        costs[frames] = METHODS.get("mgsa").cost_params(exp)
    method, _ = build()
    assert costs[2]["cost.params_tunable"] == costs[4]["cost.params_tunable"] == method.param_count()["params_tunable"] > 0
    assert 0 < costs[2]["cost.macs_per_clip"] < costs[4]["cost.macs_per_clip"]


@pytest.mark.slow  # builds a random ViT-B/16 method and runs its 8-frame prediction (~140 GMACs) on CPU
def test_cost_is_logged_for_the_vit_b16_preset():
    exp = resolve(method="mgsa", dataset="kinetics400", protocol="zeroshot",
                  overrides={"backbone": {"name": "ViT-B-16", "pretrained": None}})
    cost = METHODS.get("mgsa").cost_params(exp)
    assert cost["cost.params_tunable"] > 0 and cost["cost.gmacs_per_clip"] > 8 * 17  # 8 frames of ViT-B/16 (~17.5 GMACs each)
