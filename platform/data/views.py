"""Decoded frames -> model input, with numpy and PyAV only (this runs in every decode worker, which
imports no torch): resize the short side, crop (fixed or random-resized), flip, stack views.

The short side is resized while the decoder's frame is converted to RGB (`rgb_frame`: swscale,
bilinear, straight from the decoder's YUV planes), so a full-size RGB copy of a frame is never
made; frames already in RGB are resized by the same scaler (`resize_short`). `PIXELS` names this
resize: it is part of every cache key (zsar.data.video.spec_key), so clips prepared or encoded
with another resize are not reused. `normalize_clips` (torch, imported when called) turns uint8
clips into CLIP-normalised tensors on the training side.
"""

from __future__ import annotations

import numpy as np

INTERPOLATION = "BILINEAR"  # swscale's bilinear widens its filter when it shrinks (antialiased)
PIXELS = "swscale-bilinear-1"  # bump when the resize or crop arithmetic changes what pixels come out


def short_side_size(h: int, w: int, short: int) -> tuple[int, int]:
    """(height, width) with the short side `short`, the aspect kept."""
    scale = short / min(h, w)
    return max(int(round(h * scale)), short), max(int(round(w * scale)), short)


def rgb_frame(frame, short: int | None = None) -> np.ndarray:
    """A decoded `av.VideoFrame` -> [H, W, 3] uint8 RGB, its short side resized to `short` in the
    same conversion (None: full size)."""
    if short is None:
        return frame.to_ndarray(format="rgb24")
    h, w = short_side_size(frame.height, frame.width, short)
    if (h, w) == (frame.height, frame.width):
        return frame.to_ndarray(format="rgb24")
    return frame.to_ndarray(format="rgb24", width=w, height=h, interpolation=INTERPOLATION)


def _scale(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """One [H, W, 3] uint8 RGB image -> [h, w, 3], by swscale (the decoder's scaler)."""
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return frame.to_ndarray(format="rgb24", width=w, height=h, interpolation=INTERPOLATION)


def resize_short(frames: np.ndarray, short: int) -> np.ndarray:
    """[T, H, W, 3] uint8 RGB -> short side `short`, aspect kept."""
    h, w = frames.shape[1:3]
    nh, nw = short_side_size(h, w, short)
    if (nh, nw) == (h, w):
        return frames
    return np.stack([_scale(f, nh, nw) for f in frames])


def crop_positions(h: int, w: int, size: int, crops: int) -> list[tuple[int, int]]:
    """Top-left corners: 1 crop = centre; 3 crops = the two ends and the centre of the long side."""
    cy, cx = (h - size) // 2, (w - size) // 2
    if crops == 1:
        return [(cy, cx)]
    if w >= h:
        xs = np.linspace(0, w - size, crops).round().astype(int)
        return [(cy, int(x)) for x in xs]
    ys = np.linspace(0, h - size, crops).round().astype(int)
    return [(int(y), cx) for y in ys]


def random_resized_crop(frames: np.ndarray, size: int, rng: np.random.Generator, scale=(0.5, 1.0)) -> np.ndarray:
    """[T, H, W, 3]: one random square crop covering `scale` of the short side's square, resized
    to size x size (the same crop for every frame)."""
    h, w = frames.shape[1:3]
    side = int(min(h, w) * np.sqrt(rng.uniform(*scale)))
    side = max(side, 1)
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = frames[:, y : y + side, x : x + side]
    if side == size:
        return crop
    return np.stack([_scale(f, size, size) for f in crop])


def make_views(frames_per_view: list[np.ndarray], spec, rng: np.random.Generator | None) -> np.ndarray:
    """Temporal views [V][T, H, W, 3] -> [V*C, T, size, size, 3] uint8 (C spatial crops per view).
    Frames whose short side is not yet `spec.resize_to` (the decoder resizes it: `rgb_frame`) are
    resized here first."""
    out = []
    for frames in frames_per_view:
        x = resize_short(np.asarray(frames), spec.resize_to)
        if spec.train:
            x = random_resized_crop(x, spec.size, rng, tuple(spec.crop_scale))
            if spec.flip and rng.random() < 0.5:
                x = x[:, :, ::-1]
            out.append(x)
            continue
        h, w = x.shape[1:3]
        for y0, x0 in crop_positions(h, w, spec.size, spec.crops):
            out.append(x[:, y0 : y0 + spec.size, x0 : x0 + spec.size])
    return np.ascontiguousarray(np.stack(out))


def normalize_clips(video: np.ndarray, mean, std, device):
    """uint8 [..., T, H, W, 3] -> float [..., T, 3, H, W], CLIP-normalised, on `device` (torch)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(video)).to(device, non_blocking=True)
    x = x.permute(*range(x.dim() - 3), -1, -3, -2).float().div_(255.0)
    shape = [1] * (x.dim() - 3) + [3, 1, 1]
    mean_t = torch.tensor(mean, device=device).view(shape)
    std_t = torch.tensor(std, device=device).view(shape)
    return (x - mean_t) / std_t
