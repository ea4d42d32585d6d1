"""From a skeleton file to model input [views, T, M, 25, 3], and the Ray Data decode UDF.

Steps, each a function below:
1. bodies: read every tracked body (NTU `.skeleton` or a PKU-MMD text segment); drop bodies whose
   spread is not body-like (mean width / height over their frames above `spread_ratio`: Kinect's
   ghost bodies are furniture and walls, wider than tall); order the rest by motion energy (the
   sum over joints and axes of the variance over time) and keep at most `bodies` of them, the
   main body first. Frames where no kept body is present are dropped.
2. centre: every present joint minus the main body's spine joint (SpineMid) in its first frame,
   so global motion (walking, falling) is kept. Absent bodies stay exactly zero.
3. view alignment (optional): rotate so that, in the main body's first frame, the spine (base to
   shoulder centre) points along +y and the shoulders (left to right) lie along +x.
4. time: `resample` takes one frame per uniform segment (random in training, evenly spread views
   in evaluation), repeating frames of short sequences; `pad` takes T consecutive frames and pads
   short sequences with zero frames (ST-GCN's convention; `frame_mask` finds them again).

Our choices where the field's preprocessing scripts differ: the spread threshold 0.8 and the
energy criterion follow the common NTU denoising heuristics; if no body passes the spread test we
keep them all rather than lose the sample; frames are never interpolated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsar.data.skeleton_io import NUM_JOINTS, SkeletonFormatError, read_pku, read_skeleton

SPINE_BASE, SPINE_MID, SPINE_SHOULDER = 0, 1, 20  # 0-based NTU / Kinect v2 joint indices
SHOULDER_LEFT, SHOULDER_RIGHT = 4, 8


@dataclass
class SkeletonSpec:
    """How to turn one skeleton sequence into model input."""

    num_frames: int = 64
    views: int = 1
    train: bool = False  # random frame offsets
    bodies: int = 2
    temporal: str = "resample"  # "resample" | "pad"
    align: bool = False
    spread_ratio: float = 0.8

    @property
    def num_views(self) -> int:
        return 1 if self.train else self.views

    @property
    def nbytes(self) -> int:
        return self.num_views * self.num_frames * self.bodies * NUM_JOINTS * 3 * 4


def skeleton_spec(data_cfg, train: bool) -> SkeletonSpec:
    s = data_cfg.skeleton
    return SkeletonSpec(
        num_frames=data_cfg.num_frames, views=data_cfg.views, train=train and data_cfg.augment,
        bodies=s.bodies, temporal=s.temporal, align=s.align, spread_ratio=s.spread_ratio,
    )


# ---------------------------------------------------------------- bodies


def read_tracks(path: str, start: int = 0, end: int = -1) -> dict:
    """Tracked bodies of a file: id -> (frame indices, xyz [n, 25, 3]). `.skeleton` is NTU's
    format; anything else is read as PKU-MMD text, optionally the segment [start, end)."""
    if Path(path).suffix.lower() != ".skeleton":
        return read_pku(path, start, end)
    tracks = read_skeleton(path).tracks()
    if start <= 0 and (end is None or end < 0):
        return tracks
    hi = np.inf if end is None or end < 0 else end
    sliced = {}
    for key, (idx, xyz) in tracks.items():
        keep = (idx >= start) & (idx < hi)
        if keep.any():
            sliced[key] = (idx[keep] - start, xyz[keep])
    return sliced


def spread_ratio(xyz: np.ndarray) -> float:
    """Mean over frames of the body's x extent / y extent (a standing person is taller than wide)."""
    width = np.ptp(xyz[:, :, 0], axis=1)
    height = np.ptp(xyz[:, :, 1], axis=1)
    return float(np.mean(width / np.maximum(height, 1e-6)))


def motion_energy(xyz: np.ndarray) -> float:
    """Sum over joints and axes of the variance of the position over time."""
    return float(xyz.var(axis=0).sum()) if len(xyz) > 1 else 0.0


def select_bodies(tracks: dict, max_bodies: int = 2, max_spread: float = 0.8) -> np.ndarray:
    """[F, max_bodies, 25, 3]: the main body (most motion energy) first, then the next; zeros
    where a body is absent; only frames where a kept body is present."""
    live = {k: v for k, v in tracks.items() if np.abs(v[1]).sum() > 0}
    if not live:
        raise SkeletonFormatError("no body in any frame")
    body_like = {k: v for k, v in live.items() if spread_ratio(v[1]) <= max_spread}
    pool = body_like or live  # never lose the sample to the denoiser
    ranked = sorted(pool, key=lambda k: (-motion_energy(pool[k][1]), str(k)))[:max_bodies]
    frames = np.unique(np.concatenate([pool[k][0] for k in ranked]))
    out = np.zeros((len(frames), max_bodies, NUM_JOINTS, 3), dtype=np.float64)
    for slot, k in enumerate(ranked):
        idx, xyz = pool[k]
        out[np.searchsorted(frames, idx), slot] = xyz
    return out


# ---------------------------------------------------------------- space


def _present(x: np.ndarray) -> np.ndarray:
    """[F, M] whether body m is present in frame f."""
    return np.abs(x).sum(axis=(2, 3)) > 0


def centre(x: np.ndarray) -> np.ndarray:
    present = _present(x)
    first = int(np.flatnonzero(present[:, 0])[0])
    origin = x[first, 0, SPINE_MID]
    return np.where(present[:, :, None, None], x - origin, 0.0)


def view_rotation(x: np.ndarray) -> np.ndarray:
    """The rotation [3, 3] taking the main body's first frame to a canonical view."""
    first = x[int(np.flatnonzero(_present(x)[:, 0])[0]), 0]
    up = first[SPINE_SHOULDER] - first[SPINE_BASE]
    across = first[SHOULDER_RIGHT] - first[SHOULDER_LEFT]
    if np.linalg.norm(up) < 1e-6:
        return np.eye(3)
    y = up / np.linalg.norm(up)
    across = across - across.dot(y) * y
    if np.linalg.norm(across) < 1e-6:
        return np.eye(3)
    xa = across / np.linalg.norm(across)
    z = np.cross(xa, y)
    return np.stack([xa, y, z])


def align(x: np.ndarray) -> np.ndarray:
    present = _present(x)
    rotated = x @ view_rotation(x).T
    return np.where(present[:, :, None, None], rotated, 0.0)


# ---------------------------------------------------------------- time


def frame_indices(n: int, spec: SkeletonSpec, view: int, rng: np.random.Generator | None) -> np.ndarray:
    """T indices into n frames; -1 marks a padding frame (`pad` mode, short sequences)."""
    t = spec.num_frames
    if spec.temporal == "resample":
        edges = np.linspace(0, n, t + 1)
        lengths = edges[1:] - edges[:-1]
        offsets = rng.random(t) * lengths if spec.train else (view + 0.5) / spec.views * lengths
        return np.clip(np.floor(edges[:-1] + offsets).astype(np.int64), 0, n - 1)
    if spec.temporal == "pad":
        room = max(n - t, 0)
        if spec.train:
            start = int(rng.integers(0, room + 1))
        elif spec.views == 1:
            start = 0
        else:
            start = int(round(view * room / (spec.views - 1)))
        idx = start + np.arange(t)
        return np.where(idx < n, idx, -1)
    raise ValueError(f"unknown temporal mode {spec.temporal!r}")


def frame_mask(x):
    """Which frames hold data: [..., T, M, V, C] -> [..., T] (False for `pad` padding frames).
    Accepts numpy arrays and torch tensors."""
    nonzero = x != 0
    return nonzero.reshape(*nonzero.shape[:-3], -1).any(-1)


def to_model_input(x: np.ndarray, spec: SkeletonSpec, rng: np.random.Generator | None = None) -> np.ndarray:
    """Bodies on a timeline [F, M, 25, 3] -> [views, T, M, 25, 3] float32."""
    x = centre(x)
    if spec.align:
        x = align(x)
    out = np.zeros((spec.num_views, spec.num_frames) + x.shape[1:], dtype=np.float32)
    for v in range(spec.num_views):
        idx = frame_indices(len(x), spec, v, rng)
        keep = idx >= 0
        out[v, keep] = x[idx[keep]]
    return out


def load_skeleton(path: str, spec: SkeletonSpec, rng: np.random.Generator | None = None,
                  start: int = 0, end: int = -1) -> tuple[np.ndarray, bool]:
    """One file (or segment) -> ([views, T, M, 25, 3] float32, short: fewer frames than T)."""
    x = select_bodies(read_tracks(path, start, end), spec.bodies, spec.spread_ratio)
    return to_model_input(x, spec, rng or np.random.default_rng()), len(x) < spec.num_frames


# ---------------------------------------------------------------- Ray Data


def decode_skeleton_batch(batch: dict, spec: dict, seed_key: list[int]) -> dict:
    """Ray Data UDF: decode every row's skeleton file; never raises for a bad file."""
    from zsar.data.pipeline import decode_rows

    spec = SkeletonSpec(**spec)
    n = len(batch["path"])
    starts = batch.get("start", np.zeros(n, dtype=np.int64))
    ends = batch.get("end", np.full(n, -1, dtype=np.int64))
    shape = (spec.num_views, spec.num_frames, spec.bodies, NUM_JOINTS, 3)

    def load(i, rng):
        return load_skeleton(str(batch["path"][i]), spec, rng, int(starts[i]), int(ends[i]))

    return decode_rows(batch, "skeleton", shape, np.float32, load, seed_key)


def skeleton_dataset(manifest, spec: SkeletonSpec, data_cfg, *, seed_key: list[int]):
    """A lazy Ray Dataset of decoded skeletons (the video pipeline's shape: zsar.data.pipeline)."""
    from zsar.data.pipeline import decoded_dataset

    columns = [c for c in ("path", "label", "index", "start", "end") if c in manifest.column_names]
    return decoded_dataset(manifest, spec, data_cfg, seed_key=seed_key, decode=decode_skeleton_batch,
                           row_bytes=spec.nbytes, columns=columns)
