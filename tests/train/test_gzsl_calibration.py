"""GZSL calibrated stacking as the evaluation applies it: gamma moves seen-class scores only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsar.train.metrics import calibrated_stacking, harmonic_mean, part_metrics


def test_gamma_shifts_only_seen_scores():
    scores = torch.randn(7, 5)
    seen = torch.tensor([True, False, True, True, False])
    out = calibrated_stacking(scores, seen, 0.3)
    torch.testing.assert_close(out[:, ~seen], scores[:, ~seen])
    torch.testing.assert_close(out[:, seen], scores[:, seen] - 0.3)
    torch.testing.assert_close(calibrated_stacking(scores, seen, 0.0), scores)
    assert out is not scores and not torch.equal(scores[:, seen], out[:, seen])


def test_part_metrics_trades_seen_for_unseen_as_gamma_grows():
    rng = np.random.default_rng(0)
    seen_mask = np.array([True] * 4 + [False] * 3)
    labels = np.repeat(np.arange(7), 20)
    # A model biased towards seen classes: every sample's true score is +1, seen classes get +0.8 on top.
    scores = (rng.normal(0, 0.3, (len(labels), 7)) + 0.8 * seen_mask).astype(np.float32)
    scores[np.arange(len(labels)), labels] += 1.0
    s = torch.from_numpy(scores)
    y = torch.from_numpy(labels)
    m0, used0 = part_metrics(s, y, "", seen_mask, 0.0)
    m1, used1 = part_metrics(s, y, "", seen_mask, 0.8)
    m9, _ = part_metrics(s, y, "", seen_mask, 50.0)
    assert m1["unseen"] > m0["unseen"] and m1["seen"] <= m0["seen"]
    assert m9["unseen"] == pytest.approx(100.0 * np.mean(scores[labels >= 4][:, 4:].argmax(1) + 4 == labels[labels >= 4]))
    assert m9["seen"] == 0.0
    assert abs(m1["h"] - harmonic_mean(m1["seen"], m1["unseen"])) < 1e-9
    np.testing.assert_allclose(used1[:, ~seen_mask], scores[:, ~seen_mask])
    np.testing.assert_allclose(used1[:, seen_mask], scores[:, seen_mask] - 0.8)
    assert m1["top1"] == pytest.approx(100.0 * np.mean(used1.argmax(1) == labels))


def test_parts_without_seen_classes_are_scored_plainly():
    scores = torch.eye(3)
    metrics, used = part_metrics(scores, torch.arange(3), "zsl_")
    assert metrics == {"zsl_top1": 100.0, "zsl_top5": 100.0}
    np.testing.assert_array_equal(used, np.eye(3))
