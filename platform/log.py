"""zsar's own progress lines: `[zsar] ...` on stderr (stdout is for results)."""

from __future__ import annotations

import sys


def log(msg: str, ctx=None) -> None:
    """One line on stderr; with a worker context, only rank 0 speaks."""
    # sys.stderr.write, not print: Ray Train patches print in workers and would echo it twice.
    if ctx is None or getattr(ctx, "rank", 0) == 0:
        sys.stderr.write(f"[zsar] {msg}\n")
        sys.stderr.flush()
