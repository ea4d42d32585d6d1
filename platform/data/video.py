"""Video decoding with PyAV: frame samplers, decode-and-stop, resize and crop.

Samplers return frame indices. `segment` (TSN / ViFi-CLIP) splits the video into T equal segments
and takes one frame from each; `dense` (FROSTER / SC-CLIP, 8x16) takes T frames at a fixed stride.
Training draws random offsets; evaluation uses fixed, evenly spread temporal views.
Normalisation happens later, on tensors, so decoded clips stay uint8.

Reading frames (`ClipSpec.decode`): `seek` jumps to the keyframe before each run of wanted frames
and stops after the last one, naming frames by their timestamps (MP4, MKV, WebM) or, in AVI files,
whose timestamps are decode times, by their keyframe's position in the packet order; when that
does not behave (timestamps missing or not one frame apart, a seek that lands past the wanted
frame or off its keyframe, a stream that ends before a wanted frame) the file is read
`sequential`ly instead: from the start, counting frames, stopping after the last wanted one.
`all` decodes every frame (only to measure what seeking saves). A file cut short (its header
names more frames than it holds, zsar.data.length) is flagged `truncated` and sampled within the
frames that really decode.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


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
    decode: str = "seek"  # "seek" | "sequential" | "all" (how frames are read; the output is the same)

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
    """The settings that decide a clip's pixels: what caches are keyed by."""
    return {k: v for k, v in dataclasses.asdict(spec).items() if k not in READ_ONLY_FIELDS}


class SeekError(Exception):
    """Seeking misbehaved for this file; it is read sequentially instead."""


def _gather(got: dict, indices: np.ndarray) -> np.ndarray:
    if not got:
        raise ValueError("no frames could be decoded")
    final = got[max(got)]
    return np.stack([got.get(int(i), final) for i in indices])


def decode_frames(container, indices: np.ndarray, stop: bool = True, tolerant: bool = False) -> tuple[np.ndarray, int]:
    """Decode from the start, counting frames, and stop after the last wanted one (or, with
    stop=False, decode every frame); `tolerant`: a packet that does not decode ends the stream
    (a truncated file's readable part, zsar.data.length).

    Returns [len(indices), H, W, 3] uint8 and how many frames were decoded. Indices past the end
    of a stream that is shorter than its header claimed repeat the last frame decoded.
    """
    import av

    wanted = set(int(i) for i in indices)
    last = max(wanted)
    got: dict[int, np.ndarray] = {}
    decoded = 0
    try:
        for n, frame in enumerate(container.decode(video=0)):
            decoded = n + 1
            if n in wanted:
                got[n] = frame.to_ndarray(format="rgb24")
            if stop and n >= last:
                break
    except av.error.FFmpegError:
        if not (tolerant and decoded):
            raise
    return _gather(got, indices), decoded


def _runs(wanted: list[int], gap: int) -> list[tuple[int, int]]:
    """Sorted frame indices -> (first, last) of runs whose inner gaps are at most `gap` frames."""
    runs = [[wanted[0], wanted[0]]]
    for i in wanted[1:]:
        if i - runs[-1][1] > gap:
            runs.append([i, i])
        else:
            runs[-1][1] = i
    return [tuple(r) for r in runs]


class _TimestampNames:
    """Frames named by presentation timestamps: index = (pts - first pts) x frame rate (MP4, MKV,
    WebM). Seeking goes to the keyframe before a timestamp."""

    def __init__(self, container):
        self.container, self.stream = container, container.streams.video[0]
        if not self.stream.time_base or not self.stream.average_rate:
            raise SeekError("no time base or frame rate")
        self.per_frame = Fraction(self.stream.time_base) * Fraction(self.stream.average_rate)  # frames per pts unit
        self.origin = None

    def start(self):
        for frame in self.container.decode(self.stream):
            if frame.pts is None:
                raise SeekError("a frame has no timestamp")
            if self.origin is None:
                self.origin = frame.pts
            yield int(round((frame.pts - self.origin) * self.per_frame)), frame

    def seek(self, lo: int):
        self.container.seek(self.origin + int(lo / self.per_frame), stream=self.stream, backward=True, any_frame=False)
        return self.start()


class _PacketNames:
    """Frames named by decode order (AVI, whose timestamps are packet counts and whose frames
    come out of B-frame decoders with the wrong ones): one pass over the packets, without
    decoding, lists the keyframes; after seeking to the keyframe that is packet k, the i-th frame
    out of the decoder is frame k + i. A keyframe is only used when the seek lands on exactly its
    packet, it decodes to a key frame, and the packets' own timestamps (where a parser set them
    in display order) put no earlier packet after it and no later one before it."""

    def __init__(self, container):
        self.container, self.stream = container, container.streams.video[0]
        packets = [(p.dts, p.pts, p.is_keyframe) for p in container.demux(self.stream) if p.size]
        container.seek(0)
        self.dts = [d for d, _, _ in packets]
        if any(d is None for d in self.dts) or any(b <= a for a, b in zip(self.dts, self.dts[1:])):
            raise SeekError("packets have no increasing decode timestamps")
        pts = [p for _, p, _ in packets]
        self.keys = [k for k, (_, _, key) in enumerate(packets) if key and k > 0 and self._clean(pts, k)]

    @staticmethod
    def _clean(pts: list, k: int, near: int = 8) -> bool:
        if pts[k] is None:
            return True
        before = [p for p in pts[max(k - near, 0):k] if p is not None]
        after = [p for p in pts[k + 1:k + 1 + near] if p is not None]
        return all(p < pts[k] for p in before) and all(p > pts[k] for p in after)

    def start(self):
        return enumerate(self.container.decode(self.stream))

    def seek(self, lo: int):
        k = next((k for k in reversed(self.keys) if k <= lo), None)
        if k is None:
            self.container.seek(0)
            return self.start()
        self.container.seek(self.dts[k], stream=self.stream, backward=True, any_frame=False)
        return self._from(k)

    def _from(self, k: int):
        out, landed = 0, False
        for packet in self.container.demux(self.stream):
            if not landed and packet.size:
                if packet.dts != self.dts[k]:
                    raise SeekError(f"seeking to packet {k} landed on dts {packet.dts}")
                landed = True
            for frame in packet.decode():
                if out == 0 and not frame.key_frame:
                    raise SeekError(f"packet {k} did not decode to a key frame")
                yield k + out, frame
                out += 1


def seek_frames(container, indices: np.ndarray, gap_seconds: float = 2.0, stats: dict | None = None,
                names: str = "timestamps") -> tuple[np.ndarray, int]:
    """Like `decode_frames`, but seek to the keyframe before each run of wanted frames.

    `names` says how a decoded frame's index is known: "timestamps" (`_TimestampNames`) or
    "packets" (`_PacketNames`). Every frame decoded after a seek must be exactly one frame after
    the previous one, and the first must not be past the run's first wanted frame; anything else
    raises SeekError (the caller then reads the file sequentially), so seeking never returns
    other frames than counting would. `stats`, when given, counts the frames decoded and the
    seeks made.
    """
    stats = {} if stats is None else stats
    stats.update(frames=0, seeks=0)
    namer = (_PacketNames if names == "packets" else _TimestampNames)(container)
    frames = namer.start()
    first = next(frames, None)
    if first is None:
        raise ValueError("no frames could be decoded")
    stats["frames"] = 1
    wanted = sorted(set(int(i) for i in indices))
    wanted_set = set(wanted)
    got: dict[int, np.ndarray] = {}
    if wanted[0] == 0:
        got[0] = first[1].to_ndarray(format="rgb24")
    position, decoded = 1, 1  # the index the decoder yields next without seeking
    gap = max(int(gap_seconds * float(container.streams.video[0].average_rate or 25)), 1)
    for lo, hi in _runs([i for i in wanted if i > 0] or [0], gap):
        if lo == 0:
            break
        sought = lo - position > gap
        if sought:
            frames = namer.seek(lo)
            stats["seeks"] += 1
        previous = None if sought else position - 1
        for n, frame in frames:
            stats["frames"] += 1
            if previous is None and n > lo:
                raise SeekError(f"seeking to frame {lo} landed on frame {n}")
            if previous is not None and n != previous + 1:
                raise SeekError(f"frame {n} follows frame {previous}")
            previous, decoded = n, max(decoded, n + 1)
            if n in got or n < lo:
                continue
            if n in wanted_set:
                got[n] = frame.to_ndarray(format="rgb24")
            if n >= hi:
                break
        else:  # the stream ended first: the file holds fewer frames than its header names
            raise SeekError(f"frame {hi} was asked for, but the file ends at frame {decoded}")
        position = (previous or 0) + 1
    return _gather(got, indices), decoded


def frame_names(container) -> str:
    """How seeking names this container's frames: AVI timestamps are decode times, so by packets."""
    return "packets" if container.format.name == "avi" else "timestamps"


def read_frames(container, indices: np.ndarray, mode: str = "seek") -> tuple[np.ndarray, int]:
    """The frames at `indices` by `mode` (see the module docstring); SeekError propagates."""
    if mode == "seek":
        return seek_frames(container, indices, names=frame_names(container))
    if mode in ("sequential", "all"):
        return decode_frames(container, indices, stop=mode == "sequential")
    raise ValueError(f"unknown decode mode {mode!r}")


def _open(path, open_fn, threads: int):
    import av

    container = av.open(open_fn(path) if open_fn else path, mode="r", timeout=30)
    if not container.streams.video:
        container.close()
        raise ValueError("no video stream")
    container.streams.video[0].codec_context.thread_count = threads
    return container


def read_clip_frames(container, reopen, spec: ClipSpec, indices: np.ndarray,
                     names: str | None = None) -> tuple[np.ndarray, int]:
    """Frames at `indices` from the open `container` the way the spec says; when seeking
    misbehaves for this file, read it again (`reopen()`) sequentially (a file that does not
    decode fails there too). `names` overrides `frame_names(container)`."""
    import av

    if spec.decode != "seek":
        return read_frames(container, indices, spec.decode)
    try:
        return seek_frames(container, indices, names=names or frame_names(container))
    except (SeekError, av.error.FFmpegError):
        pass
    with reopen() as again:
        return decode_frames(again, indices)


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
    stream ends before a wanted frame (seen while reading) is read again the same way.
    `window` (start, end) in seconds: the samplers draw only among the frames of that segment
    (`window_frames`; a caption segment of ActivityNet Captions); `short` then says the segment
    is shorter than the sampler's span."""
    from zsar.data.length import decodable_length, file_size, holds_fewer
    from zsar.data.views import make_views  # torch: only where pixels are made, not where files are probed

    num_views = 1 if spec.train else spec.views
    fps = None

    def reopen():
        return _open(path, open_fn, spec.decoder_threads)

    def sample(total):
        first, count = window_frames(window, fps, total)
        return first + np.concatenate([sample_indices(count, spec, v, rng) for v in range(num_views)])

    state = None if rng is None else rng.bit_generator.state  # a re-sample draws what the first would have
    with reopen() as container:
        header = total = count_frames(container)
        if header <= 0:
            raise ValueError("the video has no frames")
        fps = float(container.streams.video[0].average_rate or 0)
        truncated = holds_fewer(container, header, file_size(path, open_fn))
        if not truncated:
            indices = sample(total)
            frames, decoded = read_clip_frames(container, reopen, spec, indices)
            truncated = decoded < header and decoded <= int(indices.max())
    if truncated:
        with reopen() as container:
            total = decodable_length(container)
        if state is not None:
            rng.bit_generator.state = state
        with reopen() as container:
            frames, _ = decode_frames(container, sample(total), tolerant=True)
    t = spec.num_frames
    span = t if spec.sampler == "segment" else (t - 1) * spec.stride + 1
    per_view = [frames[i * t : (i + 1) * t] for i in range(num_views)]
    return Clip(make_views(per_view, spec, rng), window_frames(window, fps, total)[1] < span, truncated, header, total)


def load_clip(path: str, spec: ClipSpec, rng: np.random.Generator | None = None, open_fn=None,
              window: tuple[float, float] | None = None) -> tuple[np.ndarray, bool]:
    """`read_clip`'s (video, short)."""
    clip = read_clip(path, spec, rng, open_fn, window)
    return clip.video, clip.short
