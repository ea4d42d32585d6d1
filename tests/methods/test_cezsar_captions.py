"""`cezsar` under the captions regime (training labels = the segments' own captions, verbatim) and
its `public_projections` option (ReLU after the projections, Xavier init), recomputed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from reference import cezsar_method, ref_cezsar_visual
from zsar.models.text import LabelSet

CAPTIONS = LabelSet(("a person opens the door.", "she paints the fence white.", "the dog jumps into the lake.",
                     "two men play table tennis."), verbatim=True)


def build(**hparams):
    return cezsar_method(CAPTIONS, {"templates": "video", "use": "both"}, **hparams)


def test_each_row_is_pulled_to_its_own_caption_and_pushed_from_another():
    """A row's label is its caption: its positive is that sentence, as written (no template), and
    its K negatives are other captions. The step's triplet loss by hand, K = 2 (the random picks
    replayed from the same torch seed)."""
    method = build(negatives=2, margin=0.5, negative_band=[0.0, 2.0])
    assert method.prompts(CAPTIONS) == [[c] for c in CAPTIONS.names]
    assert [method.bank.sentences[int(method.class_rows[y, 0])] for y in range(4)] == list(CAPTIONS.names)
    assert method.class_counts.tolist() == [1, 1, 1, 1]
    feats = torch.randn(5, 3, 64, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([2, 0, 3, 2, 1])
    batch = {"frame_features": feats, "frame_mask": torch.ones(5, 3, dtype=torch.bool), "label": y}
    with torch.no_grad():
        torch.manual_seed(5)
        out = method.training_step(batch, CAPTIONS)
        torch.manual_seed(5)
        torch.rand(len(y))  # the positive pick (one sentence per caption: always it)
        which = torch.randint(2, (len(y),))
        v = method.encode_video(batch)
        total = 0.0
        for i, label in enumerate(y.tolist()):
            own = method.text(method.frozen_sentences([CAPTIONS.names[label]]))[0]
            neg_row = int(method.negatives[label, which[i]])
            assert method.bank.sentences[neg_row] != CAPTIONS.names[label]
            other = method.text(method.frozen_sentences([method.bank.sentences[neg_row]]))[0]
            total += max(0.0, float((v[i] - own).norm() - (v[i] - other).norm()) + 0.5)
        assert out["loss"].item() == pytest.approx(total / len(y), abs=1e-4) and total > 0


def test_public_projections_put_a_relu_after_each_projection_and_use_xavier_init():
    method = build(public_projections=True)
    feats = torch.nn.functional.normalize(torch.randn(2, 4, 64, generator=torch.Generator().manual_seed(3)), dim=-1)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        got = method.encode_video({"frame_features": feats, "frame_mask": mask})
        assert torch.allclose(got, ref_cezsar_visual(method.visual, feats, mask, act=torch.relu), atol=1e-5)
        x = torch.randn(3, method.text_space.dim)
        text = method.text.norm(torch.relu(x @ method.text.proj.weight.t() + method.text.proj.bias))
        assert torch.allclose(method.text(x), text, atol=1e-5)
    for layer in (method.visual.inp, method.visual.out, method.text.proj):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))  # Xavier-uniform: U(-b, b), std b / sqrt(3)
        w = layer.weight.detach()
        assert w.abs().max() <= bound and float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.1)
        assert not layer.bias.any()


def test_without_the_option_there_is_no_relu_and_the_default_init():
    method = build()
    assert isinstance(method.visual.act, torch.nn.Identity) and isinstance(method.text.act, torch.nn.Identity)
    layer = method.visual.inp  # PyTorch's default: Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), ..)
    assert layer.weight.abs().max() <= 1 / math.sqrt(layer.weight.shape[1]) and layer.bias.any()
