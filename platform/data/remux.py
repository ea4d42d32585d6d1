"""Long test videos without re-encoding: a clip's packets muxed end to end, again and again.

`repeat_remux(src, dst, seconds)` copies the video stream's compressed packets into one container
as many times as it takes to last `seconds`, shifting each copy's timestamps by the clip's
duration. The pixels are exactly the source's (no decoder or encoder in between), so benchmarks
and tests get long real videos whose every frame is known: frame i is the source's i mod n.
"""

from __future__ import annotations

import math
from pathlib import Path


def repeat_remux(src: str | Path, dst: str | Path, seconds: float) -> Path:
    """Write `dst` (the container its suffix names): `src`'s video packets end to end until it
    lasts at least `seconds`. Returns `dst`."""
    import av

    dst = Path(dst)
    with av.open(str(src)) as inp, av.open(str(dst), mode="w") as out:
        in_stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        packets = [p for p in inp.demux(in_stream) if p.size and p.pts is not None]
        if not packets:
            raise ValueError(f"{src}: no video packets")
        tb, rate = in_stream.time_base, in_stream.average_rate
        frame_ticks = max(int(round(1 / (rate * tb))), 1) if rate else 1
        span = max(p.pts for p in packets) - min(p.pts for p in packets) + frame_ticks  # one copy, in ticks
        copies = max(math.ceil(seconds / float(span * tb)), 1)
        original = [(p.pts, p.dts) for p in packets]
        for k in range(copies):
            for p, (pts, dts) in zip(packets, original):
                p.stream = out_stream
                p.pts = pts + k * span
                p.dts = None if dts is None else dts + k * span
                out.mux(p)
    return dst
