"""How many frames a video file really holds, against what its header claims.

A file cut short (an interrupted download or copy) keeps a header that names every frame. Two
cheap checks tell whether the frames are there, without decoding: the container's index (MP4's
sample table, AVI's idx1) must end inside the file, and where the index does not name every
frame (AVI whose index was cut off, MKV/WebM cues), the packets the demuxer finds must number as
many as the header says. Only a file that fails them is decoded to the end
(`decodable_length`): its true length is the number of frames sequential decoding yields before
the stream ends or the first undecodable packet.
"""

from __future__ import annotations

import os

ESTIMATE_SLACK = 0.02  # a frame count estimated from the duration (no exact header count) may be off by this much


def file_size(path, open_fn=None) -> int | None:
    """Bytes of a local file; None for remote inputs (the index check is then skipped)."""
    if open_fn is not None:
        return None
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def holds_fewer(container, total: int, size: int | None) -> bool:
    """True when the file cannot hold the `total` frames its header claims (see the module docstring)."""
    stream = container.streams.video[0]
    try:
        entries = stream.index_entries
        ends = [e.pos + e.size for e in entries] if len(entries) >= total else []
    except (AttributeError, ValueError):
        ends = []
    if ends and size is not None:
        return max(ends) > size
    if ends:
        return False
    packets = sum(1 for p in container.demux(stream) if p.size)
    container.seek(0)
    slack = 0 if stream.frames else max(int(total * ESTIMATE_SLACK), 2)
    return packets + slack < total


def decodable_length(container) -> int:
    """Frames sequential decoding yields before the stream ends or a packet does not decode."""
    import av

    count = 0
    try:
        for _ in container.decode(video=0):
            count += 1
    except av.error.FFmpegError:
        if count == 0:
            raise
    return count
