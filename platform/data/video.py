"""Video decoding with PyAV: frame samplers, decode-and-stop, resize and crop.

Samplers return frame indices. `segment` (TSN / ViFi-CLIP) splits the video into T equal segments
and takes one frame from each; `dense` (FROSTER / SC-CLIP, 8x16) takes T frames at a fixed stride.
Training draws random offsets; evaluation uses fixed, evenly spread temporal views.
Normalisation happens later, on tensors, so decoded clips stay uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as nnf


@dataclass
class ClipSpec:
    """How to turn one video into model input."""

    num_frames: int = 8
    sampler: str = "segment"
    stride: int = 4
    views: int = 1
    crops: int = 1
    size: int = 224
    short_side: int | None = None
    train: bool = False  # random offsets + random crops
    flip: bool = False  # random horizontal flips (train only)
    crop_scale: tuple = (0.5, 1.0)  # area range of random-resized crops (train only)
    decoder_threads: int = 1

    @property
    def resize_to(self) -> int:
        return self.short_side or self.size

    @property
    def num_views(self) -> int:
        return 1 if self.train else self.views * self.crops


def sample_indices(num_total: int, spec: ClipSpec, view: int = 0, rng: np.random.Generator | None = None) -> np.ndarray:
    """T frame indices in [0, num_total). Shorter videos repeat frames (the caller flags them)."""
    n, t = max(int(num_total), 1), spec.num_frames
    if spec.sampler == "segment":
        edges = np.linspace(0, n, t + 1)
        lengths = np.maximum(edges[1:] - edges[:-1], 1e-9)
        if spec.train:
            offsets = rng.random(t) * lengths
        else:
            offsets = (view + 0.5) / spec.views * lengths
        idx = np.floor(edges[:-1] + offsets).astype(np.int64)
    elif spec.sampler == "dense":
        span = (t - 1) * spec.stride + 1
        room = max(n - span, 0)
        if spec.train:
            start = int(rng.integers(0, room + 1))
        elif spec.views == 1:
            start = room // 2
        else:
            start = int(round(view * room / (spec.views - 1)))
        idx = start + np.arange(t) * spec.stride
    else:
        raise ValueError(f"unknown sampler {spec.sampler!r}")
    return np.clip(idx, 0, n - 1)


def count_frames(container) -> int:
    """Frames in the first video stream: from the header, else by counting packets (no decoding)."""
    stream = container.streams.video[0]
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.average_rate and stream.time_base:
        return max(int(round(float(stream.duration * stream.time_base * stream.average_rate))), 1)
    count = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(0)
    return count


def decode_frames(container, indices: np.ndarray) -> tuple[np.ndarray, int]:
    """Decode from the start and stop after the last wanted frame.

    Returns [len(indices), H, W, 3] uint8 and how many frames were decoded. Indices past the end
    of a stream that is shorter than its header claimed repeat the last frame decoded.
    """
    wanted = set(int(i) for i in indices)
    last = max(wanted)
    got: dict[int, np.ndarray] = {}
    decoded = 0
    for n, frame in enumerate(container.decode(video=0)):
        decoded = n + 1
        if n in wanted:
            got[n] = frame.to_ndarray(format="rgb24")
        if n >= last:
            break
    if not got:
        raise ValueError("no frames could be decoded")
    final = got[max(got)]
    return np.stack([got.get(int(i), final) for i in indices]), decoded


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


def make_views(frames_per_view: list[np.ndarray], spec: ClipSpec, rng: np.random.Generator | None) -> np.ndarray:
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


def _open(path, open_fn):
    import av

    return av.open(open_fn(path) if open_fn else path, mode="r", timeout=30)


def load_clip(path: str, spec: ClipSpec, rng: np.random.Generator | None = None, open_fn=None) -> tuple[np.ndarray, bool]:
    """Decode one video into [V*C, T, size, size, 3] uint8.

    Returns (clip, short): `short` flags a video with fewer frames than the sampler spans (frames
    were repeated). `open_fn(path)` may return a file object (remote roots).
    """
    num_views = 1 if spec.train else spec.views
    with _open(path, open_fn) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.codec_context.thread_count = spec.decoder_threads
        total = count_frames(container)
        if total <= 0:
            raise ValueError("the video has no frames")
        views = [sample_indices(total, spec, v, rng) for v in range(num_views)]
        frames, decoded = decode_frames(container, np.concatenate(views))
    if decoded < total and decoded <= int(np.concatenate(views).max()):
        # The header over-counted the frames: sample again within the frames that exist.
        total = decoded
        views = [sample_indices(total, spec, v, rng) for v in range(num_views)]
        with _open(path, open_fn) as container:
            container.streams.video[0].codec_context.thread_count = spec.decoder_threads
            frames, _ = decode_frames(container, np.concatenate(views))
    t = spec.num_frames
    span = t if spec.sampler == "segment" else (t - 1) * spec.stride + 1
    per_view = [frames[i * t : (i + 1) * t] for i in range(num_views)]
    return make_views(per_view, spec, rng), total < span


def normalize_clips(video: np.ndarray, mean, std, device) -> torch.Tensor:
    """uint8 [..., T, H, W, 3] -> float [..., T, 3, H, W], CLIP-normalised, on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(video)).to(device, non_blocking=True)
    x = x.permute(*range(x.dim() - 3), -1, -3, -2).float().div_(255.0)
    shape = [1] * (x.dim() - 3) + [3, 1, 1]
    mean_t = torch.tensor(mean, device=device).view(shape)
    std_t = torch.tensor(std, device=device).view(shape)
    return (x - mean_t) / std_t
