"""`cezsar`'s plain functions: negative sampling, the masked mean, the losses, caption files."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as nnf

from zsar.errors import ConfigError
from zsar.methods.cezsar_parts import (SentenceBank, info_nce, load_captions, masked_mean, repeat_tail_mask,
                                       sample_negatives, triplet_loss)


def planted_sentences(classes=4, per_class=5, dim=16, seed=0):
    """Sentences in clusters, one per class, with distances to other classes spread over (0, 2)."""
    gen = torch.Generator().manual_seed(seed)
    centres = nnf.normalize(torch.randn(classes, dim, generator=gen), dim=-1)
    emb = torch.cat([nnf.normalize(c + 0.6 * torch.randn(per_class, dim, generator=gen), dim=-1) for c in centres])
    owner = torch.arange(classes).repeat_interleave(per_class)
    return emb, owner


def test_negatives_lie_in_the_band_and_never_in_the_positives_class():
    emb, owner = planted_sentences()
    band = (0.3, 1.1)
    negatives, outside = sample_negatives(emb, owner, k=10, band=band, seed=3)
    assert negatives.shape == (len(emb), 10) and outside == 0
    distance = 1 - emb @ emb.t()
    for row in range(len(emb)):
        d = distance[row, negatives[row]]
        assert ((d > band[0]) & (d < band[1])).all(), (row, d)
        assert (owner[negatives[row]] != owner[row]).all()
    # the band did cut: some other-class sentences lie outside it, and none of them was drawn
    other = owner[None] != owner[:, None]
    excluded = other & ((distance <= band[0]) | (distance >= band[1]))
    assert excluded.any()
    drawn = torch.zeros_like(excluded)
    drawn.scatter_(1, negatives, True)
    assert not (drawn & excluded).any()


def test_negative_sampling_is_seeded_and_covers_the_pool():
    emb, owner = planted_sentences()
    a, _ = sample_negatives(emb, owner, k=10, band=(0.0, 2.0), seed=7)
    b, _ = sample_negatives(emb, owner, k=10, band=(0.0, 2.0), seed=7)
    c, _ = sample_negatives(emb, owner, k=10, band=(0.0, 2.0), seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert all(len(set(r.tolist())) == 10 for r in a)  # 15 candidates: drawn without replacement


def test_a_positive_without_any_in_band_sentence_is_counted():
    emb, owner = planted_sentences(classes=2, per_class=3)
    _, outside = sample_negatives(emb, owner, k=2, band=(1.99, 2.0), seed=0)
    assert outside == len(emb)
    with pytest.raises(ConfigError):
        sample_negatives(emb, owner, k=2, band=(0.8, 0.2), seed=0)


def test_sentence_bank_keeps_class_sentences_first_and_captions_without_class():
    bank = SentenceBank.build([["a", "b", "a"], ["c"]], extra=["d", "a"])
    assert bank.sentences == ("a", "b", "c", "d")
    assert bank.owner.tolist() == [0, 0, 1, -1]
    assert bank.class_rows == ((0, 1), (2,))


def test_masked_mean_ignores_padded_steps():
    x = torch.randn(3, 6, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    out = masked_mean(x, mask)
    assert torch.allclose(out[0], x[0, :3].mean(0)) and torch.allclose(out[1], x[1].mean(0))
    assert torch.allclose(out[2], x[2, 0])
    perturbed = torch.where(mask[..., None], x, torch.randn_like(x) * 100)
    assert torch.allclose(masked_mean(perturbed, mask), out)


def test_repeat_tail_mask_marks_only_trailing_repeats():
    f = torch.randn(5, 3, 2, 2)
    video = torch.stack([
        torch.cat([f[:3], f[2:3], f[2:3]]),  # a short video padded with its last frame
        f,  # no padding
        torch.cat([f[:1], f[:1], f[1:4]]),  # a repeat in the middle is a real step
    ])
    assert repeat_tail_mask(video).tolist() == [[True] * 3 + [False] * 2, [True] * 5, [True] * 5]


def test_triplet_loss_is_zero_when_margins_are_met_and_the_shortfall_otherwise():
    a = torch.zeros(2, 3)
    p = torch.tensor([[0.5, 0, 0], [0, 0.2, 0]])  # distance 0.5 and 0.2
    n_far = torch.tensor([[2.0, 0, 0], [0, 0, 1.5]])  # 2.0 and 1.5: margin 1.0 met by both
    assert triplet_loss(a, p, n_far, margin=1.0).item() == pytest.approx(0.0, abs=1e-6)
    n_near = torch.tensor([[1.0, 0, 0], [0, 0, 0.7]])  # shortfalls 0.5 and 0.5
    assert triplet_loss(a, p, n_near, margin=1.0).item() == pytest.approx(0.5, abs=1e-5)


def test_info_nce_is_the_cross_entropy_of_the_positive_among_its_negatives():
    a, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 3, 8)
    cos = lambda u, v: nnf.cosine_similarity(u, v, dim=-1)  # noqa: E731
    logits = torch.cat([cos(a, p)[:, None], cos(a[:, None], n)], 1) / 0.5
    expected = -torch.log_softmax(logits, 1)[:, 0].mean()
    assert info_nce(a, p, n, 0.5).item() == pytest.approx(expected.item(), rel=1e-5)


def test_captions_pair_each_sentence_with_its_segment_and_skip_bad_videos(tmp_path, capsys):
    path = tmp_path / "captions.json"
    path.write_text(json.dumps({
        "v_1": {"duration": 10.0, "timestamps": [[0, 4.5], [4.5, 10]], "sentences": ["A man runs.", " He jumps. "]},
        "v_2": {"duration": 5.0, "timestamps": [[0, 2]], "sentences": ["one", "two"]},  # lengths differ
        "v_3": {"duration": 5.0, "timestamps": [[3, 1]], "sentences": ["backwards"]},  # end before start
        "v_4": {"duration": 5.0},  # no sentences
        "v_5": {"duration": 3.0, "timestamps": [[1, 3]], "sentences": ["Waves roll in."]},
    }))
    segments, skipped = load_captions(path)
    assert [(s.video_id, s.start, s.end, s.sentence) for s in segments] == [
        ("v_1", 0.0, 4.5, "A man runs."), ("v_1", 4.5, 10.0, "He jumps."), ("v_5", 1.0, 3.0, "Waves roll in.")]
    assert skipped == 3 and "3 of 5 videos" in capsys.readouterr().err


def test_a_captions_file_that_is_not_a_mapping_is_a_user_error(tmp_path):
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{")
    for name in ("list.json", "broken.json", "missing.json"):
        with pytest.raises(ConfigError, match="cezsar captions"):
            load_captions(tmp_path / name)
