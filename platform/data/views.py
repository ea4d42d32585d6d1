"""Decoded frames -> model input: resize the short side, crop (fixed or random-resized), flip,
stack views; `normalize_clips` turns uint8 clips into CLIP-normalised tensors."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as nnf


def resize_short(frames: torch.Tensor, short: int) -> torch.Tensor:
    """[T, 3, H, W] uint8 -> short side `short`, aspect kept (antialiased bilinear)."""
    h, w = frames.shape[-2:]
    scale = short / min(h, w)
    nh, nw = max(int(round(h * scale)), short), max(int(round(w * scale)), short)
    if (nh, nw) == (h, w):
        return frames
    out = nnf.interpolate(frames.float(), size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


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


def random_resized_crop(frames: torch.Tensor, size: int, rng: np.random.Generator, scale=(0.5, 1.0)) -> torch.Tensor:
    """One random square crop covering `scale` of the short side's square, resized to size."""
    h, w = frames.shape[-2:]
    side = int(min(h, w) * np.sqrt(rng.uniform(*scale)))
    side = max(side, 1)
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = frames[..., y : y + side, x : x + side]
    out = nnf.interpolate(crop.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def make_views(frames_per_view: list[np.ndarray], spec, rng: np.random.Generator | None) -> np.ndarray:
    """Temporal views [V][T, H, W, 3] -> [V*C, T, size, size, 3] uint8 (C spatial crops per view)."""
    out = []
    for frames in frames_per_view:
        x = torch.from_numpy(frames).permute(0, 3, 1, 2)  # T, 3, H, W
        if spec.train:
            x = random_resized_crop(resize_short(x, spec.resize_to), spec.size, rng, tuple(spec.crop_scale))
            if spec.flip and rng.random() < 0.5:
                x = x.flip(-1)
            out.append(x)
            continue
        x = resize_short(x, spec.resize_to)
        h, w = x.shape[-2:]
        for y0, x0 in crop_positions(h, w, spec.size, spec.crops):
            out.append(x[..., y0 : y0 + spec.size, x0 : x0 + spec.size])
    return torch.stack(out).permute(0, 1, 3, 4, 2).contiguous().numpy()


def normalize_clips(video: np.ndarray, mean, std, device) -> torch.Tensor:
    """uint8 [..., T, H, W, 3] -> float [..., T, 3, H, W], CLIP-normalised, on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(video)).to(device, non_blocking=True)
    x = x.permute(*range(x.dim() - 3), -1, -3, -2).float().div_(255.0)
    shape = [1] * (x.dim() - 3) + [3, 1, 1]
    mean_t = torch.tensor(mean, device=device).view(shape)
    std_t = torch.tensor(std, device=device).view(shape)
    return (x - mean_t) / std_t
