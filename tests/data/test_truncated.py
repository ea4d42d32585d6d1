"""Truncated copies (30%, 60%, 90% of the bytes) of every real fixture clip: the decoder finds
that the file holds fewer frames than its header claims, flags it `truncated`, and samples within
the frames that really decode (the same frames sequential decoding of the readable part gives)."""

import dataclasses
import os

import av
import numpy as np
import pytest

from zsar.data.order import seed_key
from zsar.data.pipeline import decode_batch
from zsar.data.video import ClipSpec, count_frames, read_clip
from conftest import REAL_CLIPS, heavy_clip
from test_video import expected_clip
from zsar.data.views import rgb_frame

FRACTIONS = (0.3, 0.6, 0.9)
SPEC = ClipSpec(num_frames=8, sampler="segment", views=2, crops=1, size=24)


def faststart(src, dst):
    """The MP4 with its index (moov) first, as streaming encoders write it: a cut copy keeps it."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    return dst


def cut_copies(tmp_path_factory):
    """(name, path, fraction) of every decodable truncated copy: AVIs cut as they are, MP4s cut
    after moving their index to the front (an MP4 cut with its index at the end does not open)."""
    tmp = tmp_path_factory.mktemp("truncated")
    out = []
    for clip in REAL_CLIPS:
        src = faststart(clip, tmp / f"fs_{clip.name}") if clip.suffix == ".mp4" else clip
        data = src.read_bytes()
        for f in FRACTIONS:
            path = tmp / f"{clip.stem}_{int(f * 100)}{clip.suffix}"
            path.write_bytes(data[: int(len(data) * f)])
            out.append((clip.name, path, f))
    return out


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    return cut_copies(tmp_path_factory)


def readable_frames(path, short: int | None = None) -> np.ndarray:
    """Every frame sequential decoding yields before the stream ends or stops decoding (resized
    in the conversion, as clips are, with `short`)."""
    frames = []
    with av.open(str(path)) as c:
        c.streams.video[0].codec_context.thread_count = 1  # as the decoder: a cut last packet is concealed alike
        try:
            for frame in c.decode(video=0):
                frames.append(rgb_frame(frame, short))
        except av.error.FFmpegError:
            pass
    return np.stack(frames)


@pytest.fixture(scope="module")
def readable(copies):
    """path -> (the frames its sequential decoding yields, resized as SPEC's clips are; the frame
    count its header claims), decoded once for the module."""
    out = {}
    for _, path, _ in copies:
        with av.open(str(path)) as c:
            out[path] = (readable_frames(path, SPEC.resize_to), count_frames(c))
    return out


# A 60% cut, like a 30% one, ends before each MP4's second keyframe (past 2/3 of its frames): the
# fast tier keeps 30% and 90% (which seeks past one), the full run all three. The 1080p H.264 AVI's
# cases are slow (~5x the others to decode); the fast tier keeps the MPEG-4 AVI.
CUTS = [pytest.param(f, clip, id=f"{f}-{clip.name}", marks=[pytest.mark.slow] if f == 0.6 or heavy_clip(clip) else [])
        for f in FRACTIONS for clip in REAL_CLIPS]


@pytest.mark.parametrize("fraction, source", CUTS)
def test_every_cut_copy_is_flagged_and_sampled_within_its_readable_frames(copies, readable, fraction, source):
    (path,) = [path for name, path, f in copies if f == fraction and name == source.name]  # every clip has one
    frames, header = readable[path]
    assert len(frames) < header
    for mode in ("auto", "seek", "sequential"):
        clip = read_clip(str(path), dataclasses.replace(SPEC, decode=mode))
        assert clip.truncated and (clip.header, clip.frames) == (header, len(frames)), mode
        assert np.array_equal(clip.video, expected_clip(frames, SPEC)), mode


def test_whole_clips_are_not_flagged():
    for path in REAL_CLIPS:
        clip = read_clip(str(path), SPEC)
        assert not clip.truncated and clip.frames == clip.header, path.name


def test_the_decode_udf_keeps_truncated_rows_with_both_counts(copies, readable):
    paths = [str(REAL_CLIPS[0])] + [str(p) for _, p, _ in copies[:4]]
    batch = {"path": np.array(paths, dtype=object), "label": np.arange(len(paths)), "index": np.arange(len(paths))}
    out = decode_batch(batch, dataclasses.asdict(SPEC), seed_key(0, None))
    assert out["ok"].all()
    assert out["truncated"].tolist() == [False] + [True] * 4
    assert out["error"][0] == ""
    for (name, path, _), reason in zip(copies[:4], out["error"][1:]):
        frames = len(readable[path][0])
        assert reason.startswith("truncated: the header says") and reason.endswith(f", {frames} decode"), (name, reason)


def test_data_check_reports_every_cut_copy_with_both_counts(copies, readable, tmp_path, zsar_home, monkeypatch):
    import io
    import shutil

    from zsar.data.check import check_dataset
    from zsar.data.probe import probe_all

    root = tmp_path / "videos"
    (root / "clips").mkdir(parents=True)
    for _, path, _ in copies:
        shutil.copy(path, root / "clips" / path.name)
    for clip in REAL_CLIPS:  # as they are, and MP4s cut with their index at the end: nothing of them opens
        shutil.copy(clip, root / "clips" / clip.name)
        if clip.suffix == ".mp4":
            (root / "clips" / f"cut_{clip.name}").write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    report = check_dataset("folder", str(root), jobs=2)
    out = io.StringIO()
    report.print(out)
    lines = {line.split()[1].rstrip(":").rsplit("/", 1)[-1]: line for line in out.getvalue().splitlines()
             if line.startswith(("truncated", "unreadable"))}
    for name, path, _ in copies:
        frames, header = len(readable[path][0]), readable[path][1]
        assert lines[path.name].startswith("truncated") and f"the header says {header} frames, {frames} decode" in lines[path.name]
    cut = [f"cut_{c.name}" for c in REAL_CLIPS if c.suffix == ".mp4"]
    assert all(lines[n].startswith("unreadable") and "truncated: the file ends inside" in lines[n] for n in cut), lines
    assert len(lines) == len(copies) + len(cut)  # the whole clips are not flagged
    assert report.usable is False  # the cut MP4s do not decode (no failures tolerated by default)
    # the probe's results are cached by (path, size, mtime): a second probe opens no file
    from zsar.data import probe

    def opened(path, frames=3):
        raise AssertionError(f"probed again: {path}")

    monkeypatch.setattr(probe, "probe_file", opened)
    paths = sorted(str(p) for p in (root / "clips").iterdir())
    cached = probe_all(paths, use_ray=False)
    assert cached[str(root / "clips" / copies[0][1].name)]["status"] == "truncated"
    os.utime(paths[0], ns=(1, 1))  # a file changed since: probed again
    with pytest.raises(AssertionError, match="probed again"):
        probe_all(paths, use_ray=False)
