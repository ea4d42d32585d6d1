"""Dataset roots and caches given as URIs, through pyarrow's `file://` filesystem."""

import shutil

import numpy as np
import pytest

from zsar.data import remote
from zsar.data.sources.folder import FolderDataset
from zsar.data.video import ClipSpec, load_clip
from zsar.errors import DataError
from conftest import REAL_CLIPS


@pytest.fixture
def tree(tmp_path):
    for cls, clips in (("wrestling", REAL_CLIPS[1:2]), ("sports", REAL_CLIPS[2:4])):
        (tmp_path / cls).mkdir()
        for p in clips:
            shutil.copy(p, tmp_path / cls / p.name)
    (tmp_path / "sports" / "notes.txt").write_text("not a video")
    return tmp_path


def test_uris_and_local_paths_are_told_apart():
    assert remote.is_uri("s3://bucket/x") and remote.is_uri("file:///tmp/x") and remote.is_uri("gs://b/x")
    assert not remote.is_uri("/data/ucf101") and not remote.is_uri("C:/data") and not remote.is_uri("data/x")
    assert remote.join("s3://bucket/a/", "b", "c.mp4") == "s3://bucket/a/b/c.mp4"


def test_a_folder_dataset_is_listed_through_a_file_uri(tree):
    plan = FolderDataset(f"file://{tree}").plan("full", "all")
    m = plan.evals[0].manifest
    assert plan.evals[0].labels.names == ("sports", "wrestling")
    assert sorted(m["path"].to_pylist()) == sorted(f"file://{tree}/{c}/{p.name}" for c, p in
                                                  [("wrestling", REAL_CLIPS[1]), ("sports", REAL_CLIPS[2]), ("sports", REAL_CLIPS[3])])
    assert m["class_name"].to_pylist().count("sports") == 2


def test_a_missing_uri_root_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        FolderDataset(f"file://{tmp_path}/nowhere")


def test_a_clip_decodes_from_a_file_object_opened_on_the_filesystem(tree):
    uri = f"file://{tree}/wrestling/{REAL_CLIPS[1].name}"
    spec = ClipSpec(num_frames=8, sampler="dense", stride=4, views=2, size=32)
    opened = []

    def open_fn(u):
        opened.append(u)
        return remote.open_input(u)

    clip, short = load_clip(uri, spec, open_fn=open_fn)
    assert opened and all(u == uri for u in opened)
    assert np.array_equal(clip, load_clip(str(REAL_CLIPS[1]), spec)[0]) and not short


def test_data_check_probes_files_behind_uris(tree):
    from zsar.data.probe import probe_file

    (tree / "sports" / "text.mp4").write_text("not a video\n" * 50)
    assert probe_file(f"file://{tree}/wrestling/{REAL_CLIPS[1].name}")["status"] == "ok"
    assert probe_file(f"file://{tree}/sports/text.mp4")["status"] == "bad"


def test_small_files_and_folders_behind_uris_read_like_local_ones(tmp_path):
    folder = tmp_path / "lists #1 [é]"
    folder.mkdir()
    (folder / "a 100%.txt").write_bytes("Ä 1\r\nb 2\n".encode())
    # a local path, an encoded URI, and the URI of the path as the filesystem names it
    for path in (str(folder), folder.as_uri(), f"file://{folder}"):
        assert remote.is_dir(path) and not remote.is_file(path)
        assert remote.read_text(remote.join(path, "a 100%.txt")) == "Ä 1\r\nb 2\n"
        assert remote.is_file(remote.join(path, "a 100%.txt")) and not remote.is_dir(remote.join(path, "nope"))


def test_a_uri_tree_is_listed_like_the_local_folder(tmp_path):
    from zsar.data.tree import Tree

    for rel in ("a/b/c/x.csv", "a/y.csv", "a/.h.csv", ".hidden/z.csv", "a/b/c/d/deep.csv", "a/b/lists/l.txt", "lists/m.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "empty").mkdir()
    local, uri = Tree.scan(str(tmp_path)), Tree.scan(tmp_path.as_uri())
    assert uri.folders == local.folders and () in local.folders and ("empty",) in local.folders
    assert not any(p.startswith(".") for f in local.folders for p in f + tuple(local.folders[f]))
    assert local.find_files("*.csv") == [str(tmp_path / "a" / "b" / "c" / "x.csv"), str(tmp_path / "a" / "y.csv")]
    assert uri.find_files("*.csv") == [(tmp_path / "a" / "b" / "c" / "x.csv").as_uri(), (tmp_path / "a" / "y.csv").as_uri()]
    assert (local.find_dir("lists"), uri.find_dir("lists")) == (str(tmp_path / "lists"), (tmp_path / "lists").as_uri())
    inner = Tree.scan((tmp_path / "a" / "b" / "c").as_uri())
    assert inner.find_dir("lists") == (tmp_path / "a" / "b" / "lists").as_uri() and inner.find_dir("nope") is None
    assert uri.relative((tmp_path / "a" / "y.csv").as_uri()) == "a/y.csv" == local.relative(str(tmp_path / "a" / "y.csv"))


def test_a_listed_dataset_decodes_clips_from_its_uri_manifest_paths(tmp_path):
    """Manifest paths are the files' own names behind the scheme, `#`, `[]` and spaces included."""
    from video_trees import make_hmdb

    from zsar.registry import DATASETS

    name = "Goalkeeper_Training_Day_#_2_catch_f_cm_np1_ba_bad_3.avi"
    other = "Brushing_Her_Hair__[_NEW_AUDIO_]_UPDATED!!!!_brush_hair_h_cm_np1_fr_goo_0.avi"
    root = make_hmdb(tmp_path / "my data" / "hmdb", [name, other], {name: 2, other: 1}, clip=REAL_CLIPS[0])
    plan = DATASETS.get("hmdb51")(root.as_uri()).plan("full", "split1")
    (path,) = plan.evals[0].manifest["path"].to_pylist()
    assert path == f"file://{root}/hmdb51_org/catch/{name}"
    assert plan.train.manifest["path"].to_pylist() == [f"file://{root}/hmdb51_org/brush_hair/{other}"]
    spec = ClipSpec(num_frames=8, sampler="dense", stride=4, views=1, size=32)
    clip, _ = load_clip(path, spec, open_fn=remote.opener(path))
    assert np.array_equal(clip, load_clip(str(REAL_CLIPS[0]), spec)[0])
