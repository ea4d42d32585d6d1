"""`cezsar` recomputed by hand: the visual branch (projection, post-norm transformer with padding
masked, masked temporal mean, LayerNorm), the L2 frame normalisation, the text branch, prototypes
and cosine logits, band negative sampling on hand-made sentences, and the triplet loss of a
training step (the video pulled to its own class's sentence, pushed from its negative)."""

from __future__ import annotations


import pytest
import torch

from reference import cezsar_method, ref_cezsar_visual
from zsar.config import resolve
from zsar.methods.cezsar_parts import sample_negatives
from zsar.models.backbone import create_backbone
from zsar.models.text import LabelSet
from zsar.registry import METHODS

LABELS = LabelSet(("moving left slowly", "moving right quickly", "growing slowly", "shrinking quickly"))


def build(**hparams):
    return cezsar_method(LABELS, {"templates": "name", "use": "names"}, **hparams)


def test_visual_branch_and_l2_frame_norm_by_hand():
    method = build()
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 6, 64, generator=gen) * 5
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    batch = {"frame_features": feats, "frame_mask": mask}
    with torch.no_grad():
        got = method.encode_video(batch)
        unit = feats / feats.norm(dim=-1, keepdim=True)  # each frame's feature vector to unit length
        assert torch.allclose(got, ref_cezsar_visual(method.visual, unit, mask), atol=1e-4)
        assert not torch.allclose(got, ref_cezsar_visual(method.visual, feats, mask), atol=1e-3)


def test_text_branch_prototypes_and_cosine_logits_by_hand():
    method = build(logit_scale=3.0)
    with torch.no_grad():
        sentences = [s for p in method.prompts(LABELS) for s in p]
        frozen = method.text_space.encode(sentences)
        joint = method.text.norm(frozen @ method.text.proj.weight.t() + method.text.proj.bias)
        protos = method.class_embeddings(LABELS)
        assert torch.allclose(protos, joint, atol=1e-5)  # one sentence per class: the prototype is it
        feats = torch.randn(2, 4, 64)
        batch = {"frame_features": feats, "frame_mask": torch.ones(2, 4, dtype=torch.bool)}
        v = method.encode_video(batch)
        cos = torch.tensor([[float(v[i] @ protos[c] / (v[i].norm() * protos[c].norm())) for c in range(4)] for i in range(2)])
        assert torch.allclose(method.logits(batch, protos), 3.0 * cos, atol=1e-4)


def test_prototype_is_the_mean_over_a_classes_sentences():
    exp = resolve(method="cezsar", dataset="demo", protocol="base2novel",
                  overrides={"hparams": {"visual_hidden": 32, "visual_ff": 48}, "text": {"templates": "shape", "use": "names"}})
    torch.manual_seed(0)
    method = METHODS.get("cezsar")(exp.method_config(), create_backbone(exp.backbone), exp).eval()
    with torch.no_grad():
        prompts = method.prompts(LABELS)
        protos = method.class_embeddings(LABELS)
        for c, p in enumerate(prompts):
            assert len(p) > 1
            each = [method.text.norm(method.text.proj(method.text_space.encode([s])))[0] for s in p]
            assert torch.allclose(protos[c], torch.stack(each).sum(0) / len(each), atol=1e-5)


def test_band_sampling_on_hand_made_sentences():
    """Row 0 (class 0). Candidates: row 1 same class (never), row 2 class 1 at distance 0 (outside
    (0, 0.8): low is strict), row 3 class 1 at distance 1 (outside), row 4 class 1 at distance 0.4
    (inside), row 5 a caption (no class) at distance 0.2 (inside)."""
    emb = torch.tensor([[1.0, 0.0], [0.8, 0.6], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, -0.6]])
    owner = torch.tensor([0, 0, 1, 1, 1, -1])
    picks, outside = sample_negatives(emb, owner, 2, (0.0, 0.8), seed=0, positives=torch.tensor([0]))
    assert sorted(picks[0].tolist()) == [4, 5] and outside == 0
    many, _ = sample_negatives(emb, owner, 6, (0.0, 0.8), seed=0, positives=torch.tensor([0]))
    assert set(many[0].tolist()) <= {4, 5}
    wide, _ = sample_negatives(emb, owner, 3, (0.0, 1.5), seed=0, positives=torch.tensor([0]))
    assert sorted(wide[0].tolist()) == [3, 4, 5]  # distance 1 is inside (0, 1.5); distance 0 never
    narrow, outside = sample_negatives(emb, owner, 2, (0.5, 0.7), seed=0, positives=torch.tensor([0]))
    assert outside == 1 and set(narrow[0].tolist()) <= {2, 3, 4, 5}  # none in the band: any other class


def test_a_triplet_step_by_hand():
    """One sentence per class and K = 1 negative: the step is deterministic. The loss is
    mean(max(0, ||v - t_pos|| - ||v - t_neg|| + margin)) with t_pos the video's OWN class sentence."""
    method = build(negatives=1, margin=0.7)
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(4, 5, 64, generator=gen)
    batch = {"frame_features": feats, "frame_mask": torch.ones(4, 5, dtype=torch.bool), "label": torch.tensor([3, 1, 0, 3])}
    with torch.no_grad():
        out = method.training_step(batch, LABELS)
        v = method.encode_video(batch)
        sentences = [s for p in method.prompts(LABELS) for s in p]
        assert list(method.bank.sentences[:4]) == sentences

        def joint(row):
            return method.text.norm(method.text.proj(method.bank_features[row]))

        total = 0.0
        for i, y in enumerate(batch["label"].tolist()):
            neg = int(method.negatives[y, 0])
            assert int(method.bank.owner[neg]) != y
            d_pos, d_neg = (v[i] - joint(y)).norm(), (v[i] - joint(neg)).norm()
            total += max(0.0, float(d_pos - d_neg) + 0.7)
        assert out["loss"].item() == pytest.approx(total / 4, abs=1e-4)
        assert out["loss"].item() > 0  # the check has something to compare
