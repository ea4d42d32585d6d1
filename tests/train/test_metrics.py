import math

import numpy as np
import pytest
import torch

from zsar.train.metrics import (
    confusion_matrix,
    derived_metrics,
    fuse_views,
    gzsl_metrics,
    harmonic_mean,
    label_set_metrics,
    mean_std,
    per_class_accuracy,
    topk_accuracy,
)

SCORES = torch.tensor(
    [
        [0.9, 0.05, 0.03, 0.02],  # label 0: top1 right
        [0.1, 0.2, 0.6, 0.1],  # label 1: second place -> top5 right, top1 wrong
        [0.35, 0.1, 0.3, 0.4],  # label 2: third place
        [0.05, 0.05, 0.1, 0.8],  # label 3: right
    ]
)
LABELS = torch.tensor([0, 1, 2, 3])


def test_topk_by_hand():
    assert topk_accuracy(SCORES, LABELS, 1) == pytest.approx(50.0)
    assert topk_accuracy(SCORES, LABELS, 2) == pytest.approx(75.0)
    assert topk_accuracy(SCORES, LABELS, 3) == pytest.approx(100.0)
    assert topk_accuracy(SCORES, LABELS, 5) == pytest.approx(100.0)  # k capped at 4 classes
    assert label_set_metrics(SCORES, LABELS, "base_") == {"base_top1": 50.0, "base_top5": 100.0}


def test_multi_view_fusion():
    views = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 3.0], [0.0, 3.0]]])  # B=2, V=2, C=2
    assert torch.allclose(fuse_views(views, "mean_logits"), torch.tensor([[1.0, 0.5], [0.0, 3.0]]))
    probs = fuse_views(views, "mean_probs")
    p0 = (torch.softmax(torch.tensor([2.0, 0.0]), 0) + torch.softmax(torch.tensor([0.0, 1.0]), 0)) / 2
    assert torch.allclose(probs[0], p0)


def test_harmonic_mean_and_mean_std():
    assert harmonic_mean(80.0, 40.0) == pytest.approx(2 * 80 * 40 / 120)
    assert harmonic_mean(0.0, 0.0) == 0.0
    mean, std = mean_std([70.0, 80.0, 90.0])
    assert mean == pytest.approx(80.0) and std == pytest.approx(math.sqrt(200 / 3))


def test_per_class_accuracy_and_confusion():
    scores = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    labels = torch.tensor([0, 1, 1, 0])
    acc = per_class_accuracy(scores, labels, 3)
    assert acc[0] == 50.0 and acc[1] == 50.0 and np.isnan(acc[2])
    cm = confusion_matrix(scores, labels, 3)
    assert cm.tolist() == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]


def test_gzsl_with_calibrated_stacking():
    # classes 0,1 seen; 2 unseen. Sample 2 (unseen) loses to a seen class by 0.1.
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.0, 0.5], [0.1, 0.2, 0.7]])
    labels = torch.tensor([0, 1, 2, 2])
    seen = torch.tensor([True, True, False])
    m0 = gzsl_metrics(scores, labels, seen, gamma=0.0)
    assert (m0["seen"], m0["unseen"]) == (100.0, 50.0)
    assert m0["h"] == pytest.approx(harmonic_mean(100.0, 50.0))
    m1 = gzsl_metrics(scores, labels, seen, gamma=0.2)
    assert (m1["seen"], m1["unseen"]) == (100.0, 100.0)  # only seen scores moved
    m2 = gzsl_metrics(scores, labels, seen, gamma=0.7)
    assert m2["seen"] == 50.0  # row 1: 0.7-0.7=0.0 now loses to its unseen score 0.1; row 0 still wins


def test_derived_metrics_names():
    out = derived_metrics("base2novel", ["base_", "novel_"], {"base_top1": 80.0, "novel_top1": 40.0})
    assert out == {"hm": pytest.approx(53.3333, rel=1e-4)}
    metrics = {"ucf101/split1/top1": 70.0, "ucf101/split2/top1": 80.0, "hmdb51/split1/top1": 50.0}
    out = derived_metrics("targets", ["ucf101/split1/", "ucf101/split2/", "hmdb51/split1/"], metrics)
    assert out["ucf101/top1_mean"] == 75.0 and out["ucf101/top1_std"] == 5.0
    assert out["hmdb51/top1_mean"] == 50.0 and out["hmdb51/top1_std"] == 0.0


def test_a_full_test_set_is_reported_on_its_own_and_not_averaged_with_splits():
    """`<dataset>/full/` (every test video, e.g. cezsar_captions' UCF-101 target) gets no mean;
    the metrics a sweep expects and the run's primary metric follow the same rule."""
    from zsar.config import resolve
    from zsar.tune.spec import produced_metrics

    metrics = {"ucf101/full/top1": 60.0, "kinetics400/val/top1": 30.0}
    out = derived_metrics("targets", ["ucf101/full/", "kinetics400/val/"], metrics)
    assert "ucf101/top1_mean" not in out and out["kinetics400/top1_mean"] == 30.0
    names = produced_metrics(resolve(method="cezsar", dataset="activitynet_captions", protocol="cezsar_captions"))
    assert {"ucf101/full/top1", "kinetics400/val/top1", "kinetics400/top1_mean"} <= names
    assert "ucf101/top1_mean" not in names
