"""Each video dataset adapter on a tiny tree in its real layout, named after the shipped lists."""

import os
from urllib.parse import unquote

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


# ---------------------------------------------------------------- the same trees behind file:// URIs


def _local(value: str) -> str:
    """A message about a URI root as about the local one (the root is named as given, encoded)."""
    return unquote(value.replace("file://", ""))


def _same_through_uri(name, root, plans):
    """The adapter on `root` and on its file:// URI: the same plans (paths differing only by the
    scheme), notes and issues."""
    local, uri = _open(name, root), _open(name, root.as_uri())
    assert uri.root == root.as_uri()
    for protocol, split in plans:
        a, b = local.plan(protocol, split), uri.plan(protocol, split)
        parts_a = ([a.train] if a.train else []) + a.evals
        parts_b = ([b.train] if b.train else []) + b.evals
        assert [p.name for p in parts_a] == [p.name for p in parts_b] and a.kind == b.kind
        for pa, pb in zip(parts_a, parts_b):
            paths = pb.manifest["path"].to_pylist()
            assert paths and all(p.startswith("file:///") for p in paths), (protocol, split, pb.name)
            assert [p.replace("file://", "") for p in paths] == pa.manifest["path"].to_pylist()
            assert pb.manifest.drop(["path"]).equals(pa.manifest.drop(["path"])) and pb.labels == pa.labels
        assert _local(repr(b.notes)) == repr(a.notes)
    assert [(i.kind, _local(i.path), _local(i.reason)) for i in uri.issues] == [(i.kind, i.path, i.reason) for i in local.issues]
    return local, uri


def test_ucf101_through_a_uri(tmp_path):
    names = sorted(set(list_names(B2N_UCF + "fs_base_s1_train.txt", every=200) + list_names(B2N_UCF + "novel_val.txt", every=500)
                       + list_names("ucf_splits/val1.txt", every=1000)))
    # the lists beside the video folder, as `--root UCF-101` finds them
    make_ucf(tmp_path / "ucf", names, train=names[:4], test=names[4:])
    (tmp_path / "ucf" / "UCF-101" / "NotAClass").mkdir()
    (tmp_path / "ucf" / "UCF-101" / "NotAClass" / "v_X_g01_c01.avi").write_bytes(b"")
    (tmp_path / "ucf" / "UCF-101" / ucf_class(names[0]) / ".hidden.avi").write_bytes(b"")
    (tmp_path / "ucf" / "UCF-101" / ".trash").mkdir()
    (tmp_path / "ucf" / "UCF-101" / ".trash" / names[0]).write_bytes(b"")  # would be a duplicate
    plans = [("full", "split1"), ("base2novel", "s1"), ("zeroshot", "split1"), ("zeroshot", "full"), ("cezsar", "hard")]
    _same_through_uri("ucf101", tmp_path / "ucf", plans)
    local, uri = _same_through_uri("ucf101", tmp_path / "ucf" / "UCF-101", plans[:1])
    assert uri.lists_dir == (tmp_path / "ucf" / "ucfTrainTestlist").as_uri()
    (tmp_path / "ucf" / "ucfTrainTestlist" / "trainlist02.txt").unlink()
    with pytest.raises(DataError, match="trainlist02"):
        uri.plan("full", "split2")


def test_hmdb51_through_a_uri(tmp_path):
    spec = protocols.base2novel("hmdb51", "s1", Issues())
    names = [e.name for part in (spec.train, *spec.evals) for e in part.entries[::150]]
    names += [n for n in list_names("hmdb_splits/val1.txt") if set(n) & set("#[!&+ ")][::10]  # URI-unsafe names
    tags = {n: i % 3 for i, n in enumerate(names)}
    root = make_hmdb(tmp_path / "my data" / "hmdb", names, tags)
    (root / "testTrainMulti_7030_splits" / "not_a_class_test_split1.txt").write_text("x.avi 1\n")
    _same_through_uri("hmdb51", root, [("full", "split1"), ("base2novel", "s1"), ("zeroshot", "full")])


@pytest.mark.parametrize("layout", ["split", "class"])
def test_kinetics400_through_a_uri(tmp_path, layout):
    _, rows = _k400_rows()
    root = make_kinetics(tmp_path / "k400", rows, layout=layout, split_words={"val": "validate"} if layout == "class" else None)
    _same_through_uri("kinetics400", root, [("base2novel", "s1"), ("full", "val"), ("zeroshot", "full")])
    if layout == "class":  # without annotations: classes and splits from the folders
        for f in (root / "annotations").iterdir():
            f.unlink()
        _same_through_uri("kinetics400", root, [("full", "val")])


def test_kinetics600_through_a_uri(tmp_path):
    spec = protocols.zeroshot("kinetics600", "split1", Issues())
    picked = [e for e in spec.evals[0].entries if e.name.startswith("val/")][:3] + spec.evals[0].entries[:3]
    rows = [(folder_of("kinetics600", e.cls), e.name.split("/")[-1], e.name.split("/")[0]) for e in picked]
    _same_through_uri("kinetics600", make_kinetics(tmp_path / "k600", rows), [("zeroshot", "split1")])


def test_ssv2_through_a_uri(tmp_path):
    spec = protocols.base2novel("ssv2", "s1", Issues())
    chosen = [e for part in (spec.train, *spec.evals) for e in part.entries[::500]]
    videos = {e.name.split(".")[0]: (e.cls.replace("something", "[something]").replace("Something", "[Something]"),
                                     "train" if i % 2 else "validation") for i, e in enumerate(chosen)}
    _same_through_uri("ssv2", make_ssv2(tmp_path / "ssv2", videos), [("base2novel", "s1"), ("full", "val")])


@pytest.mark.parametrize("name", ["ucf101", "hmdb51", "kinetics400", "kinetics600", "ssv2"])
def test_a_missing_uri_root_is_the_same_error_as_a_local_one(tmp_path, name):
    errors = []
    for root in (str(tmp_path / "nope"), (tmp_path / "nope").as_uri()):
        with pytest.raises(DataError, match="dataset root not found") as e:
            DATASETS.get(name)(root)
        errors.append(str(e.value))
    assert len(errors[1].splitlines()) == 1 and errors[1] == errors[0].replace(str(tmp_path / "nope"), (tmp_path / "nope").as_uri())
