"""The per-file read choice (`decode="auto"`, zsar.data.frames.choose_read): short real clips are
read from the start and stopped after the last wanted frame; long videos whose wanted span lies far
from the start are sought; both ways give the frames reading every frame would."""

import dataclasses

import av
import numpy as np
import pytest

from zsar.data.frames import PACKET_COST, SEEK_COST, choose_read, frame_names, keyframe_positions, read_costs
from zsar.data.remux import repeat_remux
from zsar.data.video import ClipSpec, count_frames, read_clip
from conftest import REAL_CLIPS, real_clip_params

DENSE = ClipSpec(num_frames=8, sampler="dense", stride=16, size=32)  # FROSTER / SC-CLIP 8x16, centre view
SEGMENT = ClipSpec(num_frames=8, sampler="segment", size=32)


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    """One MP4 and one AVI real clip, remuxed end to end to 30 s (frame i is the source's i mod n)."""
    out = tmp_path_factory.mktemp("long_choice")
    picks = [next(p for p in REAL_CLIPS if p.suffix == s) for s in (".mp4", ".avi")]
    return [repeat_remux(p, out / f"long_{p.name}", 30) for p in picks]


def _costs(path, indices):
    with av.open(str(path)) as c:
        total = count_frames(c)
        return total, read_costs(c, indices, total, frame_names(c)), choose_read(c, indices, total, frame_names(c))


@pytest.mark.parametrize("spec", [DENSE, SEGMENT], ids=["dense", "segment"])
@pytest.mark.parametrize("path", real_clip_params())
def test_short_clips_are_read_from_the_start(path, spec):
    clip = read_clip(str(path), spec)
    assert clip.read == "sequential"
    sought = read_clip(str(path), dataclasses.replace(spec, decode="seek"))
    assert sought.read in ("seek", "sequential after seek")
    assert np.array_equal(clip.video, sought.video)


def test_a_long_video_is_sought_and_gives_the_frames_sequential_reading_gives(long_videos):
    for path in long_videos:
        clip = read_clip(str(path), DENSE)  # the span sits in the middle of a 30 s video
        assert clip.read == "seek", path.name
        sequential = read_clip(str(path), dataclasses.replace(DENSE, decode="sequential"))
        assert sequential.read == "sequential"
        assert np.array_equal(clip.video, sequential.video), path.name


def test_the_span_decides_near_the_start_sequential_at_the_end_seek(long_videos):
    for path in long_videos:
        with av.open(str(path)) as c:
            total = count_frames(c)
        early = np.arange(8) * 4 + 10  # within the first two seconds
        late = total - 1 - np.arange(8)[::-1] * 4
        assert _costs(path, early)[2] == "sequential", path.name
        _, costs, choice = _costs(path, late)
        assert choice == "seek" and costs["seek"] < costs["sequential"] / 2, (path.name, costs)
        assert costs["sequential"] == total


def test_costs_count_frames_to_decode_and_the_avi_keyframe_pass(long_videos):
    mp4, avi = long_videos
    for path in long_videos:
        with av.open(str(path)) as c:
            total = count_frames(c)
            keys = keyframe_positions(c, total)
        lo = total // 2
        before = max(k for k in keys if k <= lo)
        _, costs, _ = _costs(path, np.array([lo, lo + 1]))
        pass_cost = PACKET_COST * total if path.suffix == ".avi" else 0.0
        # the first frame, one seek, the frames from the keyframe before the span to its end
        assert costs["seek"] == pytest.approx(1 + SEEK_COST + (lo + 1 - before + 1) + pass_cost), path.name
        assert costs["sequential"] == lo + 2


def test_keyframes_come_from_the_index_as_decoding_finds_them(long_videos):
    for path in long_videos:
        with av.open(str(path)) as c:
            total = count_frames(c)
            keys = keyframe_positions(c, total)
        with av.open(str(path)) as c:
            found = [n for n, f in enumerate(c.decode(video=0)) if f.key_frame]
        assert keys == found, path.name


def test_three_views_of_a_long_video_are_sought_and_equal_decoding_everything(long_videos):
    spec = dataclasses.replace(DENSE, views=3)  # start, middle and end of the video
    for path in long_videos:
        clip = read_clip(str(path), spec)
        assert clip.read == "seek", path.name
        everything = read_clip(str(path), dataclasses.replace(spec, decode="all"))
        assert everything.read == "all"
        assert np.array_equal(clip.video, everything.video), path.name
