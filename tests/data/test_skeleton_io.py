"""The `.skeleton` reader and writer, and the PKU-MMD reader."""

from __future__ import annotations

import numpy as np
import pytest

from zsar.data.skeleton_io import (
    Body,
    SkeletonFormatError,
    SkeletonSequence,
    format_skeleton,
    parse_skeleton,
    read_pku,
    read_skeleton,
    write_skeleton,
)


def random_sequence(rng, frames=6) -> SkeletonSequence:
    """Frames with 0, 1 or 2 bodies and every per-body and per-joint value drawn at random."""
    seq = SkeletonSequence()
    ids = [int(rng.integers(10**16, 10**17)) for _ in range(2)]
    for f in range(frames):
        bodies = []
        for b in range(f % 3):
            info = np.concatenate([rng.integers(0, 3, 6), rng.normal(size=2), [2]]).astype(np.float64)
            joints = rng.normal(size=(25, 12))
            joints[:, 11] = rng.integers(0, 3, 25)
            bodies.append(Body(ids[b], info, joints))
        seq.frames.append(bodies)
    return seq


def assert_same(a: SkeletonSequence, b: SkeletonSequence):
    assert len(a) == len(b)
    for fa, fb in zip(a.frames, b.frames):
        assert [x.body_id for x in fa] == [x.body_id for x in fb]
        for x, y in zip(fa, fb):
            np.testing.assert_array_equal(x.info, y.info)
            np.testing.assert_array_equal(x.joints, y.joints)


def test_write_then_read_gives_back_every_value(tmp_path):
    seq = random_sequence(np.random.default_rng(0))
    path = write_skeleton(seq, tmp_path / "S001C002P003R001A004.skeleton")
    assert_same(read_skeleton(path), seq)
    assert format_skeleton(read_skeleton(path)) == path.read_text()


def test_parses_the_official_layout_by_hand():
    joint = "0.1 0.2 3.5 250.1 200.2 960.5 540.5 0.9 0.1 0.2 0.3 2"
    text = "\n".join(["2", "1", "72057594037931101 0 1 1 1 1 0 0.02 -0.1 2", "25", *[joint] * 25, "0"]) + "\n"
    seq = parse_skeleton(text)
    assert [len(f) for f in seq.frames] == [1, 0]
    body = seq.frames[0][0]
    assert body.body_id == 72057594037931101
    np.testing.assert_allclose(body.xyz[7], [0.1, 0.2, 3.5])
    np.testing.assert_allclose(body.info, [0, 1, 1, 1, 1, 0, 0.02, -0.1, 2])
    tracks = seq.tracks()
    np.testing.assert_array_equal(tracks[72057594037931101][0], [0])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: "", "empty"),
        (lambda t: t[: len(t) // 2], "truncated"),
        (lambda t: t.replace("\n25\n", "\n24\n", 1), "24 joints"),
        (lambda t: "hello world\n", "not a skeleton"),
        (lambda t: t + "1 2 3\n", "after the last"),
    ],
)
def test_malformed_files_raise_one_clear_error(mutate, message):
    text = format_skeleton(random_sequence(np.random.default_rng(1), frames=3))
    with pytest.raises(SkeletonFormatError, match=message):
        parse_skeleton(mutate(text))


def test_binary_file_is_not_a_skeleton(tmp_path):
    path = tmp_path / "x.skeleton"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(SkeletonFormatError, match="binary"):
        read_skeleton(path)


def test_pku_reader_splits_bodies_and_segments(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.normal(size=(10, 2, 25, 3))
    data[:4, 1] = 0  # the second body appears in frame 4
    path = tmp_path / "0002-L.txt"
    path.write_text("\n".join(" ".join(repr(float(v)) for v in row) for row in data.reshape(10, 150)) + "\n")
    tracks = read_pku(path, 2, 8)
    np.testing.assert_array_equal(tracks[0][0], np.arange(6))
    np.testing.assert_array_equal(tracks[1][0], np.arange(2, 6))
    np.testing.assert_allclose(tracks[1][1], data[4:8, 1])
    with pytest.raises(SkeletonFormatError, match="150 values"):
        path.write_text("1 2 3\n")
        read_pku(path)
