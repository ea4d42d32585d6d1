"""Zero-shot skeleton protocols: unseen classes reach only the test parts, never any training stage."""

from __future__ import annotations

import json

import pytest

from zsar.config import resolve
from zsar.data.dataset import Part, Plan, make_manifest
from zsar.data.sources.ntu import NTU60, NTU120, missing_samples
from zsar.data.sources.pkummd import PKUMMD
from zsar.data.zsl import Sample, skeleton_labels, split_table, unseen_of, zsl_plan
from zsar.errors import DataError
from zsar.models.text import LabelSet
from zsar.train import checkpoint as ckpt
from zsar.train.plan import check_no_unseen_in_checkpoints

TRAIN_SUBJECTS = (1, 2, 4)  # in NTU's cross-subject training list
TEST_SUBJECTS = (3, 6)


def test_the_split_table_matches_the_published_sizes():
    sizes = {"ntu60": 60, "ntu120": 120, "pkummd": 51}
    for name, spec in split_table().items():
        labels = skeleton_labels(f"{spec['dataset']}.txt")
        assert len(labels) == sizes[spec["dataset"]]
        unseen = unseen_of(name, labels)
        assert len(set(unseen)) == len(unseen) == int(name.split("_")[2])
    assert set(split_table()) == {
        "ntu60_55_5", "ntu60_48_12", "ntu120_110_10", "ntu120_96_24",
        *(f"{s}_r{i}" for s in ("ntu60_55_5", "ntu120_110_10", "pkummd_46_5") for i in (1, 2, 3)),
    }
    # SynSE's NTU-60 55/5 unseen classes, by name
    assert unseen_of("ntu60_55_5", skeleton_labels("ntu60.txt")) == [
        "reading", "writing", "put on a hat/cap", "jump up", "touch other person's pocket"]


def fake_ntu_root(tmp, max_action, setups=(1, 2)):
    """Empty files named like NTU samples: planning reads names only."""
    for s in setups:
        for p in TRAIN_SUBJECTS + TEST_SUBJECTS:
            for a in range(1, max_action + 1):
                (tmp / f"S{s:03d}C001P{p:03d}R001A{a:03d}.skeleton").touch()
    (tmp / "notes.skeleton").touch()
    return tmp


def check_zsl_plan(plan: Plan, unseen: list[str], all_names):
    assert set(plan.unseen) == set(unseen)
    train_classes = set(plan.train.manifest["class_name"].to_pylist()) | set(plan.train.labels.names)
    assert not train_classes & set(unseen)
    assert train_classes == set(all_names) - set(unseen)
    paths = plan.train.manifest["path"].to_pylist()
    assert all(f"P{p:03d}" not in x for x in paths for p in TEST_SUBJECTS)
    parts = {p.name: p for p in plan.evals}
    zsl = parts["unseen"]
    assert set(zsl.labels.names) == set(unseen) == set(zsl.manifest["class_name"].to_pylist())
    assert set(parts["seen"].manifest["class_name"].to_pylist()) == set(all_names) - set(unseen)
    assert not set(parts["seen"].manifest["path"].to_pylist()) & set(paths)
    if plan.protocol == "gzsl":
        g = parts["gzsl"]
        assert set(g.labels.names) == set(all_names) and set(g.seen) == set(all_names) - set(unseen)
        assert not set(g.manifest["path"].to_pylist()) & set(paths)
        assert set(zsl.manifest["path"].to_pylist()) <= set(g.manifest["path"].to_pylist())


@pytest.mark.parametrize("cls, n", [(NTU60, 60), (NTU120, 120)])
def test_ntu_splits_hold_out_their_unseen_classes(tmp_path, cls, n):
    ds = cls(str(fake_ntu_root(tmp_path, n, setups=(1, 2) if n == 60 else (1, 18))))
    assert ds.counts["ignored_names"] == 1
    for protocol in ("zsl", "gzsl"):
        for split in ds.protocols[protocol]:
            plan = ds.plan(protocol, split)
            check_zsl_plan(plan, unseen_of(split, ds.labels), ds.labels.names)


def test_ntu_skips_the_published_samples_with_missing_skeletons(tmp_path):
    missing = sorted(missing_samples("ntu60"))[0]
    (tmp_path / f"{missing}.skeleton").touch()
    (tmp_path / "S001C001P001R001A001.skeleton").touch()
    ds = NTU60(str(tmp_path))
    assert ds.counts["skipped_missing_skeletons"] == 1 and len(ds.samples) == 1


def test_ntu_benchmarks_split_by_subject_view_and_setup(tmp_path):
    for name in ("S001C001P001R001A001", "S001C002P003R001A001", "S002C003P001R001A002", "S018C001P003R001A061"):
        (tmp_path / f"{name}.skeleton").touch()
    half = lambda ds, b: {s.path.rsplit("/", 1)[1][:20]: s.half for s in ds._samples(b)}  # noqa: E731
    assert half(NTU60(str(tmp_path)), "xsub") == {"S001C001P001R001A001": "train", "S001C002P003R001A001": "test",
                                                  "S002C003P001R001A002": "train"}
    assert half(NTU60(str(tmp_path)), "xview")["S001C001P001R001A001"] == "test"  # camera 1 is the test view
    assert half(NTU60(str(tmp_path)), "xview")["S002C003P001R001A002"] == "train"
    assert half(NTU120(str(tmp_path)), "xset")["S018C001P003R001A061"] == "train"  # even setups train


def test_pkummd_reads_segments_and_holds_out_unseen_classes(tmp_path):
    (tmp_path / "skeleton").mkdir()
    (tmp_path / "label").mkdir()
    videos = {"0002-L": "train", "0291-M": "test"}
    (tmp_path / "cross-subject.txt").write_text("Training videos:\n0002-L\nValidation videos:\n0291-M\n")
    for video in videos:
        (tmp_path / "skeleton" / f"{video}.txt").write_text("0 " * 150 + "\n")
        (tmp_path / "label" / f"{video}.txt").write_text("".join(f"{a},{10 * a},{10 * a + 8},1\n" for a in range(1, 52)) + "x,y\n")
    ds = PKUMMD(str(tmp_path))
    assert len(ds.samples) == 102 and ds.counts["bad_label_lines"] == 2  # one per label file
    assert {(s.start, s.end) for s in ds.samples if s.class_name == ds.labels.names[4]} == {(50, 58)}
    for split in ds.protocols["gzsl"]:
        plan = ds.plan("gzsl", split)
        unseen = unseen_of(split, ds.labels)
        assert not set(plan.train.manifest["class_name"].to_pylist()) & set(unseen)
        assert set(plan.train.manifest["path"].to_pylist()) == {str(tmp_path / "skeleton" / "0002-L.txt")}
        assert plan.train.manifest.column("start").to_pylist()[0] in range(10, 520, 10)


def test_a_plan_that_trains_on_an_unseen_class_is_refused():
    labels = LabelSet(("a", "b", "c"))
    samples = [Sample(f"{c}{i}.skeleton", c, "train" if i < 2 else "test") for c in "abc" for i in range(3)]
    plan = zsl_plan("toy", "zsl", "s", labels, samples, ["c"])
    leaky = Part("train", make_manifest(["c0.skeleton"], ["c"], labels), labels)
    with pytest.raises(DataError, match="unseen classes in training"):
        Plan("toy", "zsl", "s", leaky, plan.evals, kind="zsl", unseen=("c",))
    with pytest.raises(DataError, match="not in the label set"):
        zsl_plan("toy", "zsl", "s", labels, samples, ["d"])


def test_a_stage1_checkpoint_trained_on_an_unseen_class_is_refused(tmp_path, zsar_home):
    labels = LabelSet(("a", "b", "c"))
    samples = [Sample(f"{c}{i}.skeleton", c, "train" if i < 2 else "test") for c in "abc" for i in range(3)]
    plan = zsl_plan("toy", "zsl", "s", labels, samples, ["c"])
    stage1 = tmp_path / "stage1"
    stage1.mkdir()
    cfg = resolve(method="skeleton_proj", dataset="demo_skeleton", protocol="zsl",
                  overrides={"hparams": {"encoder_checkpoint": str(stage1)}})
    with pytest.raises(DataError, match="does not record"):
        check_no_unseen_in_checkpoints(cfg, plan)
    (stage1 / ckpt.TRAINED_CLASSES).write_text(json.dumps(["a", "b", "c"]))
    with pytest.raises(DataError, match="holds out"):
        check_no_unseen_in_checkpoints(cfg, plan)
    (stage1 / ckpt.TRAINED_CLASSES).write_text(json.dumps(["a", "b"]))
    check_no_unseen_in_checkpoints(cfg, plan)
