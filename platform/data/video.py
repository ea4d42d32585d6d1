"""Video decoding with PyAV: frame samplers, decode-and-stop, resize and crop.

Samplers return frame indices. `segment` (TSN / ViFi-CLIP) splits the video into T equal segments
and takes one frame from each; `dense` (FROSTER / SC-CLIP, 8x16) takes T frames at a fixed stride.
Training draws random offsets; evaluation uses fixed, evenly spread temporal views.
Normalisation happens later, on tensors, so decoded clips stay uint8.

Reading frames (`ClipSpec.decode`, zsar.data.frames): `auto` chooses per file between reading
`sequential`ly from the start and stopping after the last wanted frame, and `seek`ing to the
keyframe before each far run of wanted frames, by what each would cost (short files and spans near
the start are read sequentially); `seek` and `sequential` force one way, `all` decodes every frame
(only to measure what the others save). All give the same frames; a seek that misbehaves falls
back to reading sequentially. `Clip.read` says which way a clip was read. Frames are resized in
the decoder's RGB conversion (zsar.data.views): decoding imports numpy and PyAV only, no torch.
A file cut short (its header names more frames than it holds, zsar.data.length) is flagged
`truncated` and sampled within the frames that really decode.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from zsar.data.frames import (SeekError, choose_read, decode_frames, frame_names, read_frames,
                              seek_frames)
from zsar.data.views import PIXELS, make_views, rgb_frame


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
    decode: str = "auto"  # "auto" | "seek" | "sequential" | "all" (how frames are read; the output is the same)

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


# Fields that change how frames are read but not which frames come out (left out of cache keys).
READ_ONLY_FIELDS = ("decoder_threads", "decode")


def spec_key(spec) -> dict:
    """The settings that decide a clip's pixels, and how pixels are made (`views.PIXELS`): what
    caches are keyed by."""
    return {**{k: v for k, v in dataclasses.asdict(spec).items() if k not in READ_ONLY_FIELDS}, "pixels": PIXELS}


def _open(path, open_fn, threads: int):
    import av

    container = av.open(open_fn(path) if open_fn else path, mode="r", timeout=30)
    if not container.streams.video:
        container.close()
        raise ValueError("no video stream")
    container.streams.video[0].codec_context.thread_count = threads
    return container


def read_clip_frames(container, reopen, spec: ClipSpec, indices: np.ndarray, names: str | None = None,
                     total: int | None = None, convert=None) -> tuple[np.ndarray, int, str]:
    """Frames at `indices` from the open `container` the way the spec says (`auto`: `choose_read`
    for this file, `total` its frame count), each through `convert` (default full-size RGB); when
    seeking misbehaves for this file, read it again (`reopen()`) sequentially (a file that does not
    decode fails there too). `names` overrides `frame_names(container)`. Returns the frames, how
    many were decoded, and the way they were read ("seek", "sequential", "all", or "sequential
    after seek" for a fallback)."""
    import av

    kw = {} if convert is None else {"convert": convert}
    names = names or frame_names(container)
    mode = spec.decode
    if mode == "auto":
        mode = choose_read(container, indices, total or int(max(indices)) + 1, names)
    if mode != "seek":
        return (*read_frames(container, indices, mode, **kw), mode)
    try:
        return (*seek_frames(container, indices, names=names, **kw), "seek")
    except (SeekError, av.error.FFmpegError):
        pass
    with reopen() as again:
        return (*decode_frames(again, indices, **kw), "sequential after seek")


@dataclass
class Clip:
    """A decoded clip and what decoding found: `short` (fewer frames than the sampler spans,
    frames repeated) and `truncated` (the file holds fewer frames than its header claims: sampled
    within the `frames` that decode, `header` the count it claims)."""

    video: np.ndarray
    short: bool
    truncated: bool
    header: int
    frames: int
    read: str = ""  # how its frames were read (`read_clip_frames`; "truncated" for a cut file)


def window_frames(window: tuple[float, float] | None, fps: float, total: int) -> tuple[int, int]:
    """(first frame, frame count) of the frames whose timestamps i / fps lie in the `window`
    [start, end] seconds, within the `total` frames (the whole video when `window` is None). A
    window that holds no frame's timestamp, or lies past the end, keeps the frame nearest its start."""
    if window is None:
        return 0, total
    if not fps:
        raise ValueError("a segment window needs the video's frame rate, and the stream gives none")
    start, end = float(window[0]), float(window[1])
    first = max(int(np.ceil(start * fps - 1e-6)), 0)
    last = min(int(np.floor(end * fps + 1e-6)), total - 1)
    if last < first:
        first = last = min(max(int(round(start * fps)), 0), total - 1)
    return first, last - first + 1


def read_clip(path: str, spec: ClipSpec, rng: np.random.Generator | None = None, open_fn=None,
              window: tuple[float, float] | None = None) -> Clip:
    """Decode one video into [V*C, T, size, size, 3] uint8 (see `Clip`). `open_fn(path)` may
    return a file object (remote roots). A file that cannot hold the frames its header names
    (zsar.data.length) is counted to its true end and read sequentially within it; one whose
    stream ends before a wanted frame (seen while reading) is read again the same way. Frames
    come out of the decoder with their short side resized (`views.rgb_frame`).
    `window` (start, end) in seconds: the samplers draw only among the frames of that segment
    (`window_frames`; a caption segment of ActivityNet Captions); `short` then says the segment
    is shorter than the sampler's span."""
    from zsar.data.length import decodable_length, file_size, holds_fewer

    num_views = 1 if spec.train else spec.views
    fps = None

    def reopen():
        return _open(path, open_fn, spec.decoder_threads)

    def sample(total):
        first, count = window_frames(window, fps, total)
        return first + np.concatenate([sample_indices(count, spec, v, rng) for v in range(num_views)])

    def convert(frame):
        return rgb_frame(frame, spec.resize_to)

    state = None if rng is None else rng.bit_generator.state  # a re-sample draws what the first would have
    with reopen() as container:
        header = total = count_frames(container)
        if header <= 0:
            raise ValueError("the video has no frames")
        fps = float(container.streams.video[0].average_rate or 0)
        truncated = holds_fewer(container, header, file_size(path, open_fn))
        if not truncated:
            indices = sample(total)
            frames, decoded, read = read_clip_frames(container, reopen, spec, indices, total=total, convert=convert)
            truncated = decoded < header and decoded <= int(indices.max())
    if truncated:
        with reopen() as container:
            total = decodable_length(container)
        if state is not None:
            rng.bit_generator.state = state
        with reopen() as container:
            frames, _ = decode_frames(container, sample(total), tolerant=True, convert=convert)
        read = "truncated"
    t = spec.num_frames
    span = t if spec.sampler == "segment" else (t - 1) * spec.stride + 1
    per_view = [frames[i * t : (i + 1) * t] for i in range(num_views)]
    return Clip(make_views(per_view, spec, rng), window_frames(window, fps, total)[1] < span, truncated, header, total, read)


def load_clip(path: str, spec: ClipSpec, rng: np.random.Generator | None = None, open_fn=None,
              window: tuple[float, float] | None = None) -> tuple[np.ndarray, bool]:
    """`read_clip`'s (video, short)."""
    clip = read_clip(path, spec, rng, open_fn, window)
    return clip.video, clip.short
