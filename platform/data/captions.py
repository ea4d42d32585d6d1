"""Caption files in ActivityNet Captions' JSON format: each sentence paired with its segment.

`{video_id: {"duration": s, "timestamps": [[start, end], ...], "sentences": [...]}}` (the public
`train.json`, `val_1.json`, `val_2.json`; ids carry the `v_` prefix of the video files). Read by
the `activitynet_captions` adapter (one training row per segment) and by `cezsar`'s `captions`
option (extra negatives).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from zsar.data import remote
from zsar.errors import DataError


@dataclass(frozen=True)
class CaptionSegment:
    video_id: str
    start: float
    end: float
    sentence: str


def _video_segments(video_id, entry) -> list[CaptionSegment]:
    """One video's segments; ValueError/KeyError/TypeError when its entry does not fit the format."""
    stamps, sentences = entry["timestamps"], entry["sentences"]
    if len(stamps) != len(sentences):
        raise ValueError("timestamps and sentences differ in length")
    out = []
    for (start, end), sentence in zip(stamps, sentences):
        start, end, sentence = float(start), float(end), str(sentence).strip()
        if end < start or not sentence:
            raise ValueError("bad segment")
        out.append(CaptionSegment(str(video_id), start, end, sentence))
    return out


def load_captions(path: str | Path, what: str = "captions", error: type[Exception] = DataError
                  ) -> tuple[list[CaptionSegment], int]:
    """The segments of a caption file, and how many of its videos were skipped.

    A video entry that does not fit the format (sentences and timestamps of different lengths, a
    segment that is not [start, end] with start <= end, an empty sentence) is skipped, counted
    and warned about once; a file that cannot be read, is not JSON, or is not such a mapping
    raises `error` (a user error: one line, `what` names the option or dataset)."""
    path = str(path) if remote.is_uri(path) else str(Path(path).expanduser())
    try:
        data = json.loads(remote.read_text(path))
    except OSError as e:
        raise error(f"{what}: cannot read {path} ({e.strerror or e})") from None
    except ValueError as e:
        raise error(f"{what}: {path} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise error(f"{what}: {path} must map video ids to {{duration, timestamps, sentences}}")
    segments, skipped = [], 0
    for video_id, entry in data.items():
        try:
            segments += _video_segments(video_id, entry)
        except (KeyError, TypeError, ValueError):
            skipped += 1
    if skipped:
        print(f"[zsar] warning: {skipped} of {len(data)} videos in {path} do not fit the captions format; skipped",
              file=sys.stderr)
    return segments, skipped
