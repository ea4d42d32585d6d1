"""Reading the wanted frames of an open video with PyAV, and choosing how per file.

`decode_frames` reads `sequential`ly: from the start, counting frames, stopping after the last
wanted one (or, for `all`, decoding every frame: only to measure what the others save).
`seek_frames` jumps to the keyframe before each run of wanted frames and stops after the last
one, naming frames by their timestamps (MP4, MKV, WebM) or, in AVI files, whose timestamps are
decode times, by their keyframe's position in the packet order; when that does not behave
(timestamps missing or not one frame apart, a seek that lands past the wanted frame or off its
keyframe, a stream that ends before a wanted frame) it raises `SeekError` and the caller reads the
file sequentially instead. Both return the same frames.

`choose_read` picks one of the two per file from what each costs, counted in frames decoded:
reading sequentially decodes every frame up to the last wanted one; seeking decodes from the
keyframe before each far run (keyframe positions from the container's index, which MP4 and AVI
load when they open), pays a fixed cost per seek, and in AVI files a pass over every packet to
index the keyframes. Short files, and spans that start near the beginning, are read sequentially;
long skipped spans are sought.

Every reader takes `convert(frame) -> array` (default: full-size RGB; the clip reader passes
zsar.data.views.rgb_frame, which resizes in the same conversion).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

SEEK_COST = 4.0  # frames' worth of decoding that one seek costs (the demuxer and decoder restart)
PACKET_COST = 0.05  # frames' worth of reading one packet without decoding it (the AVI keyframe pass)
UNKNOWN_GOP = 250  # keyframe interval assumed where the container lists no keyframes (x264's default)
GAP_SECONDS = 2.0  # runs of wanted frames further apart than this are reached by seeking


def full_rgb(frame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


class SeekError(Exception):
    """Seeking misbehaved for this file; it is read sequentially instead."""


def _gather(got: dict, indices: np.ndarray) -> np.ndarray:
    if not got:
        raise ValueError("no frames could be decoded")
    final = got[max(got)]
    return np.stack([got.get(int(i), final) for i in indices])


def decode_frames(container, indices: np.ndarray, stop: bool = True, tolerant: bool = False,
                  convert=full_rgb) -> tuple[np.ndarray, int]:
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
                got[n] = convert(frame)
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


def seek_frames(container, indices: np.ndarray, gap_seconds: float = GAP_SECONDS, stats: dict | None = None,
                names: str = "timestamps", convert=full_rgb) -> tuple[np.ndarray, int]:
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
        got[0] = convert(first[1])
    position, decoded = 1, 1  # the index the decoder yields next without seeking
    gap = _gap(container, gap_seconds)
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
                got[n] = convert(frame)
            if n >= hi:
                break
        else:  # the stream ended first: the file holds fewer frames than its header names
            raise SeekError(f"frame {hi} was asked for, but the file ends at frame {decoded}")
        position = (previous or 0) + 1
    return _gather(got, indices), decoded


def frame_names(container) -> str:
    """How seeking names this container's frames: AVI timestamps are decode times, so by packets."""
    return "packets" if container.format.name == "avi" else "timestamps"


def _gap(container, seconds: float) -> int:
    return max(int(seconds * float(container.streams.video[0].average_rate or 25)), 1)


def keyframe_positions(container, total: int) -> list[int] | None:
    """Frame positions of the keyframes, from the index the container loaded when it opened (MP4's
    sample table, AVI's idx1: one entry a frame, in decode order); None where the index does not
    list every frame (MKV/WebM cues, no index): `read_costs` then assumes `UNKNOWN_GOP`."""
    try:
        entries = container.streams.video[0].index_entries
        if len(entries) < total:
            return None
        return [i for i, e in enumerate(entries) if e.is_keyframe] or None
    except (AttributeError, ValueError):
        return None


def read_costs(container, indices: np.ndarray, total: int, names: str) -> dict[str, float]:
    """Frames' worth of decoding to read `indices` sequentially and by seeking (see the module
    docstring): the seek path's cost follows `seek_frames`' own plan, run by run."""
    wanted = sorted(set(int(i) for i in indices))
    keys = keyframe_positions(container, total)
    gap = _gap(container, GAP_SECONDS)

    def key_before(lo: int) -> int:
        if keys is None:
            return lo - min(lo, UNKNOWN_GOP // 2)
        return max((k for k in keys if k <= lo), default=0)

    cost, position = 1.0, 1  # the first frame is always decoded
    for lo, hi in _runs([i for i in wanted if i > 0] or [0], gap):
        if lo == 0:
            break
        if lo - position > gap:
            cost += SEEK_COST + hi - key_before(lo) + 1
        else:
            cost += hi - position + 1
        position = hi + 1
    if names == "packets":
        cost += PACKET_COST * total
    return {"sequential": float(wanted[-1] + 1), "seek": cost}


def choose_read(container, indices: np.ndarray, total: int, names: str) -> str:
    """"seek" when seeking costs less than reading sequentially (`read_costs`), else "sequential"."""
    costs = read_costs(container, indices, total, names)
    return "seek" if costs["seek"] < costs["sequential"] else "sequential"


def read_frames(container, indices: np.ndarray, mode: str = "seek", convert=full_rgb) -> tuple[np.ndarray, int]:
    """The frames at `indices` by `mode` ("seek", "sequential", "all"); SeekError propagates."""
    if mode == "seek":
        return seek_frames(container, indices, names=frame_names(container), convert=convert)
    if mode in ("sequential", "all"):
        return decode_frames(container, indices, stop=mode == "sequential", convert=convert)
    raise ValueError(f"unknown decode mode {mode!r}")


