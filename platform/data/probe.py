"""The pre-flight probe: is every video a run (or `zsar data check`) will use there and readable,
and does it hold the frames its header names? Cheap per file: open the container, decode its first
frames, check that its index or packets can hold the frames the header claims
(zsar.data.length), and decode a frame near its end. Only a file cut short is decoded to its end,
to count the frames it really holds.

A result is `ok`, `truncated` (decodable within fewer frames than its header claims: used, and
counted apart) or `bad` (missing, empty, not a video, nothing decodes: skipped and counted as a
failure), with a one-line reason. Results are cached by (path, size, mtime) under
ZSAR_HOME/cache/probe, so a second run or check over the same files opens none of them again.
`probe_all` probes in parallel: Ray tasks where Ray is running, else threads.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor

from zsar.data import remote

VERSION = 1  # bump when what a probe checks changes: older cached results are then ignored


def _mp4_cut(path: str) -> str | None:
    """Why an MP4/MOV that does not open is cut short: a top-level box runs past the file's end."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            if f.read(8)[4:] != b"ftyp":
                return None
            offset, boxes = 0, []
            while offset + 8 <= size:
                f.seek(offset)
                head = f.read(16)
                length, kind = int.from_bytes(head[:4], "big"), head[4:8].decode("latin-1")
                if length == 1 and len(head) == 16:
                    length = int.from_bytes(head[8:16], "big")
                if length < 8 or not kind.isprintable():
                    return None
                boxes.append(kind)
                if offset + length > size:
                    index = "" if "moov" in boxes else "; its index (moov) is lost"
                    return f"truncated: the file ends inside its '{kind}' box ({size - offset} of {length} bytes){index}"
                offset += length
    except OSError:
        return None
    return None


def probe_file(path: str, frames: int = 3) -> dict:
    """{"status": ok|truncated|bad, "reason", "header", "frames"} of one video (never raises)."""
    import av

    from zsar.data.length import decodable_length, file_size, holds_fewer
    from zsar.data.pipeline import failure_reason, truncation_reason
    from zsar.data.video import count_frames

    out = {"status": "ok", "reason": "", "header": 0, "frames": 0}
    try:
        source = remote.open_input(path) if remote.is_uri(path) else path
        with av.open(source, mode="r", timeout=30) as container:
            if not container.streams.video:
                return {**out, "status": "bad", "reason": "no video stream"}
            stream = container.streams.video[0]
            header = out["header"] = count_frames(container)
            decoded = sum(1 for _, _ in zip(range(max(frames, 1)), container.decode(stream)))
            if decoded == 0 or header <= 0:
                return {**out, "status": "bad", "reason": "no frame decodes"}
            container.seek(0)
            if holds_fewer(container, header, None if remote.is_uri(path) else file_size(path)):
                container.seek(0)
                n = decodable_length(container)
                return {**out, "status": "truncated", "reason": truncation_reason(header, n), "frames": n}
            if stream.duration and stream.duration > 0:
                container.seek(int(stream.start_time or 0) + int(stream.duration * 0.9), stream=stream)
                if next(iter(container.decode(stream)), None) is None:
                    return {**out, "status": "bad", "reason": "the first frames decode, but nothing near the end"}
            return {**out, "frames": header}
    except Exception as e:  # any reader or decoder failure is a property of the file
        reason = failure_reason(e)
        if not remote.is_uri(path) and os.path.isfile(path):
            reason = _mp4_cut(path) or reason
        return {**out, "status": "bad", "reason": reason}


def _key(path: str) -> str | None:
    """The cache key of a local file: (path, size, mtime); None for URIs and missing files."""
    if remote.is_uri(path):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    text = f"{VERSION}\0{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _cached(key: str | None) -> dict | None:
    from zsar.home import cache_dir

    if key is None:
        return None
    try:
        return json.loads((cache_dir("probe", key[:2]) / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None


def _store(key: str | None, result: dict) -> None:
    from zsar.home import cache_dir

    if key is None:
        return
    target = cache_dir("probe", key[:2]) / f"{key}.json"
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, target)


def probe_chunk(paths: list[str], frames: int = 3) -> list[dict]:
    return [probe_file(p, frames) for p in paths]


def _run_ray(todo: list[str], frames: int, jobs: int) -> list[dict]:
    import ray

    task = ray.remote(num_cpus=1, max_retries=1)(probe_chunk)
    size = max(1, -(-len(todo) // (4 * max(jobs, 1))))
    chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
    return [r for part in ray.get([task.remote(c, frames) for c in chunks]) for r in part]


def probe_all(paths, *, frames: int = 3, jobs: int = 8, use_ray: bool | None = None, progress=None) -> dict[str, dict]:
    """path -> probe result for every path (each probed once; cached results reused)."""
    paths = list(dict.fromkeys(str(p) for p in paths))
    keys = {p: _key(p) for p in paths}
    results = {p: r for p in paths if (r := _cached(keys[p])) is not None}
    todo = [p for p in paths if p not in results]
    if use_ray is None:
        import ray

        use_ray = ray.is_initialized()
    if todo and use_ray:
        found = _run_ray(todo, frames, jobs)
    elif todo:
        with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
            found = list(pool.map(lambda p: probe_file(p, frames), todo))
    else:
        found = []
    for n, (path, result) in enumerate(zip(todo, found), 1):
        results[path] = result
        _store(keys[path], result)
        if progress is not None and (n % 500 == 0 or n == len(todo)):
            progress(n, len(todo))
    return {p: results[p] for p in paths}
