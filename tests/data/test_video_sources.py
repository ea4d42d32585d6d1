"""Each video dataset adapter on a tiny tree in its real layout, named after the shipped lists."""

import os

import pytest

from zsar.data import protocols
from zsar.data.files import Issues
from zsar.errors import DataError
from zsar.registry import DATASETS
from video_trees import (folder_of, list_names, make_hmdb, make_kinetics, make_ssv2, make_ucf, ucf_class)


def _open(name, root):
    ds = DATASETS.get(name)(str(root))
    ds.quiet = True
    return ds


def _files(part):
    return sorted(os.path.basename(p) for p in part.manifest["path"].to_pylist())


def _classes(part):
    return dict(zip((os.path.basename(p) for p in part.manifest["path"].to_pylist()), part.manifest["class_name"].to_pylist()))


def _labels_match(part):
    names = part.manifest["class_name"].to_pylist()
    assert [part.labels.names[i] for i in part.manifest["label"].to_pylist()] == names


B2N_UCF = "base2novel_splits/ucf_splits/"


def test_ucf101_tree(tmp_path):
    train = list_names(B2N_UCF + "fs_base_s1_train.txt", every=100)
    base = list_names(B2N_UCF + "base_val.txt", every=500)
    novel = list_names(B2N_UCF + "novel_val.txt", every=500)
    test1 = list_names("ucf_splits/val1.txt", every=1000)
    extra = ["v_HandStandPushups_g01_c01.avi"]
    names = sorted(set(train + base + novel + test1 + extra))
    root = make_ucf(tmp_path / "ucf", names, train=names[:5], test=names[5:])
    # a file whose name says Typing, in the Archery folder: the folder decides
    (root / "UCF-101" / "Archery").mkdir(exist_ok=True)
    (root / "UCF-101" / "Archery" / "v_Typing_g99_c01.avi").write_bytes(b"")
    ds = _open("ucf101", root)

    full = ds.plan("full", "split1")
    assert len(full.train) == 5 and len(full.evals[0]) == len(names) - 5 and len(full.train.labels) == 101
    assert {**_classes(full.train), **_classes(full.evals[0])}["v_HandStandPushups_g01_c01.avi"] == "handstand pushups"

    b2n = ds.plan("base2novel", "s1")
    assert b2n.kind == "base2novel" and [p.prefix for p in b2n.evals] == ["base_", "novel_"]
    for part, listed in zip((b2n.train, *b2n.evals), ("fs_base_s1_train.txt", "base_val.txt", "novel_val.txt")):
        assert _files(part) == sorted(set(names) & set(list_names(B2N_UCF + listed)))  # every listed file there, no other
    assert set(train) <= set(_files(b2n.train)) and set(novel) <= set(_files(b2n.evals[1]))
    assert (len(b2n.train.labels), len(b2n.evals[1].labels)) == (51, 50)
    for part in (b2n.train, *b2n.evals):
        _labels_match(part)
    assert b2n.notes["missing"]["train"] == {"missing": 816 - len(train), "listed": 816}

    zs = ds.plan("zeroshot", "split1")
    assert zs.train is None and _files(zs.evals[0]) == sorted(set(names) & set(list_names("ucf_splits/val1.txt")))
    assert set(test1) <= set(_files(zs.evals[0])) and len(zs.evals[0].labels) == 101
    every = ds.plan("zeroshot", "full")
    assert len(every.evals[0]) == len(names) + 1
    assert _classes(every.evals[0])["v_Typing_g99_c01.avi"] == "archery"
    assert DATASETS.get("ucf101").splits_for_all("zeroshot") == ("split1", "split2", "split3")
    assert DATASETS.get("ucf101").splits_for_all("cezsar") == protocols.RANDOM50

    hard = ds.plan("cezsar", "hard")
    assert (len(hard.train.labels), len(hard.evals[0].labels)) == (86, 15)
    assert set(hard.train.manifest["class_name"].to_pylist()) <= set(hard.train.labels.names)
    assert "removed_from_training" in hard.notes
    (root / "ucfTrainTestlist" / "trainlist02.txt").unlink()
    with pytest.raises(DataError, match="trainlist02"):
        ds.plan("full", "split2")


def test_hmdb51_tree(tmp_path):
    spec = protocols.base2novel("hmdb51", "s1", Issues())
    names = [e.name for e in spec.train.entries[::40]] + [e.name for e in spec.evals[1].entries[::100]]
    tags = {n: (1 if i % 3 == 0 else 2 if i % 3 == 1 else 0) for i, n in enumerate(names)}
    root = make_hmdb(tmp_path / "hmdb", names, tags)
    ds = _open("hmdb51", root)
    full = ds.plan("full", "split1")
    assert _files(full.train) == sorted(n for n, t in tags.items() if t == 1)
    assert _files(full.evals[0]) == sorted(n for n, t in tags.items() if t == 2)
    assert len(full.evals[0].labels) == 51
    b2n = ds.plan("base2novel", "s1")
    assert (len(b2n.train.labels), len(b2n.evals[1].labels)) == (26, 25)
    assert len(b2n.train) == len(spec.train.entries[::40]) and len(b2n.evals[1]) == len(spec.evals[1].entries[::100])
    assert len(ds.plan("zeroshot", "full").evals[0]) == len(names)
    assert not [i for i in ds.issues if i.kind not in ("missing",)]
    with pytest.raises(DataError, match="test_split2"):
        ds.plan("full", "split2")


def _k400_rows():
    spec = protocols.base2novel("kinetics400", "s1", Issues())
    rows = [(folder_of("kinetics400", e.cls), e.name.split("/")[-1], "train") for e in spec.train.entries[::400]]
    rows += [(folder_of("kinetics400", e.cls), e.name.split("/")[-1], "val") for e in spec.evals[0].entries[::2000]]
    rows += [(folder_of("kinetics400", e.cls), e.name.split("/")[-1], "val") for e in spec.evals[1].entries[::2000]]
    return spec, rows


@pytest.mark.parametrize("layout", ["split", "class"])
def test_kinetics400_tree_both_layouts(tmp_path, layout):
    spec, rows = _k400_rows()
    root = make_kinetics(tmp_path / "k400", rows, layout=layout, split_words={"val": "validate"} if layout == "class" else None)
    ds = _open("kinetics400", root)
    b2n = ds.plan("base2novel", "s1")
    assert _files(b2n.train) == sorted(e.name.split("/")[-1] for e in spec.train.entries[::400])
    assert len(b2n.evals[0]) + len(b2n.evals[1]) == len(rows) - len(b2n.train)
    assert (len(b2n.train.labels), len(b2n.evals[1].labels)) == (200, 200)
    full = ds.plan("full", "val")
    assert len(full.train) + len(full.evals[0]) == len(rows) and len(full.train.labels) == 400
    zs = ds.plan("zeroshot", "full")
    assert zs.kind == "targets" and zs.evals == [] and len(zs.train) == len(b2n.train) and len(zs.train.labels) == 400
    for part in (full.train, full.evals[0], b2n.train):
        _labels_match(part)
    assert {i.kind for i in ds.issues} == {"missing"}  # the rest of the published lists


def test_kinetics_annotation_without_video_and_folder_fallback(tmp_path):
    _, rows = _k400_rows()
    root = make_kinetics(tmp_path / "k", rows, layout="class")
    os.remove(next((root / "train").rglob("*.mp4")))
    ds = _open("kinetics400", root)
    full = ds.plan("full", "val")
    assert full.notes["missing"]["train"]["missing"] == 1
    assert [i.kind for i in ds.issues] == ["missing"]
    # without annotations, the class folders still give classes and splits
    for f in (root / "annotations").iterdir():
        f.unlink()
    ds = _open("kinetics400", root)
    assert len(ds.plan("full", "val").evals[0]) == sum(1 for r in rows if r[2] == "val")
    flat = make_kinetics(tmp_path / "flat", rows, layout="split")
    for f in (flat / "annotations").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="no annotation CSV"):
        _open("kinetics400", flat).plan("full", "val")


def test_kinetics600_zeroshot_splits_from_all_folders(tmp_path):
    spec = protocols.zeroshot("kinetics600", "split1", Issues())
    picked = [e for e in spec.evals[0].entries if e.name.startswith("test/")][:3]
    picked += [e for e in spec.evals[0].entries if e.name.startswith("val/")][:3] + spec.evals[0].entries[:3]
    rows = [(folder_of("kinetics600", e.cls), e.name.split("/")[-1], e.name.split("/")[0]) for e in picked]
    ds = _open("kinetics600", make_kinetics(tmp_path / "k600", rows))
    plan = ds.plan("zeroshot", "split1")
    (test,) = plan.evals
    assert plan.train is None and len(test.labels) == 160 and len(test) == 9
    assert sorted(test.manifest["class_name"].to_pylist()) == sorted(e.cls for e in picked)
    assert plan.notes["missing"]["test"]["listed"] == 14084


def test_ssv2_tree(tmp_path):
    spec = protocols.base2novel("ssv2", "s1", Issues())
    chosen = spec.train.entries[::300] + spec.evals[1].entries[::2000]

    def template(cls):
        return cls.replace("something", "[something]").replace("Something", "[Something]")

    videos = {e.name.split(".")[0]: (template(e.cls), "train" if i % 2 else "validation") for i, e in enumerate(chosen)}
    ds = _open("ssv2", make_ssv2(tmp_path / "ssv2", videos))
    b2n = ds.plan("base2novel", "s1")
    assert _files(b2n.train) == sorted(e.name for e in spec.train.entries[::300])
    assert len(b2n.evals[1]) == len(spec.evals[1].entries[::2000]) and (len(b2n.train.labels), len(b2n.evals[1].labels)) == (87, 87)
    full = ds.plan("full", "val")
    assert len(full.train) == sum(1 for _, s in videos.values() if s == "train") and len(full.evals[0].labels) == 174
    assert sorted(full.evals[0].manifest["class_name"].to_pylist()) == sorted(e.cls for i, e in enumerate(chosen) if i % 2 == 0)
    assert not [i for i in ds.issues if i.kind != "missing"]


def test_missing_root_and_unknown_folder(tmp_path):
    with pytest.raises(DataError, match="root not found"):
        DATASETS.get("ucf101")(str(tmp_path / "nope"))
    root = make_ucf(tmp_path / "u", ["v_Archery_g01_c01.avi"])
    (root / "UCF-101" / "NotAClass").mkdir()
    (root / "UCF-101" / "NotAClass" / "v_X_g01_c01.avi").write_bytes(b"")
    ds = _open("ucf101", root)
    assert [(i.kind, os.path.basename(i.path)) for i in ds.issues] == [("unknown_class", "NotAClass")]
    assert ucf_class("v_HandStandPushups_g01_c01.avi") == "HandstandPushups"
