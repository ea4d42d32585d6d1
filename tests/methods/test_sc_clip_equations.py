"""SC-CLIP's equations recomputed by hand (Eqs. 1-7, L_a, the K-means step, the Eq. 5 bias).

Each reference below is written from the paper's formula with loops and the frozen CLIP's own layers
(never the module's helpers), on the 64-pixel random ViT (an 8 x 8 patch grid) and hand-made masks,
then compared with what `SCCLIP.training_step` / `logits` return. tau is small (7) so that the
scale convention (logits = tau * cos, the paper's 1/tau) cannot be confused with cos / tau.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as nnf

from zsar.config import resolve
from zsar.methods.sc_clip import SCCLIP
from zsar.methods.sc_clip_sqg import SemanticMasks, spherical_kmeans, window_seeds, window_specs
from zsar.models.backbone import create_backbone
from zsar.models.text import LabelSet

LABELS = LabelSet(tuple(f"class {i}" for i in range(5)))
HPARAMS = {"tau": 7.0, "alpha": 0.37, "beta": 0.21}


def experiment(**hparams):
    return resolve(method="sc_clip", dataset="demo", protocol="base2novel",
                   overrides={"backbone": {"name": "zsar-tiny-64", "pretrained": None}, "hparams": {**HPARAMS, **hparams}})


def own_model(backbone):
    """The backbone with its own copy of the model (the method trains and freezes it in place); the
    tokenizer is shared: deep-copying its BPE tables costs more than the tiny model."""
    return dataclasses.replace(backbone, model=copy.deepcopy(backbone.model))


@pytest.fixture(scope="module")
def tiny_backbone():
    return create_backbone(experiment().backbone)


def build(backbone, **hparams):
    exp = experiment(**hparams)
    torch.manual_seed(0)
    method = SCCLIP(exp.method_config(), own_model(backbone), exp)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # the adapters start as the identity; give every weight of theirs a value
        for name, p in method.named_parameters():
            if name.startswith("adapter_"):
                p.copy_(p + 0.1 * torch.randn(p.shape, generator=gen))
    return method


def hand_masks() -> SemanticMasks:
    """B=2, T=3, 8x8 grid. Video 0: mask 0 only in frame 0, mask 2 only in frame 2, mask 1 elsewhere;
    video 1: even tokens mask 0, odd tokens mask 1, slot 2 empty."""
    slot = torch.ones(2, 3, 64, dtype=torch.long)
    slot[0, 0, :32] = 0
    slot[0, 2, :16] = 2
    slot[1] = torch.arange(64) % 2
    valid = torch.tensor([[True, True, True], [True, True, False]])
    return SemanticMasks(slot, valid)


def video(seed=0):
    return torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------- references from the formulas


def ref_attention(q, k, v, heads, bias=None):
    """softmax(q k^T / sqrt(d) + bias) v, head by head. q [Lq, D], k/v [Lk, D], bias [Lq, Lk]."""
    d = q.shape[-1] // heads
    out = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        s = q[:, sl] @ k[:, sl].t() / math.sqrt(d)
        if bias is not None:
            s = s + bias
        out.append(torch.softmax(s, -1) @ v[:, sl])
    return torch.cat(out, -1)


def ref_tokens(visual, video):
    """Eq. 1's tower by hand: patches + class token + positions, ln_pre, every block."""
    b, t = video.shape[:2]
    x = visual.conv1(video.flatten(0, 1)).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(x.shape[0], 1, -1), x], 1) + visual.positional_embedding
    x = visual.ln_pre(x)
    blocks = visual.transformer.resblocks
    for blk in blocks[:-1]:
        x = blk(x)
    last = blocks[-1](x)
    return x.unflatten(0, (b, t)), last.unflatten(0, (b, t))


def ref_adapter(ad, x, w=2):
    """Sec. 3.2's TF adapter: frame t attends over the tokens of frames t-w..t+w that exist."""
    b, t, n, d = x.shape
    out = torch.empty_like(x)
    for i in range(b):
        q, k, v = ad.qkv(ad.ln_1(x[i])).chunk(3, -1)
        for j in range(t):
            lo, hi = max(0, j - w), min(t - 1, j + w)
            a = ref_attention(q[j], k[lo:hi + 1].reshape(-1, d), v[lo:hi + 1].reshape(-1, d), ad.heads)
            y = x[i, j] + ad.out(a)
            out[i, j] = y + ad.mlp(ad.ln_2(y))
    return out


def ref_scca(block, queries, f, masks, mode):
    """Eq. 5: SCA(Q, F, M) = softmax(W_q Q (W_k F)^T / sqrt(d) + M) W_v F in the frozen last block."""
    attn = block.attn
    wq, wk, wv = attn.in_proj_weight.chunk(3)
    bq, bk, bv = attn.in_proj_bias.chunk(3)
    b, t = f.shape[:2]
    g = queries.shape[1]
    out = torch.empty(b, t, g, queries.shape[-1])
    for i in range(b):
        for j in range(t):
            kv = block.ln_1(f[i, j])
            k, v = kv @ wk.t() + bk, kv @ wv.t() + bv
            for c in range(g):
                m = masks[i, c, j].float()
                bias = {"soft": m, "none": 0 * m}.get(mode, torch.where(masks[i, c, j], 0.0, float("-inf")))
                bias = torch.cat([torch.zeros(1), bias])  # the class token: bias 0
                q = block.ln_1(queries[i, c]) @ wq.t() + bq
                x = queries[i, c] + attn.out_proj(ref_attention(q[None], k, v, attn.num_heads, bias[None]))[0]
                out[i, j, c] = x + block.mlp(block.ln_2(x))
    return out


def head(visual, x):
    return nnf.normalize(visual.ln_post(x) @ visual.proj, dim=-1)


def ce(logits, label):
    return -torch.log_softmax(logits, -1)[label]


def reference(method, vid, labels, masks, mode="soft"):
    """Every loss term and the prediction, by hand, from the formulas."""
    tau, alpha, beta = method.cfg.tau, method.cfg.alpha, method.cfg.beta
    visual = method.clip.visual
    a = method.class_embeddings(LABELS).float()
    second_last, last = ref_tokens(visual, vid)
    onehot = torch.stack([torch.stack([masks.slot[i] == c for c in range(masks.valid.shape[1])]) for i in range(len(vid))])
    fa = ref_adapter(method.adapter_a, last)[:, :, 1:]  # F^a
    b, g = masks.valid.shape
    queries = torch.zeros(b, g, fa.shape[-1])
    for i in range(b):  # Eq. 3: mean of F^a over the mask's T x H x W positions
        for c in range(g):
            if onehot[i, c].any():
                queries[i, c] = fa[i][onehot[i, c]].mean(0)
    f_prime = head(visual, ref_scca(visual.transformer.resblocks[-1], queries, second_last, onehot, mode))
    video_logits, l_sc, l_q, n_q = [], 0.0, 0.0, 0
    for i in range(b):
        per_frame = []
        for j in range(vid.shape[1]):
            present = [c for c in range(g) if onehot[i, c, j].any()]
            f = nnf.normalize(f_prime[i, j, present].mean(0), dim=-1)  # Eq. 6: the frame's queries
            per_frame.append(tau * f @ a.t())  # tau * cos
        video_logits.append(torch.stack(per_frame).mean(0))  # logits averaged over frames
        l_sc = l_sc + ce(video_logits[-1], labels[i]) / b
        for c in range(g):
            if masks.valid[i, c]:  # Eq. 4: every query classified as its video's label
                l_q, n_q = l_q + ce(tau * head(visual, queries[i, c]) @ a.t(), labels[i]), n_q + 1
    cls = head(visual, ref_adapter(method.adapter_b, last)[:, :, 0])  # adapter B's class tokens
    v = nnf.normalize(cls.mean(1), dim=-1)
    l_a = sum(ce(tau * v[i] @ a.t(), labels[i]) for i in range(b)) / b
    l_q = l_q / n_q
    return {"L_sc": l_sc, "L_q": l_q, "L_a": l_a, "loss": l_sc + alpha * l_a + beta * l_q,
            "logits": torch.stack(video_logits)}


# ---------------------------------------------------------------------- the tests


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_every_loss_term_and_eq7_match_the_formulas(tiny_backbone, mode):
    method = build(tiny_backbone, mask_bias=mode)
    masks = hand_masks()
    method.sqg_masks = lambda dense: masks
    vid, labels = video(), torch.tensor([1, 3])
    a = method.class_embeddings(LABELS)
    assert torch.allclose(a.norm(dim=-1), torch.ones(len(a)), atol=1e-5)  # cosines need unit text
    with torch.no_grad():
        ref = reference(method, vid, labels, masks, mode)
        out = method.training_step({"video": vid, "label": labels}, LABELS)
        for key in ("L_sc", "L_q", "L_a", "loss"):
            assert torch.allclose(out[key], ref[key], atol=1e-4, rtol=1e-4), (key, out[key], ref[key])
        method.eval()
        assert torch.allclose(method.logits({"video": vid}, a), ref["logits"], atol=1e-3)


def test_the_soft_bias_is_not_negligible_on_these_inputs(tiny_backbone):
    """The +1 of the soft mask moves the prediction: the reference without it differs, so the
    comparison above would catch a dropped bias."""
    method = build(tiny_backbone)
    masks = hand_masks()
    method.sqg_masks = lambda dense: masks
    vid, labels = video(1), torch.tensor([0, 2])
    with torch.no_grad():
        method.eval()
        got = method.logits({"video": vid}, method.class_embeddings(LABELS))
        with_bias = reference(method, vid, labels, masks, "soft")["logits"]
        without = reference(method, vid, labels, masks, "none")["logits"]
    assert torch.allclose(got, with_bias, atol=1e-3)
    assert (with_bias - without).abs().max() > 1e-2


def test_l_a_alone_when_sqg_is_off_is_tau_cos_of_adapter_b(tiny_backbone):
    method = build(tiny_backbone, use_sqg_scca=False, alpha=0.5)
    vid, labels = video(2), torch.tensor([4, 0])
    with torch.no_grad():
        a = method.class_embeddings(LABELS).float()
        _, last = ref_tokens(method.clip.visual, vid)
        v = nnf.normalize(head(method.clip.visual, ref_adapter(method.adapter_b, last)[:, :, 0]).mean(1), dim=-1)
        logits = 7.0 * v @ a.t()
        out = method.training_step({"video": vid, "label": labels}, LABELS)
        expected = (ce(logits[0], 4) + ce(logits[1], 0)) / 2
        assert torch.allclose(out["L_a"], expected, atol=1e-4)
        assert torch.allclose(out["loss"], 0.5 * expected, atol=1e-4)
        method.eval()
        assert torch.allclose(method.logits({"video": vid}, a), logits, atol=1e-4)


def test_dense_tokens_o_are_the_frozen_towers_patch_outputs_through_the_head(tiny_backbone):
    method = build(tiny_backbone)
    vid = video(3)
    with torch.no_grad():
        dense, second_last, last = method.encode_tokens(vid, True)
        ref_second, ref_last = ref_tokens(method.clip.visual, vid)
        visual = method.clip.visual
        assert torch.allclose(second_last, ref_second, atol=1e-5)
        assert torch.allclose(last, ref_last, atol=1e-5)
        assert torch.allclose(dense, visual.ln_post(ref_last[:, :, 1:]) @ visual.proj, atol=1e-5)


def ref_kmeans(tokens, centres, iters):
    """Cosine K-means, one token at a time: assign to the most similar centre, move each centre to
    the normalised mean of its tokens, keep a centre that wins nothing."""
    centres = centres.clone()
    for _ in range(iters):
        assign = [int(torch.argmax(centres @ x)) for x in tokens]
        for c in range(len(centres)):
            mine = [x for x, a in zip(tokens, assign) if a == c]
            if mine:
                m = torch.stack(mine).mean(0)
                centres[c] = m / m.norm()
    assign = torch.tensor([int(torch.argmax(centres @ x)) for x in tokens])
    return assign, centres


@pytest.mark.parametrize("iters", [0, 1, 2, 3])
def test_kmeans_update_step_is_the_normalised_mean_of_the_assigned_tokens(iters):
    gen = torch.Generator().manual_seed(7)
    tokens = nnf.normalize(torch.randn(40, 3, generator=gen), dim=-1)
    centres = nnf.normalize(torch.randn(5, 3, generator=gen), dim=-1)
    centres[4] = -tokens.mean(0) / tokens.mean(0).norm()  # far from most tokens: may win none
    assign, got, counts = spherical_kmeans(tokens[None], centres[None], iters)
    ref_assign, ref_centres = ref_kmeans(tokens, centres, iters)
    assert torch.equal(assign[0], ref_assign)
    assert torch.allclose(got[0], ref_centres, atol=1e-5)
    assert counts[0].tolist() == [int((ref_assign == c).sum()) for c in range(5)]


def test_kmeans_on_hand_made_points_moves_a_centre_to_the_mean_direction():
    """2-D points at angles 0, 0.3, 0.6 and 1.2, 1.5; centres at angles 0 and pi/2. One step: the
    first centre goes to angle 0.3 (the normalised mean of its three points), the second to the
    mean direction of the other two."""
    ang = torch.tensor([0.0, 0.3, 0.6, 1.2, 1.5])
    tokens = torch.stack([ang.cos(), ang.sin()], 1)
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assign, got, counts = spherical_kmeans(tokens[None], centres[None], 1)
    assert torch.allclose(got[0, 0], torch.tensor([math.cos(0.3), math.sin(0.3)]), atol=1e-5)
    assert torch.allclose(got[0, 1], torch.tensor([math.cos(1.35), math.sin(1.35)]), atol=1e-5)
    assert assign[0].tolist() == [0, 0, 0, 1, 1] and counts[0].tolist() == [3, 2]


def test_eq2_seeds_at_origins_0_s_half_up_to_h_minus_s():
    gen = torch.Generator().manual_seed(0)
    dense = torch.randn(1, 1, 14, 14, 4, generator=gen)
    seeds = window_seeds(dense, window_specs((14, 14), [3, 7]))[0]
    expected = []
    for s in (3, 7):
        origins = range(0, 14 - s + 1, s // 2)  # I = {0, floor(s/2), ..., H - s}
        expected += [dense[0, 0, i:i + s, j:j + s].reshape(-1, 4).mean(0) for i in origins for j in origins]
    assert seeds.shape[0] == len(expected) == 144 + 9
    assert torch.allclose(seeds, torch.stack(expected), atol=1e-6)
