"""The published protocols from the shipped lists: class lists, counts, leakage, cross-dataset overlap."""

import re
import shutil
from collections import Counter

import pytest

from zsar.data import protocols
from zsar.data.classnames import class_key, overlap, vocab
from zsar.data.files import FileIndex, Issues
from zsar.errors import DataError
from zsar.registry import DATASETS
from video_trees import SPLITS, hmdb_class, label_csv, list_names, make_hmdb, make_ucf, official, ucf_class


@pytest.mark.parametrize("dataset, base, novel", [("hmdb51", 26, 25), ("ucf101", 51, 50), ("ssv2", 87, 87), ("kinetics400", 200, 200)])
def test_base2novel_class_lists_and_counts(dataset, base, novel):
    train_lists = []
    for split in protocols.BASE2NOVEL_SPLITS:
        issues = Issues()
        spec = protocols.base2novel(dataset, split, issues)
        assert not list(issues)
        base_part, novel_part = spec.evals
        assert (len(spec.train.classes), len(novel_part.classes)) == (base, novel)
        assert spec.train.classes == base_part.classes
        assert not {class_key(c) for c in base_part.classes} & {class_key(c) for c in novel_part.classes}
        assert (base_part.prefix, novel_part.prefix, novel_part.unseen) == ("base_", "novel_", True)
        # 16 shots of every base class, and nothing else
        assert Counter(e.cls for e in spec.train.entries) == {c: 16 for c in spec.train.classes}
        assert {e.cls for e in base_part.entries} == set(base_part.classes)
        assert {e.cls for e in novel_part.entries} == set(novel_part.classes)
        train_lists.append({e.name for e in spec.train.entries})
    assert train_lists[0] != train_lists[1] != train_lists[2]  # three different draws


def test_hmdb_list_ids_follow_folder_order():
    """ViFi-CLIP's HMDB CSVs swap kick/kick ball and sword/sword exercise relative to its lists;
    read in folder order, every list entry gets the class its file name carries."""
    specs = [protocols.zeroshot("hmdb51", s, Issues()) for s in protocols.TEST_SPLITS]
    entries = [e for spec in specs for e in spec.evals[0].entries]
    for split in protocols.BASE2NOVEL_SPLITS:
        spec = protocols.base2novel("hmdb51", split, Issues())
        entries += spec.train.entries + spec.evals[0].entries + spec.evals[1].entries
    assert len(entries) == 3 * 1530 + 3 * 416 + 3 * (780 + 750)
    wrong = [e for e in entries if e.cls.replace(" ", "_") != hmdb_class(e.name)]
    assert not wrong, wrong[:3]
    # read as written, the CSV would mislabel them
    as_written = label_csv("hmdb_51_labels.csv")
    swapped = [line.split() for line in (SPLITS / "hmdb_splits" / "val1.txt").read_text().splitlines()]
    assert sum(as_written[int(i)].replace(" ", "_") != hmdb_class(n) for n, i in swapped) == 4 * 30


def test_ucf_list_labels_agree_with_file_names():
    names = {class_key(n): n for n in official("ucf101")}
    for split in protocols.TEST_SPLITS:
        spec = protocols.zeroshot("ucf101", split, Issues())
        assert len(spec.evals[0].classes) == 101
        for e in spec.evals[0].entries:
            assert class_key(e.cls) == class_key(names[class_key(e.name.split("_")[1])])
    sizes = [len(protocols.zeroshot("ucf101", s, Issues()).evals[0].entries) for s in protocols.TEST_SPLITS]
    assert sizes == [3783, 3734, 3696]
    assert [len(protocols.zeroshot("hmdb51", s, Issues()).evals[0].entries) for s in protocols.TEST_SPLITS] == [1530] * 3


def test_k600_zeroshot_splits_have_160_classes_none_in_k400():
    k400 = set(vocab("kinetics400").keys)
    seen = []
    for split in protocols.TEST_SPLITS:
        spec = protocols.zeroshot("kinetics600", split, Issues())
        (test,) = spec.evals
        assert spec.train is None and test.unseen
        assert len(test.classes) == len(set(test.classes)) == 160
        assert not {class_key(c) for c in test.classes} & k400
        assert all(c in vocab("kinetics600") for c in test.classes)
        assert {e.cls for e in test.entries} == set(test.classes)
        assert {e.name.split("/")[0] for e in test.entries} == {"train", "val", "test"}  # from all K600 folders
        seen.append(set(test.classes))
    assert seen[0] != seen[1] != seen[2]


def test_cezsar_splits_after_filtering():
    counts = {name: protocols.cezsar_classes(name)[:2] for name in protocols.CEZSAR_SPLITS}
    sizes = {name: (len(tr), len(te)) for name, (tr, te) in counts.items()}
    assert sizes["truezsl"] == (67, 34) and sizes["truezsl2"] == (70, 31)
    for name, (train, test) in counts.items():
        assert not {class_key(c) for c in train} & {class_key(c) for c in test}, name
        assert len(set(train)) == len(train) and len(set(test)) == len(test)
        assert set(train) | set(test) <= set(vocab("ucf101").names)
    # hard cases: six classes are listed on both sides; they stay test classes and are logged
    train, test, notes = protocols.cezsar_classes("hard")
    removed = notes["removed_from_training"]["classes"]
    assert sizes["hard"] == (92 - len(removed), 15) and len(removed) == 6
    assert set(removed) <= set(test) and "apply eye makeup" in removed
    # semantic gap: six training classes are listed twice; they count once and are logged
    train, test, notes = protocols.cezsar_classes("semantic_gap")
    assert sizes["semantic_gap"] == (103 - 6, 4) and len(notes["listed_twice_on_one_side"]) == 6
    # random 50/50 runs: 50 test classes each, all ten runs different, the same every time
    draws = [tuple(counts[f"random50_r{i}"][1]) for i in range(1, 11)]
    assert all(len(d) == 50 for d in draws) and len(set(draws)) == 10
    assert all(sizes[f"random50_r{i}"] == (51, 50) for i in range(1, 11))
    assert protocols.cezsar_classes("random50_r4")[1] == list(draws[3])


def test_cezsar_videos_are_the_classes_videos():
    spec = protocols.cezsar("truezsl", Issues())
    assert {e.cls for e in spec.train.entries} == set(spec.train.classes)
    assert {e.cls for e in spec.evals[0].entries} == set(spec.evals[0].classes)
    assert len(spec.train.entries) + len(spec.evals[0].entries) == 13320


def test_cross_dataset_overlap_is_computed_from_the_shipped_lists():
    def keys(dataset):  # an independent reading of the raw files
        return {re.sub(r"[^a-z0-9]", "", line.lower()) for line in official(dataset)}

    k400, ucf, hmdb = keys("kinetics400"), keys("ucf101"), keys("hmdb51")
    ucf_overlap = overlap(vocab("kinetics400").names, vocab("ucf101").names)
    assert {class_key(c) for c in ucf_overlap} == set(k400) & set(ucf)
    assert len(ucf_overlap) == len(set(k400) & set(ucf)) > 15
    assert {"archery", "playing guitar", "tai chi"} <= set(ucf_overlap)
    hmdb_overlap = overlap(vocab("kinetics400").names, vocab("hmdb51").names)
    assert "situp" in hmdb_overlap and {class_key(c) for c in hmdb_overlap} == set(k400) & set(hmdb)


def _doctored(tmp_path, monkeypatch):
    copy = tmp_path / "video"
    shutil.copytree(protocols.VIDEO / "labels", copy / "labels")
    shutil.copytree(SPLITS / "base2novel_splits" / "ucf_splits", copy / "datasets_splits" / "base2novel_splits" / "ucf_splits")
    monkeypatch.setattr(protocols, "VIDEO", copy)
    return copy


def test_leakage_assertion_fires_on_a_doctored_label_list(tmp_path, monkeypatch):
    copy = _doctored(tmp_path, monkeypatch)
    protocols.base2novel("ucf101", "s1", Issues())  # the copy as shipped is fine
    novel = copy / "labels" / "ucf_101_novel_labels.csv"
    novel.write_text(novel.read_text() + "50,Typing\n")  # a base class made novel
    with pytest.raises(DataError, match="leakage.*typing"):
        protocols.base2novel("ucf101", "s1", Issues())


def test_leakage_assertion_fires_on_a_doctored_training_list(tmp_path, monkeypatch):
    copy = _doctored(tmp_path, monkeypatch)
    train = copy / "datasets_splits" / "base2novel_splits" / "ucf_splits" / "fs_base_s1_train.txt"
    novel_video = list_names("base2novel_splits/ucf_splits/novel_val.txt", limit=1)[0]  # v_ApplyLipstick_...
    base_video = list_names("base2novel_splits/ucf_splits/fs_base_s1_train.txt", limit=1)[0]
    root = make_ucf(tmp_path / "ucf", [novel_video, base_video])
    ds = DATASETS.get("ucf101")(str(root))
    ds.quiet = True
    plan = ds.plan("base2novel", "s1")
    assert plan.train.manifest["path"].to_pylist()[0].endswith(base_video)
    # the list now claims the novel video is a base-class training video (label id 0, Typing)
    train.write_text(f"{novel_video} 0\n" + train.read_text())
    with pytest.raises(DataError, match=f"leakage.*{novel_video}.*apply lipstick"):
        ds.plan("base2novel", "s1")


def test_file_index_resolves_by_basename_only(tmp_path):
    index = FileIndex([str(tmp_path / "a" / "train" / "x_000001_000011.mp4"), str(tmp_path / "b" / "v_A_g01_c01.avi"),
                       str(tmp_path / "c" / "74225.mp4")])
    assert index.find("val/x_000001_000011.mp4").endswith("a/train/x_000001_000011.mp4")  # path in the list ignored
    assert index.find("x_000001_000011").endswith(".mp4")  # a name without extension (CEZSAR ids)
    assert index.find("74225.webm").endswith("74225.mp4")  # re-encoded container
    assert index.find("train\\v_A_g01_c01.avi") is not None
    assert index.find("v_B_g01_c01.avi") is None


def test_hmdb_tree_labels_by_folder(tmp_path):
    spec = protocols.base2novel("hmdb51", "s1", Issues())
    kick = [e.name for e in spec.evals[1].entries if e.cls in ("kick", "kick ball")]
    sword = [e.name for e in spec.train.entries if e.cls in ("sword", "sword exercise")]
    root = make_hmdb(tmp_path / "hmdb", kick + sword)
    ds = DATASETS.get("hmdb51")(str(root))
    ds.quiet = True
    plan = ds.plan("base2novel", "s1")
    for part in (plan.train, plan.evals[1]):
        for path, cls in zip(part.manifest["path"].to_pylist(), part.manifest["class_name"].to_pylist()):
            assert cls.replace(" ", "_") == hmdb_class(path.rsplit("/", 1)[-1])
    assert len(plan.evals[1]) == len(kick) and len(plan.train) == len(sword) == 32
    assert not [i for i in ds.issues if i.kind == "mismatch"]


def test_every_published_ucf_list_entry_resolves_on_a_complete_tree(tmp_path):
    """All 13,320 UCF-101 videos (empty files, named as CEZSAR's video list names them): every
    published list resolves completely, by basename, with no problem of any kind."""
    import json

    from zsar.data.check import check_dataset
    from video_trees import VIDEO_LISTS

    ids = [v for vs in json.loads((VIDEO_LISTS / "cezsar" / "ucf101_dataset.json").read_text()).values() for v in vs]
    names = [i + ".avi" for i in ids]
    tests = {n: list_names(f"ucf_splits/val{n}.txt") for n in (1, 2, 3)}
    first = set(tests[1])
    root = make_ucf(tmp_path / "ucf", names, train=[n for n in names if n not in first], test=tests[1])
    lists = root / "ucfTrainTestlist"
    for n in (2, 3):
        test = set(tests[n])
        (lists / f"testlist0{n}.txt").write_text("".join(f"{ucf_class(v)}/{v}\n" for v in tests[n]))
        (lists / f"trainlist0{n}.txt").write_text("".join(f"{ucf_class(v)}/{v} 1\n" for v in names if v not in test))
    report = check_dataset("ucf101", str(root), decode=False)
    assert not list(report.issues) and report.usable and report.videos == 13320
    parts = {(p, s): sizes for p, s, sizes in report.plans}
    assert len(parts) == 3 + 4 + 14 + 3
    for s in protocols.BASE2NOVEL_SPLITS:
        assert parts["base2novel", s] == {"train": (816, 51), "base": (2088, 51), "novel": (1695, 50)}
    assert [parts["zeroshot", s]["test"] for s in protocols.TEST_SPLITS] == [(3783, 101), (3734, 101), (3696, 101)]
    assert parts["zeroshot", "full"]["test"] == (13320, 101)
    for s in protocols.CEZSAR_SPLITS:
        train, test = parts["cezsar", s]["train"], parts["cezsar", s]["test"]
        assert train[0] + test[0] == 13320 and (train[1], test[1]) == tuple(map(len, protocols.cezsar_classes(s)[:2]))
    for n, s in enumerate(protocols.TEST_SPLITS, 1):
        assert parts["full", s] == {"train": (13320 - len(tests[n]), 101), "test": (len(tests[n]), 101)}
