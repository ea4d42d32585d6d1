"""Synthetic demo dataset: a small action dataset rendered as real encoded videos.

Each class is a composition of a motion and a speed in plain words ("moving left quickly"), so a
real text space can relate an unseen composition to seen ones. Everything else is drawn
independently of the class: shape, colour, size and the shape's state at the anchor frame
(the middle frame, F // 2; "start position" in the issue's words): its position, orientation and
size there do not depend on the class, so one frame carries no class information; only motion
separates the classes.

Choices made so that tiny random-weight models learn something in minutes on a CPU: a fixed
background of CLIP's mean colour (it normalises to ~0, so only the shape drives the features),
shape colours far from it, anchor positions near the centre (frames far from the anchor then
show how far and along which axis the shape travels), 8 frames with large per-frame steps, and
96 training videos a class (with 40 and half the step sizes, vificlip's base top-1 on the demo
varied between about 37% and 50% from one seed to the next; with these, 52-56%).

The base-to-novel split holds out, for every motion, one of its two speeds: each motion and each
speed occurs in both halves, the combinations do not.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from zsar.data.staged import staged_dir

MOTIONS: dict[str, tuple[float, float, float, float]] = {
    # name: (dx, dy, dtheta, dlogscale) per frame at unit speed
    "moving left": (-1.0, 0.0, 0.0, 0.0),
    "moving right": (1.0, 0.0, 0.0, 0.0),
    "moving up": (0.0, -1.0, 0.0, 0.0),
    "moving down": (0.0, 1.0, 0.0, 0.0),
    "rotating clockwise": (0.0, 0.0, 1.0, 0.0),
    "rotating counterclockwise": (0.0, 0.0, -1.0, 0.0),
    "growing": (0.0, 0.0, 0.0, 1.0),
    "shrinking": (0.0, 0.0, 0.0, -1.0),
}
SPEEDS: dict[str, float] = {"slowly": 3.0, "quickly": 7.0}
# Per-frame magnitudes at unit speed (in units of the frame size / radians / log-scale).
STEP_XY, STEP_THETA, STEP_LOGSCALE = 1.0 / 64, math.radians(10.0), 0.08
SHAPES = ("rectangle", "triangle", "kite")
FORMAT_VERSION = 4


@dataclass(frozen=True)
class VideoParams:
    cls: str
    shape: str
    fg: tuple[int, int, int]
    bg: tuple[int, int, int]
    radius: float  # fraction of the frame size, at the anchor frame
    x: float  # position at the anchor frame, fraction of the frame size
    y: float
    theta: float  # orientation at the anchor frame, radians
    noise_seed: int


def class_names() -> list[str]:
    return [f"{m} {s}" for m in MOTIONS for s in SPEEDS]


def base_novel() -> tuple[list[str], list[str]]:
    """For motion i, the base half takes speed i % 2 and the novel half the other."""
    speeds = list(SPEEDS)
    base, novel = [], []
    for i, motion in enumerate(MOTIONS):
        base.append(f"{motion} {speeds[i % 2]}")
        novel.append(f"{motion} {speeds[(i + 1) % 2]}")
    return base, novel


def class_key(name: str) -> str:
    return name.replace(" ", "_")


BACKGROUND = (123, 117, 104)  # CLIP's normalisation mean, in 0-255


def draw_params(rng: np.random.Generator, cls: str) -> VideoParams:
    """Draw everything but the motion; nothing here depends on `cls`."""
    fg = rng.integers(0, 256, 3)
    while np.abs(fg - np.array(BACKGROUND)).sum() < 180:  # keep the shape visible
        fg = rng.integers(0, 256, 3)
    return VideoParams(
        cls=cls,
        shape=str(rng.choice(SHAPES)),
        fg=tuple(int(v) for v in fg),
        bg=BACKGROUND,
        radius=float(rng.uniform(0.11, 0.18)),
        x=float(rng.uniform(0.42, 0.58)),
        y=float(rng.uniform(0.42, 0.58)),
        theta=float(rng.uniform(0, 2 * math.pi)),
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )


def _polygon(shape: str) -> np.ndarray:
    """Unit-radius convex polygons without rotational symmetry of order > 2."""
    if shape == "rectangle":
        return np.array([[-1.0, -0.45], [1.0, -0.45], [1.0, 0.45], [-1.0, 0.45]])
    if shape == "triangle":
        return np.array([[1.0, 0.0], [-0.6, -0.45], [-0.6, 0.45]])
    return np.array([[1.0, 0.0], [0.0, -0.55], [-0.6, 0.0], [0.0, 0.55]])  # kite


def _fill_convex(poly: np.ndarray, size: int, supersample: int = 3) -> np.ndarray:
    """Coverage in [0, 1] of a convex polygon (pixel coordinates) on a size x size grid."""
    n = size * supersample
    coords = (np.arange(n) + 0.5) / supersample
    xx, yy = np.meshgrid(coords, coords)
    inside = np.ones((n, n), dtype=bool)
    signed_area = np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1])
    sign = 1.0 if signed_area > 0 else -1.0
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        cross = (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0)
        inside &= sign * cross >= 0
    return inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def render(params: VideoParams, num_frames: int, size: int) -> np.ndarray:
    """[F, size, size, 3] uint8 frames; the anchor frame F // 2 shows exactly `params`' state."""
    motion, speed = params.cls.rsplit(" ", 1)
    dx, dy, dth, dls = MOTIONS[motion]
    v = SPEEDS[speed]
    rng = np.random.default_rng(params.noise_seed)
    base = _polygon(params.shape)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    fg = np.array(params.fg, dtype=np.float32)
    bg = np.array(params.bg, dtype=np.float32)
    anchor = num_frames // 2
    for f in range(num_frames):
        t = f - anchor
        x = (params.x + dx * v * STEP_XY * t) * size
        y = (params.y + dy * v * STEP_XY * t) * size
        theta = params.theta + dth * v * STEP_THETA * t
        radius = params.radius * size * math.exp(dls * v * STEP_LOGSCALE * t)
        rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        poly = base @ rot.T * radius + np.array([x, y])
        alpha = _fill_convex(poly, size)[..., None]
        img = bg * (1 - alpha) + fg * alpha + rng.normal(0, 6.0, (size, size, 1))
        frames[f] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def encode_video(frames: np.ndarray, path: Path, fps: int, keyframes: tuple[int, ...] = ()) -> str:
    """Write frames as a real encoded video with PyAV. Returns the codec.

    MPEG-4 Part 2 first: its bytes are the same on every run (this libx264 build was not, even
    with one thread), which makes the demo data reproducible to the byte; h264 as a fallback.
    Frames in `keyframes` are intra-coded, so their decoded pixels owe nothing to other frames."""
    from av.video.frame import PictureType

    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    last_error = None
    for codec, options in (("mpeg4", {"qscale": "2", "threads": "1"}), ("libx264", {"crf": "12", "preset": "veryfast", "threads": "1"})):
        try:
            with av.open(str(path), mode="w") as container:
                stream = container.add_stream(codec, rate=fps)
                stream.width, stream.height = frames.shape[2], frames.shape[1]
                stream.pix_fmt = "yuv420p"
                stream.options = options
                for i, frame in enumerate(frames):
                    video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
                    video_frame.pts = i  # without explicit timestamps the encoded bytes vary run to run
                    if i in keyframes:
                        video_frame.pict_type = PictureType.I
                    for packet in stream.encode(video_frame):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
            return codec
        except Exception as e:  # codec missing from this FFmpeg build: try the next
            last_error = e
    raise RuntimeError(f"could not encode {path}: {last_error}")


def synthesize(
    out: str | Path,
    *,
    seed: int = 0,
    train_per_class: int = 96,
    test_per_class: int = 12,
    num_frames: int = 8,
    size: int = 64,
    fps: int = 8,
    progress=None,
) -> Path:
    """Render the demo dataset into `out` (written to a temp dir, then moved in place)."""
    out = Path(out)
    classes = class_names()
    base, novel = base_novel()
    records, seen = [], {}
    jobs = []
    for split_id, (split, count) in enumerate((("train", train_per_class), ("test", test_per_class))):
        for class_id, cls in enumerate(classes):
            for i in range(count):
                rng = np.random.default_rng([seed, split_id, class_id, i])
                jobs.append((split, cls, i, draw_params(rng, cls)))
    with staged_dir(out) as tmp:
        for n, (split, cls, i, params) in enumerate(jobs):
            frames = render(params, num_frames, size)
            rel = Path("videos") / split / class_key(cls) / f"{class_key(cls)}_{i:03d}.mp4"
            # The anchor frame is intra-coded: motion-compensated coding artefacts would leak motion.
            codec = encode_video(frames, tmp / rel, fps, keyframes=(num_frames // 2,))
            digest = hashlib.sha256(frames.tobytes()).hexdigest()[:16]
            key = (params.shape, params.fg, params.bg, params.radius, params.x, params.y, params.theta)
            assert key not in seen and digest not in seen, f"duplicate video {rel} and {seen.get(key)}"
            seen[key] = seen[digest] = str(rel)
            records.append({"path": str(rel), "class": cls, "split": split, "codec": codec, "frames_sha": digest, "params": asdict(params)})
            if progress:
                progress(n + 1, len(jobs))
        train_keys = {r["frames_sha"] for r in records if r["split"] == "train"}
        test_keys = {r["frames_sha"] for r in records if r["split"] == "test"}
        assert not train_keys & test_keys, "train and test videos overlap"
        meta = {
            "format_version": FORMAT_VERSION,
            "seed": seed,
            "num_frames": num_frames,
            "size": size,
            "fps": fps,
            "classes": classes,
            "base": base,
            "novel": novel,
            "videos": records,
        }
        (tmp / "demo.json").write_text(json.dumps(meta, indent=1))
    return out
