"""From skeleton files to model input: body selection, centring, view alignment, time, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from zsar.data.order import seed_key
from zsar.data.skeleton import (
    SPINE_MID,
    SkeletonSpec,
    align,
    centre,
    decode_skeleton_batch,
    frame_indices,
    frame_mask,
    load_skeleton,
    select_bodies,
    to_model_input,
)
from zsar.data.skeleton_io import SkeletonSequence, write_skeleton
from zsar.data.skeleton_synth import REST, render_sequence


def body_track(rng, frames, motion, offset=(0.0, 0.0, 3.0)):
    """A standing body (REST) moving its joints by `motion` metres of noise per frame."""
    xyz = REST[None] + np.asarray(offset) + rng.normal(0, motion, (frames, 25, 3))
    return np.arange(frames), xyz


def test_main_body_is_the_one_that_moves_most_and_wide_ghosts_are_dropped():
    rng = np.random.default_rng(0)
    still, moving = body_track(rng, 20, 0.001), body_track(rng, 20, 0.05)
    ghost = (np.arange(20), np.column_stack([np.linspace(-1, 1, 25), np.zeros(25), np.full(25, 3.0)])[None].repeat(20, 0)
             + rng.normal(0, 0.2, (20, 25, 3)) * [1, 0.01, 1])  # wide and flat: moves a lot, not a body
    out = select_bodies({"a": still, "b": moving, "ghost": ghost}, max_bodies=2)
    assert out.shape == (20, 2, 25, 3)
    np.testing.assert_array_equal(out[:, 0], moving[1])
    np.testing.assert_array_equal(out[:, 1], still[1])


def test_frames_without_a_kept_body_are_dropped_and_absent_bodies_are_zero():
    rng = np.random.default_rng(1)
    a = (np.arange(0, 10), body_track(rng, 10, 0.05)[1])
    b = (np.arange(5, 15), body_track(rng, 10, 0.001)[1])
    out = select_bodies({1: a, 2: b}, max_bodies=2)
    assert len(out) == 15
    assert (out[10:, 0] == 0).all() and (out[:5, 1] == 0).all()
    assert select_bodies({1: a, 2: b}, max_bodies=1).shape == (10, 1, 25, 3)


def test_centring_puts_the_main_spine_at_the_origin_and_keeps_absent_bodies_zero():
    rng = np.random.default_rng(2)
    x = np.zeros((8, 2, 25, 3))
    x[:, 0] = body_track(rng, 8, 0.02, offset=(0.5, -0.3, 2.8))[1]
    x[4:, 1] = body_track(rng, 4, 0.02, offset=(-0.5, 0, 3.0))[1]
    c = centre(x)
    np.testing.assert_allclose(c[0, 0, SPINE_MID], 0, atol=1e-12)
    np.testing.assert_allclose(c[4:, 1] - c[4:, 0], x[4:, 1] - x[4:, 0])  # relative positions kept
    assert (c[:4, 1] == 0).all()


def test_view_alignment_undoes_a_rotation_of_the_camera():
    rng = np.random.default_rng(3)
    x = np.zeros((6, 1, 25, 3))
    x[:, 0] = body_track(rng, 6, 0.01)[1]
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = q * np.sign(np.linalg.det(q))  # a proper rotation
    a, b = align(centre(x)), align(centre(x @ rot.T))
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_pad_mode_pads_short_sequences_and_resample_repeats_frames():
    pad = SkeletonSpec(num_frames=8, temporal="pad")
    idx = frame_indices(5, pad, 0, None)
    np.testing.assert_array_equal(idx, [0, 1, 2, 3, 4, -1, -1, -1])
    resample = SkeletonSpec(num_frames=8, temporal="resample")
    idx = frame_indices(5, resample, 0, None)
    assert idx.min() == 0 and idx.max() == 4 and (np.diff(idx) >= 0).all()
    x = np.random.default_rng(4).normal(size=(5, 1, 25, 3))
    x[:, 0, 1] = 0  # a zero joint does not make a frame empty
    padded = to_model_input(x, pad)[0]
    np.testing.assert_array_equal(frame_mask(padded), [True] * 5 + [False] * 3)
    np.testing.assert_allclose(padded[:5], centre(x))


def test_evaluation_views_spread_over_the_sequence_and_training_is_random():
    spec = SkeletonSpec(num_frames=4, views=2, temporal="resample")
    v0, v1 = frame_indices(40, spec, 0, None), frame_indices(40, spec, 1, None)
    assert (v1 > v0).all()
    train = SkeletonSpec(num_frames=4, train=True)
    draws = {tuple(frame_indices(40, train, 0, np.random.default_rng(s))) for s in range(5)}
    assert len(draws) > 1


def write_bad_files(folder):
    good = render_sequence("raise left arm slowly", np.random.default_rng(5))
    text = __import__("zsar.data.skeleton_io", fromlist=["format_skeleton"]).format_skeleton(good)
    bad = {
        "truncated.skeleton": text[: len(text) // 3],
        "wrong_joints.skeleton": text.replace("\n25\n", "\n20\n"),
        "empty.skeleton": "",
        "not_a_skeleton.skeleton": "<html>404</html>\n",
    }
    for name, body in bad.items():
        (folder / name).write_text(body)
    no_body = SkeletonSequence([[] for _ in range(5)])
    write_skeleton(no_body, folder / "no_body.skeleton")
    return write_skeleton(good, folder / "good.skeleton"), [folder / n for n in [*bad, "no_body.skeleton"]]


def test_bad_files_are_flagged_and_good_ones_in_the_same_batch_survive(tmp_path):
    good, bad = write_bad_files(tmp_path)
    paths = [str(good), *map(str, bad), str(good), str(tmp_path / "missing.skeleton")]
    spec = SkeletonSpec(num_frames=16, bodies=2)
    batch = {"path": np.array(paths, dtype=object), "label": np.arange(len(paths)), "index": np.arange(len(paths))}
    out = decode_skeleton_batch(batch, vars(spec), seed_key(0, None))
    assert out["ok"].tolist() == [True] + [False] * len(bad) + [True, False]
    assert out["skeleton"].shape == (len(paths), 1, 16, 2, 25, 3)
    expected, _ = load_skeleton(str(good), spec)
    np.testing.assert_array_equal(out["skeleton"][0], expected)
    np.testing.assert_array_equal(out["skeleton"][-2], expected)
    errors = out["error"].tolist()
    assert "truncated" in errors[1] and "20 joints" in errors[2] and "empty" in errors[3]
    assert "not a skeleton" in errors[4] and "no body" in errors[5] and errors[0] == ""
    assert (out["skeleton"][~out["ok"]] == 0).all()


def test_demo_ghost_bodies_never_become_the_main_body(tmp_path):
    for seed in range(30):
        seq = render_sequence("kick right leg quickly", np.random.default_rng(seed))
        if len(seq.frames[0]) == 2:
            break
    else:
        pytest.fail("no ghost body in 30 renderings")
    path = write_skeleton(seq, tmp_path / "g.skeleton")
    x, _ = load_skeleton(str(path), SkeletonSpec(num_frames=16, bodies=2))
    assert (x[:, :, 1] == 0).all()  # the ghost is dropped: only the performer is left
    assert np.abs(x[:, :, 0]).max() < 1.5  # centred on the performer's spine
