import dataclasses
import functools
import hashlib

import av
import numpy as np
import pytest

from zsar.data.order import seed_key
from zsar.data.pipeline import decode_batch
from zsar.data.remux import repeat_remux
from zsar.data.video import (ClipSpec, SeekError, count_frames, decode_frames, frame_names, load_clip, read_clip_frames,
                             sample_indices, seek_frames)
from zsar.data.views import crop_positions, make_views, rgb_frame
from conftest import REAL_CLIPS, real_clip_params

SAMPLERS = {
    "segment": ClipSpec(num_frames=8, sampler="segment", views=3, crops=3, size=32),
    "dense": ClipSpec(num_frames=8, sampler="dense", stride=4, views=3, crops=3, size=32),
}


def all_frames(path, short: int | None = None) -> np.ndarray:
    """Every frame decoded in order, RGB; with `short`, resized in the conversion as clips are
    (decoded once per path and size: read-only)."""
    return _all_frames(str(path), short)


@functools.cache
def _all_frames(path: str, short: int | None) -> np.ndarray:
    with av.open(path) as c:
        frames = np.stack([rgb_frame(f, short) for f in c.decode(video=0)])
    frames.setflags(write=False)
    return frames


def expected_clip(frames: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """The clip the sampler's indices name, from every frame decoded in order (`all_frames(path,
    spec.resize_to)`)."""
    views = [frames[sample_indices(len(frames), spec, v)] for v in range(spec.views)]
    return make_views(views, spec, None)


def test_segment_sampler_eval_takes_segment_centres():
    spec = ClipSpec(num_frames=8, sampler="segment")
    assert sample_indices(16, spec).tolist() == [1, 3, 5, 7, 9, 11, 13, 15]
    two = ClipSpec(num_frames=4, sampler="segment", views=2)
    assert sample_indices(16, two, 0).tolist() == [1, 5, 9, 13]  # quarter of each 4-frame segment
    assert sample_indices(16, two, 1).tolist() == [3, 7, 11, 15]


def test_segment_sampler_train_stays_inside_each_segment():
    spec = ClipSpec(num_frames=8, sampler="segment", train=True)
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = sample_indices(80, spec, rng=rng)
        assert ((idx // 10) == np.arange(8)).all()


def test_dense_sampler_views_and_short_videos():
    spec = ClipSpec(num_frames=8, sampler="dense", stride=4)
    assert sample_indices(100, spec).tolist() == list(range(35, 64, 4))  # centred: room 71 -> start 35
    three = dataclasses.replace(spec, views=3)
    assert [sample_indices(100, three, v)[0] for v in range(3)] == [0, 36, 71]
    assert sample_indices(10, spec).tolist() == [0, 4, 8, 9, 9, 9, 9, 9]  # padded by repeating the last frame
    train = dataclasses.replace(spec, train=True)
    starts = {int(sample_indices(100, train, rng=np.random.default_rng(s))[0]) for s in range(30)}
    assert len(starts) > 5 and max(starts) <= 71


def test_three_crops_span_the_long_side():
    assert crop_positions(32, 64, 32, 3) == [(0, 0), (0, 16), (0, 32)]
    assert crop_positions(64, 32, 32, 1) == [(16, 0)]


@pytest.mark.parametrize("path", real_clip_params())
def test_decode_and_stop_returns_the_frames_at_the_indices(path):
    with av.open(str(path)) as c:
        total = count_frames(c)
    indices = np.array([0, 3, 3, 17, total // 2, total - 1])
    with av.open(str(path)) as c:  # every frame decoded in order, the wanted ones kept in RGB
        counted = [f.to_ndarray(format="rgb24") if n in indices else None for n, f in enumerate(c.decode(video=0))]
    assert len(counted) == total
    with av.open(str(path)) as c:
        frames, decoded = decode_frames(c, indices)
    assert np.array_equal(frames, np.stack([counted[i] for i in indices]))
    assert decoded == len(counted)  # stopped after the last wanted frame, which is the last one


@pytest.mark.parametrize("path", REAL_CLIPS, ids=lambda p: p.name)
def test_load_clip_views_and_crops(path):
    spec = ClipSpec(num_frames=8, size=32, views=2, crops=3)
    clip, short = load_clip(str(path), spec)
    assert clip.shape == (6, 8, 32, 32, 3) and clip.dtype == np.uint8 and not short
    assert not np.array_equal(clip[0], clip[3])  # the two temporal views differ


def test_short_video_is_padded_and_flagged():
    path = next(p for p in REAL_CLIPS if p.name.startswith("ntu"))  # 103 frames
    clip, short = load_clip(str(path), ClipSpec(num_frames=8, sampler="dense", stride=16, size=16))
    assert short and clip.shape == (1, 8, 16, 16, 3)


def _bad_files(tmp_path, good):
    """Files that do not decode: among them an MP4 cut short with its index (moov) at the end, so
    nothing of it opens (a cut file that still decodes is `truncated`, not bad: test_truncated)."""
    mp4 = next(p for p in REAL_CLIPS if p.suffix == ".mp4").read_bytes()
    files = {
        "truncated.mp4": mp4[: len(mp4) // 10],
        "zero.mp4": b"",
        "random.mp4": np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes(),
        "text.mp4": b"this is not a video\n" * 100,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return [str(tmp_path / n) for n in files] + [str(tmp_path / "missing.mp4")]


def test_bad_files_are_flagged_and_good_rows_survive(tmp_path):
    good = [str(p) for p in REAL_CLIPS[:2]]
    bad = _bad_files(tmp_path, REAL_CLIPS[0])
    paths = [good[0]] + bad + [good[1]]
    batch = {"path": np.array(paths, dtype=object), "label": np.arange(len(paths)), "index": np.arange(len(paths))}
    spec = dataclasses.asdict(ClipSpec(num_frames=4, size=16))
    out = decode_batch(batch, spec, seed_key(0, None))
    assert out["ok"].tolist() == [True] + [False] * len(bad) + [True]
    assert all(out["error"][i] for i in range(1, len(bad) + 1))
    assert out["video"][0].any() and out["video"][-1].any()
    assert out["index"].tolist() == list(range(len(paths)))
    assert not out["truncated"].any()


def test_a_cut_avi_still_decodes_and_is_flagged_truncated(tmp_path):
    data = REAL_CLIPS[0].read_bytes()  # an AVI cut to 10%: its header names 164 frames, 2 decode
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 10])
    batch = {"path": np.array([str(tmp_path / "cut.avi")], dtype=object), "label": np.arange(1), "index": np.arange(1)}
    out = decode_batch(batch, dataclasses.asdict(ClipSpec(num_frames=4, size=16)), seed_key(0, None))
    assert out["ok"].tolist() == [True] and out["truncated"].tolist() == [True] and out["short"].tolist() == [True]
    assert out["error"][0] == "truncated: the header says 164 frames, 2 decode"


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
@pytest.mark.parametrize("path", real_clip_params())
def test_seek_and_sequential_give_the_frames_the_sampler_names(path, sampler):
    spec = SAMPLERS[sampler]
    want = expected_clip(all_frames(path, spec.resize_to), spec)
    for mode in ("auto", "seek", "sequential"):
        clip, _ = load_clip(str(path), dataclasses.replace(spec, decode=mode))
        assert clip.shape == (9, 8, 32, 32, 3)
        assert np.array_equal(clip, want), mode


def fingerprint(frame) -> np.ndarray:
    """A digest of a decoded picture (its planes, every second pixel of every second row): frames
    of long videos compare by it without holding their pixels or converting them to RGB."""
    digest = hashlib.blake2b(digest_size=16)
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        digest.update(rows[::2, : plane.width : 2].tobytes())
    return np.frombuffer(digest.digest(), np.uint8)


def counted(path) -> np.ndarray:
    """The fingerprint of every frame, counted from the start (sequential reading, no seeking)."""
    with av.open(str(path)) as c:
        return np.stack([fingerprint(f) for f in c.decode(video=0)])


def long_clips(avi_only: bool = False) -> list:
    """The real clips as parameters; the 1080p H.264 AVI's cases are slow: 30 s of it take ~10 s
    to decode and seek on two cores (the MPEG-4 AVI covers the packet order in the fast tier)."""
    return [param for param in real_clip_params() if param.values[0].suffix == ".avi" or not avi_only]


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """A real clip remuxed end to end to 30 s (frame i is the source's frame i mod n) and its
    frames counted, made once per clip for every test: source -> (path, fingerprints)."""
    out, made = tmp_path_factory.mktemp("long"), {}

    def get(source):
        if source not in made:
            path = repeat_remux(source, out / f"long_{source.name}", 30)
            made[source] = path, counted(path)
        return made[source]

    return get


@pytest.mark.parametrize("source", long_clips())
def test_remuxed_videos_repeat_the_source_frames(long_video, source):
    path, long = long_video(source)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert float(stream.duration * stream.time_base) >= 30
    frames = counted(source)
    assert len(long) >= 3 * len(frames)
    assert np.array_equal(long, frames[np.arange(len(long)) % len(frames)])


@pytest.mark.parametrize("source", long_clips())
def test_seeking_skips_to_the_wanted_frames_of_a_long_video(long_video, source):
    spec = ClipSpec(num_frames=8, sampler="dense", stride=16, views=3, size=32)
    path, frames = long_video(source)  # both AVIs (MPEG-4 and H.264, with B-frames) seek by packet order
    with av.open(str(path)) as c:
        total = count_frames(c)
    assert total == len(frames)
    indices = np.concatenate([sample_indices(total, spec, v) for v in range(3)])
    stats = {}
    with av.open(str(path)) as c:
        assert frame_names(c) == ("packets" if path.suffix == ".avi" else "timestamps")
        got, _ = seek_frames(c, indices, stats=stats, names=frame_names(c), convert=fingerprint)
    assert np.array_equal(got, frames[indices])
    assert stats["seeks"] >= 2 and stats["frames"] < 0.8 * total  # three runs, two gaps skipped


@pytest.mark.parametrize("source", long_clips(avi_only=True))
@pytest.mark.parametrize("stride", [1, 16])
def test_seek_by_packets_and_counting_agree_on_long_avis(long_video, stride, source):
    """Runs of 8 frames at five positions, each reached by a seek to a different keyframe (or
    none): the packet order names the same frames as counting from the start."""
    path, frames = long_video(source)
    runs = [start + stride * np.arange(8) for start in np.linspace(0, len(frames) - 8 * stride, 5).astype(int)]
    for k, indices in enumerate(runs):
        stats = {}
        with av.open(str(path)) as c:
            got, _ = seek_frames(c, indices, stats=stats, names="packets", convert=fingerprint)
        assert np.array_equal(got, frames[indices]), indices[0]
        assert stats["seeks"] == (1 if k else 0)


def test_avi_timestamps_misname_frames_and_reading_falls_back_to_counting():
    path = next(p for p in REAL_CLIPS if p.suffix == ".avi")
    with av.open(str(path)) as c, pytest.raises(SeekError):
        seek_frames(c, np.array([40, 41]), names="timestamps")
    spec = ClipSpec(num_frames=8, sampler="dense", stride=2, size=32, decode="seek")
    indices = sample_indices(len(all_frames(path)), spec)

    def reopen():
        return av.open(str(path))

    with reopen() as c:
        got, _, read = read_clip_frames(c, reopen, spec, indices, names="timestamps")  # SeekError -> sequential
    assert read == "sequential after seek"
    assert np.array_equal(got, all_frames(path)[indices])
    clip, _ = load_clip(str(path), spec)
    assert np.array_equal(clip, expected_clip(all_frames(path, spec.resize_to), spec))
