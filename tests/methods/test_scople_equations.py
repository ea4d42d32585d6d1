"""`scople` recomputed by hand: the dual-stream class embedding, the joint prompt, joint tokens,
the text-queried sampler (scaled dot-product, padded frames masked), the class-conditioned cosine
scores times the learnt logit scale 1 / temperature, and the multi-positive contrastive loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as nnf

from zsar.config import resolve
from zsar.models.backbone import create_backbone
from zsar.models.text import LabelSet
from zsar.registry import METHODS

from zsar.methods.scople_modules import AdaptiveSampler, multi_positive_contrastive

TINY = {"channels": [8, 16], "strides": [1, 2], "dropout": 0.0}
SEEN = LabelSet(("raise left arm quickly", "kick right leg slowly", "wave left hand slowly"))


def build(**hparams):
    hparams = {"text_space": "clip", "freeze_encoder": False, "encoder": TINY, "temperature": 0.2, **hparams}
    cfg = resolve(method="scople", dataset="demo_skeleton", protocol="zsl", overrides={"hparams": hparams})
    cls = METHODS.get("scople")
    mcfg = cfg.method_config()
    torch.manual_seed(0)
    m = cls(mcfg, create_backbone(cfg.backbone, towers=cls.backbone_towers(mcfg)), cfg)
    m.bind_train_labels(SEEN)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        if m.dual is not None:
            m.dual.w.fill_(0.6)
        if m.joint_prompt is not None:
            m.joint_prompt.prompt.copy_(torch.randn(m.joint_prompt.prompt.shape, generator=gen))
    return m.eval()


def batch(n=5, t=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    skeleton = torch.randn(n, t, 1, 25, 3, generator=g)
    skeleton[1, 4:] = 0  # padding: half of the second sequence
    return {"skeleton": skeleton, "label": torch.tensor([0, 1, 2, 1, 0])[:n]}


def ref_sampler(sampler, text, tokens, mask):
    """softmax(q_c k_l / sqrt(d)) over the valid tokens l; values: the tokens themselves."""
    d = sampler.q.out_features
    out = torch.zeros(tokens.shape[0], text.shape[0], tokens.shape[-1])
    for i in range(tokens.shape[0]):
        keys = tokens[i][mask[i]] @ sampler.k.weight.t() + sampler.k.bias
        for c in range(text.shape[0]):
            q = text[c] @ sampler.q.weight.t() + sampler.q.bias
            w = torch.softmax(keys @ q / math.sqrt(d), 0)
            out[i, c] = w @ tokens[i][mask[i]]
    return out


def test_sampler_by_hand():
    torch.manual_seed(0)
    sampler = AdaptiveSampler(text_dim=6, token_dim=5, dim=4)
    text, tokens = torch.randn(3, 6), torch.randn(2, 7, 5)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    with torch.no_grad():
        got, _ = sampler(text, tokens, mask)
        assert torch.allclose(got, ref_sampler(sampler, text, tokens, mask), atol=1e-5)


def test_dual_stream_class_embedding_by_hand():
    m = build()
    with torch.no_grad():
        frozen = m.frozen_class_embeddings(SEEN)
        prompted = m.dual.prompted(list(SEEN.names))
        expected = frozen + 0.6 * prompted
        expected = expected / expected.norm(dim=-1, keepdim=True)
        assert torch.allclose(m.class_embeddings(SEEN), expected, atol=1e-5)
        assert not torch.allclose(prompted, frozen, atol=1e-3)  # the streams differ: w matters


def test_scores_by_hand_from_the_encoders_joint_features():
    """joint features [N, C, T, V] + prompt[v, c] -> tokens (frame-major, t * V + v) -> sampler per
    class -> projection -> cosine with that class's text -> times exp(log_scale) = 1 / temperature."""
    m = build()
    b = batch()
    with torch.no_grad():
        emb = m.class_embeddings(SEEN).float()
        out = m.encode_joints(b["skeleton"])
        f = out.features.float()
        n, c, t, v = f.shape
        f = f + m.joint_prompt.prompt.t()[None, :, None, :]
        tokens = torch.stack([torch.stack([f[i, :, tt, vv] for tt in range(t) for vv in range(v)]) for i in range(n)])
        mask = torch.stack([torch.tensor([bool(out.mask[i, tt]) for tt in range(t) for _ in range(v)]) for i in range(n)])
        assert not mask[1].all() and mask[0].all()
        attended = ref_sampler(m.sampler, emb, tokens, mask)
        proj = attended @ m.proj.weight.t() + m.proj.bias
        cos = (proj * emb[None]).sum(-1) / (proj.norm(dim=-1) * emb.norm(dim=-1)[None])
        assert m.logit_scale().item() == pytest.approx(1 / 0.2, rel=1e-5)
        expected = cos / 0.2
        assert torch.allclose(m.logits(b, emb), expected, atol=1e-4)


def test_mean_pooled_scores_by_hand_without_the_sampler():
    m = build(sampler=False, joint_prompt_mode="concat")
    b = batch()
    with torch.no_grad():
        emb = m.class_embeddings(SEEN).float()
        out = m.encode_joints(b["skeleton"])
        f = out.features.float()
        n, c, t, v = f.shape
        p = m.joint_prompt.prompt.t()[None, :, None, :].expand(n, c, t, v)
        f = torch.cat([f, p], 1)  # concat: each joint's channels then its prompt
        pooled = torch.stack([f[i][:, out.mask[i]].mean((1, 2)) for i in range(n)])
        e = nnf.normalize(pooled @ m.proj.weight.t() + m.proj.bias, dim=-1)
        assert torch.allclose(m.logits(b, emb), 5.0 * e @ emb.t(), atol=1e-4)


def ref_multi_positive(logits, labels):
    """Each sample i against each sample j's class text: S[i, j] = logits[i, y_j]; the targets of row
    i are uniform over {j : y_j = y_i}, likewise column j; the loss is the mean of both directions."""
    b = len(labels)
    s = [[float(logits[i, labels[j]]) for j in range(b)] for i in range(b)]
    row = col = 0.0
    for i in range(b):
        pos = [j for j in range(b) if labels[j] == labels[i]]
        lse = math.log(sum(math.exp(s[i][j]) for j in range(b)))
        row += -sum(s[i][j] - lse for j in pos) / len(pos)
        lse_c = math.log(sum(math.exp(s[j][i]) for j in range(b)))
        col += -sum(s[j][i] - lse_c for j in pos) / len(pos)
    return (row / b + col / b) / 2


def test_multi_positive_loss_by_hand_and_a_training_step():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.5, 0.3], [1.0, 0.2, -0.4], [-0.3, 0.8, 2.2]])
    labels = torch.tensor([0, 1, 0, 2])
    assert multi_positive_contrastive(logits, labels).item() == pytest.approx(ref_multi_positive(logits, labels), rel=1e-5)
    m = build()
    b = batch()
    out = m.training_step(b, SEEN)
    with torch.no_grad():
        full = m.logits(b, m.class_embeddings(SEEN))
    assert out["loss"].item() == pytest.approx(ref_multi_positive(full, b["label"]), rel=1e-4)
    # direction: raising each sample's own-class score lowers the loss
    better = full.clone()
    better[torch.arange(5), b["label"]] += 1.0
    assert ref_multi_positive(better, b["label"]) < ref_multi_positive(full, b["label"])
