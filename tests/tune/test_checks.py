"""Fast checks of the sweep's parts that need no Ray."""

import math

import pytest

from zsar.track.best import selection_key
from zsar.tune.sweep import check_finite


def test_non_finite_loss_or_metric_fails_the_trial():
    check_finite({"epoch": 1, "train/loss": 1.0, "val_hm": 20.0, "novel_top1": math.nan}, "val_hm")  # not selected on
    with pytest.raises(FloatingPointError, match="train/loss=nan"):
        check_finite({"epoch": 2, "train/loss": math.nan, "val_hm": 20.0}, "val_hm")
    with pytest.raises(FloatingPointError, match="val_hm=inf"):
        check_finite({"epoch": 2, "train/loss": 1.0, "val_hm": math.inf}, "val_hm")


def test_runs_are_ranked_by_their_own_selection_metric():
    assert selection_key("hm", "val") == "val_hm"
    assert selection_key("hm", "test") == "hm"
    assert selection_key("val_hm", "val") == "val_hm"
