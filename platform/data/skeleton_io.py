"""Reading and writing skeleton sequences: NTU RGB+D `.skeleton` files and PKU-MMD text files.

The NTU format (Kinect v2; Shahroudy et al., CVPR 2016, `read_skeleton_file.m` in the dataset's
repository) is whitespace-separated text:

    <frames>
    per frame:  <bodies>
      per body: <bodyID> <clipedEdges> <handLeftConfidence> <handLeftState> <handRightConfidence>
                <handRightState> <isRestricted> <leanX> <leanY> <trackingState>
                <joints (25)>
        per joint: <x> <y> <z> <depthX> <depthY> <colorX> <colorY>
                   <orientationW> <orientationX> <orientationY> <orientationZ> <trackingState>

`read_skeleton` keeps everything (the 9 per-body values after the id and the 12 per-joint values),
so `write_skeleton` writes the same format back. PKU-MMD phase 1 stores one frame per line: 150
numbers, two bodies x 25 joints x xyz, zeros where a body is absent.

Any malformed file raises `SkeletonFormatError` with one line saying what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NUM_JOINTS = 25
JOINT_VALUES = 12  # x y z depthX depthY colorX colorY orientationW/X/Y/Z trackingState
BODY_VALUES = 9  # after the body id: 6 integers, leanX, leanY, trackingState
_BODY_INT = (True, True, True, True, True, True, False, False, True)
_JOINT_INT = (False,) * 11 + (True,)


class SkeletonFormatError(ValueError):
    """A skeleton file that cannot be read (truncated, wrong joint count, empty, not a skeleton)."""


@dataclass
class Body:
    body_id: int
    info: np.ndarray  # [9] float64: clipedEdges ... trackingState
    joints: np.ndarray  # [25, 12] float64: xyz, depth xy, colour xy, orientation wxyz, trackingState

    @property
    def xyz(self) -> np.ndarray:
        return self.joints[:, :3]


@dataclass
class SkeletonSequence:
    frames: list[list[Body]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    def tracks(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per body id: (frame indices [n], xyz [n, 25, 3])."""
        found: dict[int, tuple[list[int], list[np.ndarray]]] = {}
        for f, bodies in enumerate(self.frames):
            for body in bodies:
                idx, xyz = found.setdefault(body.body_id, ([], []))
                idx.append(f)
                xyz.append(body.xyz)
        return {k: (np.asarray(i, dtype=np.int64), np.stack(x)) for k, (i, x) in found.items()}


def _int(token: str, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise SkeletonFormatError(f"not a skeleton file: expected an integer {what}, found {token[:20]!r}") from None


def parse_skeleton(text: str, num_joints: int = NUM_JOINTS) -> SkeletonSequence:
    """Parse the text of an NTU `.skeleton` file (see the module docstring)."""
    tokens = text.split()
    if not tokens:
        raise SkeletonFormatError("empty file")
    n_frames = _int(tokens[0], "frame count")
    if n_frames < 0:
        raise SkeletonFormatError(f"negative frame count {n_frames}")
    pos, seq = 1, SkeletonSequence()
    for f in range(n_frames):
        if pos >= len(tokens):
            raise SkeletonFormatError(f"truncated: the header says {n_frames} frames, the file ends in frame {f + 1}")
        n_bodies = _int(tokens[pos], f"body count (frame {f + 1})")
        pos += 1
        if not 0 <= n_bodies <= 16:
            raise SkeletonFormatError(f"frame {f + 1}: implausible body count {n_bodies}")
        bodies = []
        for b in range(n_bodies):
            head = tokens[pos : pos + 1 + BODY_VALUES + 1]
            if len(head) < 1 + BODY_VALUES + 1:
                raise SkeletonFormatError(f"truncated in frame {f + 1}, body {b + 1}")
            body_id = _int(head[0], "body id")
            n_joints = _int(head[-1], f"joint count (frame {f + 1})")
            if n_joints != num_joints:
                raise SkeletonFormatError(f"frame {f + 1}, body {b + 1}: {n_joints} joints, expected {num_joints}")
            pos += len(head)
            block = tokens[pos : pos + n_joints * JOINT_VALUES]
            if len(block) < n_joints * JOINT_VALUES:
                raise SkeletonFormatError(f"truncated in frame {f + 1}, body {b + 1} (joint values missing)")
            pos += len(block)
            try:
                info = np.array(head[1:-1], dtype=np.float64)
                joints = np.array(block, dtype=np.float64).reshape(n_joints, JOINT_VALUES)
            except ValueError:
                raise SkeletonFormatError(f"frame {f + 1}, body {b + 1}: a value is not a number") from None
            if not np.isfinite(joints[:, :3]).all():
                raise SkeletonFormatError(f"frame {f + 1}, body {b + 1}: non-finite joint coordinates")
            bodies.append(Body(body_id, info, joints))
        seq.frames.append(bodies)
    if pos != len(tokens):
        raise SkeletonFormatError(f"{len(tokens) - pos} values after the last of {n_frames} frames (a wrong frame or joint count?)")
    return seq


def read_skeleton(path: str | Path) -> SkeletonSequence:
    try:
        text = Path(path).read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise SkeletonFormatError("not a skeleton file: binary content") from None
    return parse_skeleton(text)


def _fmt(value: float, is_int: bool) -> str:
    return str(int(value)) if is_int else repr(float(value))


def format_skeleton(seq: SkeletonSequence) -> str:
    """The `.skeleton` text of `seq`; `parse_skeleton` reads it back to the same values."""
    lines = [str(len(seq.frames))]
    for bodies in seq.frames:
        lines.append(str(len(bodies)))
        for body in bodies:
            info = " ".join(_fmt(v, i) for v, i in zip(body.info, _BODY_INT))
            lines.append(f"{int(body.body_id)} {info}")
            lines.append(str(len(body.joints)))
            for joint in body.joints:
                lines.append(" ".join(_fmt(v, i) for v, i in zip(joint, _JOINT_INT)))
    return "\n".join(lines) + "\n"


def write_skeleton(seq: SkeletonSequence, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_skeleton(seq))
    return path


def read_pku(path: str | Path, start: int = 0, end: int | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """PKU-MMD phase 1 frames [start, end) as tracks (body slot -> frame indices, xyz [n, 25, 3])."""
    try:
        rows = Path(path).read_bytes().decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise SkeletonFormatError("not a PKU-MMD skeleton file: binary content") from None
    rows = [r for r in rows if r.strip()]
    if not rows:
        raise SkeletonFormatError("empty file")
    stop = len(rows) if end is None or end < 0 else min(end, len(rows))
    if start >= stop:
        raise SkeletonFormatError(f"segment [{start}, {end}) lies outside the file's {len(rows)} frames")
    width = 2 * NUM_JOINTS * 3
    try:
        data = np.array([r.split() for r in rows[start:stop]], dtype=np.float64)
    except ValueError:
        counts = sorted({len(r.split()) for r in rows[start:stop]})
        if counts != [width]:
            raise SkeletonFormatError(f"expected {width} values a line (2 bodies x 25 joints x xyz), found {counts[:4]}") from None
        raise SkeletonFormatError("a value is not a number") from None
    if data.ndim != 2 or data.shape[1] != width:
        raise SkeletonFormatError(f"expected {width} values a line (2 bodies x 25 joints x xyz), found {data.shape[-1]}")
    xyz = data.reshape(len(data), 2, NUM_JOINTS, 3)
    tracks = {}
    for slot in range(2):
        present = np.flatnonzero(np.abs(xyz[:, slot]).sum(axis=(1, 2)) > 0)
        if present.size:
            tracks[slot] = (present, xyz[present, slot])
    return tracks
