"""The `activitynet_captions` adapter: one training row per caption segment, labelled by its own
sentence; clips sampled inside the segment; malformed caption files are one-line user errors;
videos without a file are left out, recorded and counted."""

import json

import numpy as np
import pytest

from zsar.data.check import check_dataset
from zsar.data.pipeline import decode_batch
from zsar.data.sources.activitynet import ActivityNetCaptions
from zsar.data.synth import encode_video
from zsar.data.video import ClipSpec, window_frames
from zsar.errors import DataError
from video_trees import make_activitynet

VIDEOS = {"v_a1": ["moving left slowly", "growing quickly", "moving up slowly"],
          "v_b2": ["shrinking slowly", "moving right quickly"],
          "v_c3": ["moving down quickly", "rotating clockwise slowly"]}
RAMP_FPS, RAMP_FRAMES, LEVEL = 10, 30, 8  # frame i is a flat grey of LEVEL * i + 4


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_activitynet(tmp_path_factory.mktemp("anet") / "anet", VIDEOS, absent=("v_c3",))


@pytest.fixture(scope="module")
def ramp(tmp_path_factory):
    """A 3-second video whose frame i is a flat grey level that names it."""
    frames = np.stack([np.full((32, 32, 3), LEVEL * i + 4, np.uint8) for i in range(RAMP_FRAMES)])
    path = tmp_path_factory.mktemp("ramp") / "v_ramp.mp4"
    encode_video(frames, path, RAMP_FPS)
    return path


def frame_ids(video: np.ndarray) -> set[int]:
    """The frame index each decoded frame of [V, T, H, W, 3] shows (by its grey level)."""
    return {int(round((float(f.mean()) - 4) / LEVEL)) for view in video for f in view}


def decode(path, start, end, spec: ClipSpec, seed: int):
    batch = {"path": np.array([str(path)], dtype=object), "label": np.array([0]), "index": np.array([seed])}
    if start is not None:
        batch.update(start_s=np.array([start]), end_s=np.array([end]))
    out = decode_batch(batch, {**spec.__dict__}, [seed, 0])
    assert out["ok"][0], out["error"][0]
    return out["video"][0]


@pytest.mark.parametrize("sampler", ["segment", "dense"])
def test_a_clip_sampled_for_a_segment_lies_inside_it(ramp, sampler):
    spec = ClipSpec(num_frames=4, sampler=sampler, stride=2, size=32, train=True, flip=False, crop_scale=(1.0, 1.0))
    start, end = 1.05, 1.95  # frames 11..19 (timestamps 1.1 .. 1.9)
    seen = set()
    for seed in range(12):
        seen |= frame_ids(decode(ramp, start, end, spec, seed))
    assert seen <= set(range(11, 20)) and len(seen) >= 4, seen
    whole = set().union(*(frame_ids(decode(ramp, None, None, spec, seed)) for seed in range(12)))
    assert not whole <= set(range(11, 20))  # without the window the same draws range over the video
    fixed = ClipSpec(num_frames=3, sampler="segment", size=32, views=2)  # evaluation views too
    assert frame_ids(decode(ramp, 2.0, 2.9, fixed, 0)) <= set(range(20, 30))


def test_window_frames_by_hand():
    assert window_frames(None, 10.0, 30) == (0, 30)
    assert window_frames((1.05, 1.95), 10.0, 30) == (11, 9)
    assert window_frames((1.0, 2.0), 10.0, 30) == (10, 11)  # both ends' frames are inside
    assert window_frames((2.5, 99.0), 10.0, 30) == (25, 5)  # ActivityNet ends past the video: clipped
    assert window_frames((1.01, 1.02), 10.0, 30) == (10, 1)  # no frame inside: the one nearest its start
    assert window_frames((50.0, 60.0), 10.0, 30) == (29, 1)


def test_each_segment_is_a_row_labelled_by_its_own_sentence(tree):
    plan = ActivityNetCaptions(str(tree)).plan("cezsar_captions", "train")
    captions = json.loads((tree / "captions" / "train.json").read_text())
    rows = plan.train.manifest.to_pylist()
    assert len(rows) == 5 and plan.evals == [] and plan.kind == "targets"
    labels = plan.train.labels
    assert labels.verbatim and len(labels) == 5
    for row in rows:
        vid = row["path"].rsplit("/", 1)[-1][: -len(".mp4")]
        k = captions[vid]["sentences"].index(labels.names[row["label"]])  # the row's label is its sentence
        assert [row["start_s"], row["end_s"]] == captions[vid]["timestamps"][k]
        assert row["class_name"] == captions[vid]["sentences"][k]
    assert sorted((r["path"].rsplit("/", 1)[-1], r["start_s"]) for r in rows) == sorted(
        (f"{v}.mp4", s) for v in ("v_a1", "v_b2") for s, _ in captions[v]["timestamps"])


def test_missing_videos_are_left_out_recorded_and_counted(tree, capsys):
    ds = ActivityNetCaptions(str(tree))
    plan = ds.plan("cezsar_captions", "train")
    assert plan.notes["missing"] == {"train": {"missing": 1, "listed": 3, "segments_left_out": 2}}
    assert [(i.kind, i.path) for i in ds.issues] == [("missing", "v_c3")]
    assert "1 of 3 videos" in capsys.readouterr().err
    report = check_dataset("activitynet_captions", str(tree), "cezsar_captions", "train", decode=False)
    assert report.failures == 1 and report.videos == 2 and report.structural == 0


@pytest.mark.parametrize("text, message", [("{not json", "is not valid JSON"), ("[1, 2]", "must map video ids")])
def test_a_malformed_caption_file_is_a_one_line_data_error(tmp_path, text, message):
    root = tmp_path / "anet"
    encode_video(np.zeros((4, 16, 16, 3), np.uint8), root / "videos" / "v_x.mp4", 4)
    (root / "train.json").write_text(text)
    with pytest.raises(DataError, match=message) as err:
        ActivityNetCaptions(str(root)).plan("cezsar_captions", "train")
    assert "\n" not in str(err.value)


def test_a_root_without_caption_file_or_matching_video_says_what_it_looks_for(tmp_path):
    root = tmp_path / "anet"
    encode_video(np.zeros((4, 16, 16, 3), np.uint8), root / "videos" / "v_x.mp4", 4)
    with pytest.raises(DataError, match="no train.json"):
        ActivityNetCaptions(str(root)).plan("cezsar_captions", "train")
    (root / "train.json").write_text(json.dumps({"v_y": {"duration": 1, "timestamps": [[0, 1]], "sentences": ["s"]}}))
    with pytest.raises(DataError, match="none of the 1 videos"):
        ActivityNetCaptions(str(root)).plan("cezsar_captions", "train")
    with pytest.raises(DataError, match="not found"):
        ActivityNetCaptions(str(tmp_path / "nowhere"))


def test_prepared_training_clips_stay_inside_their_segment_too(ramp):
    from zsar.data.prepared import decode_prepared

    spec = ClipSpec(num_frames=4, sampler="segment", size=32, train=True, flip=False, crop_scale=(1.0, 1.0))
    batch = {"path": np.array([str(ramp)], dtype=object), "label": np.array([0]), "index": np.array([0]),
             "start_s": np.array([0.0]), "end_s": np.array([0.75])}  # frames 0..7
    out = decode_prepared(batch, {**spec.__dict__}, [0, 0], clips=4)
    assert out["ok"][0] and frame_ids(out["video"][0][:, 0]) <= set(range(8))


def test_cache_keys_tell_segments_of_one_video_apart():
    from zsar.data.dataset import make_manifest
    from zsar.data.features import feature_key
    from zsar.data.prepared import prepared_key
    from zsar.models.text import LabelSet

    labels = LabelSet(("a",), verbatim=True)

    def manifest(**window):
        return make_manifest(["v.mp4"], ["a"], labels, **window)

    spec = ClipSpec()
    plain, first, second = manifest(), manifest(start_s=[0.0], end_s=[1.0]), manifest(start_s=[1.0], end_s=[2.0])
    assert len({feature_key("enc", (), m, {}) for m in (plain, first, second)}) == 3
    assert len({prepared_key(m, spec) for m in (plain, first, second)}) == 3
