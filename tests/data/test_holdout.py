"""selection=val: a seeded quarter of the training classes is held out as pseudo-novel."""

from __future__ import annotations

import pytest

from zsar.data.dataset import Part, Plan, make_manifest
from zsar.data.holdout import apply_selection, split_classes, with_validation
from zsar.errors import ConfigError
from zsar.models.text import LabelSet


def _plan(classes=8, per_class=8) -> Plan:
    base = LabelSet(tuple(f"base{i}" for i in range(classes)))
    novel = LabelSet(("novel0", "novel1"))
    names = [n for n in base.names for _ in range(per_class)]
    train = Part("train", make_manifest([f"/v/{n}_{i}.mp4" for i, n in enumerate(names)], names, base), base)
    evals = [Part("base", make_manifest(["/t/b.mp4"], ["base0"], base), base, prefix="base_"),
             Part("novel", make_manifest(["/t/n.mp4"], ["novel0"], novel), novel, prefix="novel_")]
    return Plan("demo", "base2novel", "s1", train, evals, kind="base2novel")


def test_quarter_held_out_and_no_row_in_two_parts():
    plan = with_validation(_plan(), seed=0)
    train, val_base, val_novel = plan.train, plan.evals[0], plan.evals[1]
    assert [p.name for p in plan.evals] == ["val_base", "val_novel", "base", "novel"]
    assert len(val_novel.labels) == 2 and len(train.labels) == 6  # a quarter of 8 classes
    assert not set(val_novel.labels.names) & set(train.labels.names)
    paths = [set(p.manifest["path"].to_pylist()) for p in (train, val_base, val_novel)]
    assert not (paths[0] & paths[1]) and not (paths[0] & paths[2]) and not (paths[1] & paths[2])
    assert sum(map(len, paths)) == 64  # every training video is in exactly one part
    assert len(val_base) == 6 * 2  # a quarter of each kept class's 8 videos
    assert set(val_base.manifest["class_name"].to_pylist()) == set(train.labels.names)
    for part in (train, val_base, val_novel):  # labels index the part's own label set
        names = part.manifest["class_name"].to_pylist()
        assert [part.labels.names[i] for i in part.manifest["label"].to_pylist()] == names
        assert part.manifest["index"].to_pylist() == list(range(len(part)))
    assert plan.selection == "val" and plan.notes["selection"]["held_out_classes"] == list(val_novel.labels.names)


def test_seeded():
    assert split_classes(tuple("abcdefgh"), 0) == split_classes(tuple("abcdefgh"), 0)
    assert any(split_classes(tuple("abcdefgh"), 0)[1] != split_classes(tuple("abcdefgh"), s)[1] for s in range(1, 5))


def test_val_hm_is_the_primary_metric_and_test_leaves_the_plan():
    from zsar.train.plan import primary_metric

    assert primary_metric(apply_selection(_plan(), "val", 0)) == "val_hm"
    plan = apply_selection(_plan(), "test", 0)
    assert primary_metric(plan) == "hm" and [p.name for p in plan.evals] == ["base", "novel"]


def test_needs_training_classes():
    plan = _plan()
    with pytest.raises(ConfigError, match="selection=val"):
        with_validation(Plan("d", "zeroshot", "x", None, plan.evals), 0)
    with pytest.raises(ConfigError, match="at least 2"):
        split_classes(("only",), 0)
