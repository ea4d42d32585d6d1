import shutil

import pytest

from zsar.errors import DataError, ZsarError
from zsar.registry import DATASETS
from conftest import REAL_CLIPS


def test_demo_base2novel_plan(small_demo_root, monkeypatch):
    from zsar.data.sources import demo

    monkeypatch.setattr(demo, "TRAIN_SHOTS", 4)  # the small rendering has 6 training videos a class
    ds = DATASETS.get("demo")(str(small_demo_root))
    plan = ds.plan("base2novel", "s1")
    base, novel = plan.evals
    assert (base.prefix, novel.prefix) == ("base_", "novel_")
    assert len(base.labels) == len(novel.labels) == 8
    assert not set(base.labels.names) & set(novel.labels.names)
    assert plan.train.labels == base.labels
    assert set(plan.train.manifest["class_name"].to_pylist()) == set(base.labels.names)
    assert set(novel.manifest["class_name"].to_pylist()).isdisjoint(plan.train.manifest["class_name"].to_pylist())
    # train and evaluation videos are different files
    assert not set(plan.train.manifest["path"].to_pylist()) & set(base.manifest["path"].to_pylist())
    # labels index into each part's own label set
    for part in (plan.train, base, novel):
        names = part.manifest["class_name"].to_pylist()
        assert [part.labels.names[i] for i in part.manifest["label"].to_pylist()] == names
    assert len(plan.train) == 8 * 4
    s2 = ds.plan("base2novel", "s2")
    assert plan.train.manifest["path"].to_pylist() != s2.train.manifest["path"].to_pylist()


def test_demo_protocol_and_split_errors(small_demo_root):
    cls = DATASETS.get("demo")
    with pytest.raises(ZsarError, match="no protocol 'zeroshot'.*base2novel"):
        cls.check_protocol("zeroshot", None)
    with pytest.raises(ZsarError, match="no split 's9'.*s1, s2, s3"):
        cls.check_protocol("base2novel", "s9")
    assert cls.check_protocol("base2novel", None) == "s1"
    with pytest.raises(DataError, match="zsar data synth"):
        cls("/nonexistent/demo")


def _tree(root, layout):
    for rel in layout:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REAL_CLIPS[0], dest)


def test_folder_dataset_class_tree(tmp_path):
    _tree(tmp_path, ["jump/a.mp4", "jump/b.avi", "run/c.mp4", "run/notes.txt"])
    plan = DATASETS.get("folder")(str(tmp_path)).plan("full", "all")
    assert plan.train is None
    (test,) = plan.evals
    assert test.labels.names == ("jump", "run") and len(test) == 3


def test_folder_dataset_train_test_and_csv(tmp_path):
    _tree(tmp_path / "t", ["train/jump/a.mp4", "train/run/b.mp4", "test/jump/c.mp4", "test/run/d.mp4"])
    plan = DATASETS.get("folder")(str(tmp_path / "t")).plan("full", "all")
    assert len(plan.train) == 2 and len(plan.evals[0]) == 2
    _tree(tmp_path / "c", ["v/1.mp4", "v/2.mp4"])
    csv = tmp_path / "c" / "list.csv"
    csv.write_text("path,label,split\nv/1.mp4,wave,train\nv/2.mp4,clap,test\n")
    plan = DATASETS.get("folder")(str(csv)).plan("full", "all")
    assert plan.train.manifest["path"].to_pylist() == [str(tmp_path / "c" / "v" / "1.mp4")]
    assert plan.evals[0].labels.names == ("clap", "wave")


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(ZsarError, match="needs --root"):
        DATASETS.get("folder")(None)
    with pytest.raises(DataError, match="not found"):
        DATASETS.get("folder")(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no videos found"):
        DATASETS.get("folder")(str(tmp_path / "empty"))
    bad = tmp_path / "bad.csv"
    bad.write_text("file,cls\nx,y\n")
    with pytest.raises(DataError, match="path,label"):
        DATASETS.get("folder")(str(bad))
