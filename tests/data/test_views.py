"""Resize, crops and flips without torch (zsar.data.views): the decoder's scaler stays within a grey
level or so of the antialiased bilinear resize clips were made with before (torch's), frames
already in RGB are resized like decoded ones, and train views crop and flip as drawn."""

import dataclasses

import av
import numpy as np
import pytest

from zsar.data.video import ClipSpec
from zsar.data.views import make_views, resize_short, rgb_frame, short_side_size
from conftest import REAL_CLIPS


def first_frames(path, n=4):
    with av.open(str(path)) as c:
        return [f for _, f in zip(range(n), c.decode(video=0))]


def torch_resize(rgb: np.ndarray, short: int) -> np.ndarray:
    """The resize decoded clips had before (torch, antialiased bilinear), for comparison."""
    import torch
    import torch.nn.functional as nnf

    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).float()
    h, w = short_side_size(*rgb.shape[1:3], short)
    out = nnf.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("path", REAL_CLIPS, ids=lambda p: p.name)
def test_the_decoder_resize_stays_close_to_antialiased_bilinear(path):
    frames = first_frames(path)
    full = np.stack([rgb_frame(f) for f in frames])
    ours = np.stack([rgb_frame(f, 112) for f in frames])
    assert ours.shape == torch_resize(full, 112).shape and min(ours.shape[1:3]) == 112
    diff = np.abs(ours.astype(int) - torch_resize(full, 112).astype(int))
    assert diff.mean() < 1.5, diff.mean()  # a nearest-neighbour or unfiltered resize is 2-3x further
    rgb_resized = resize_short(full, 112)  # frames already in RGB: the same scaler
    assert np.abs(rgb_resized.astype(int) - ours.astype(int)).mean() < 1.5


def test_short_side_and_aspect():
    assert short_side_size(1080, 1920, 224) == (224, 398)
    assert short_side_size(320, 240, 224) == (299, 224)
    assert short_side_size(224, 300, 224) == (224, 300)


def test_eval_views_are_the_centre_and_end_crops_of_the_resized_frames():
    frames = np.stack([rgb_frame(f, 32) for f in first_frames(REAL_CLIPS[1])])  # 340x256 -> 43x32
    spec = ClipSpec(num_frames=4, size=32, crops=3)
    views = make_views([frames], spec, None)
    w = frames.shape[2]
    assert views.shape == (3, 4, 32, 32, 3)
    assert np.array_equal(views[0], frames[:, :, :32]) and np.array_equal(views[2], frames[:, :, w - 32:])
    assert np.array_equal(views[1], frames[:, :, (w - 32) // 2: (w - 32) // 2 + 32])


def test_train_views_are_drawn_from_the_rng_and_flips_mirror():
    frames = np.stack([rgb_frame(f, 48) for f in first_frames(REAL_CLIPS[2])])
    spec = ClipSpec(num_frames=4, size=32, short_side=48, train=True, crop_scale=(0.3, 1.0))
    flip = dataclasses.replace(spec, flip=True)
    same = make_views([frames], spec, np.random.default_rng(3))
    assert same.shape == (1, 4, 32, 32, 3)
    assert np.array_equal(same, make_views([frames], spec, np.random.default_rng(3)))  # reproducible
    assert not np.array_equal(same, make_views([frames], spec, np.random.default_rng(4)))  # another crop
    mirrored = 0
    for seed in range(8):
        plain = make_views([frames], spec, np.random.default_rng(seed))
        flipped = make_views([frames], flip, np.random.default_rng(seed))
        if np.array_equal(flipped, plain[:, :, :, ::-1]):
            mirrored += 1
        else:
            assert np.array_equal(flipped, plain), seed
    assert 0 < mirrored < 8
