"""Synthetic skeleton demo: articulated motions written as official NTU `.skeleton` files.

Each class composes a movement of a body part, a side and a speed in plain words ("raise left arm
slowly", "kick right leg quickly"): 5 movements x 2 sides x 2 speeds = 20 classes. A 25-joint
Kinect v2 body is posed by forward kinematics (rotations of limb chains about their joints).
Everything else is drawn independently of the class: body size and proportions, position and
facing, amplitude and phase of the movement, idle sway, the pose of the other limbs, sensor
noise, sequence length, and (in some files) a ghost body that is not body-like (as Kinect
records furniture), which the decoder drops.

Zero-shot split `demo`: for every movement one of its four side x speed combinations is unseen,
chosen as a Latin square, so every unseen class is a new composition of a seen movement, a seen
side and a seen speed. Performers 1-8 form the training half, 9-11 the held-out half.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from zsar.data.skeleton_io import Body, SkeletonSequence, write_skeleton
from zsar.data.staged import staged_dir

FORMAT_VERSION = 1
FPS = 15
MOVEMENTS = {  # verb: body part
    "raise": "arm",
    "wave": "hand",
    "kick": "leg",
    "lift": "knee",
    "swing": "arm",
}
SIDES = ("left", "right")
SPEEDS = {"slowly": 2.6, "quickly": 0.9}  # seconds per repetition
TRAIN_PERFORMERS = tuple(range(1, 9))
TEST_PERFORMERS = (9, 10, 11)

# Rest pose (metres; x to the body's left, y up, z backwards), NTU / Kinect v2 joint order.
REST = np.array([
    [0.00, 0.00, 0.00], [0.00, 0.25, 0.00], [0.00, 0.50, 0.00], [0.00, 0.62, 0.00],      # spine base, mid, neck, head
    [0.18, 0.45, 0.00], [0.21, 0.17, 0.00], [0.22, -0.08, 0.00], [0.22, -0.16, 0.00],    # left shoulder, elbow, wrist, hand
    [-0.18, 0.45, 0.00], [-0.21, 0.17, 0.00], [-0.22, -0.08, 0.00], [-0.22, -0.16, 0.00],  # right arm
    [0.09, -0.02, 0.00], [0.10, -0.45, 0.00], [0.10, -0.85, 0.00], [0.10, -0.90, -0.10],  # left hip, knee, ankle, foot
    [-0.09, -0.02, 0.00], [-0.10, -0.45, 0.00], [-0.10, -0.85, 0.00], [-0.10, -0.90, -0.10],  # right leg
    [0.00, 0.45, 0.00],                                                                    # spine shoulder
    [0.22, -0.24, 0.00], [0.20, -0.18, -0.03], [-0.22, -0.24, 0.00], [-0.20, -0.18, -0.03],  # hand tips, thumbs
])
ARM = {"left": (4, 5, 6, 7, 21, 22), "right": (8, 9, 10, 11, 23, 24)}  # shoulder, elbow, wrist, hand, tip, thumb
LEG = {"left": (12, 13, 14, 15), "right": (16, 17, 18, 19)}  # hip, knee, ankle, foot
UPPER = (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 20, 21, 22, 23, 24)  # everything above the spine's middle


def class_names() -> list[str]:
    return [f"{verb} {side} {part} {speed}" for verb, part in MOVEMENTS.items() for side in SIDES for speed in SPEEDS]


def unseen_classes() -> list[str]:
    """One side x speed combination of each movement, as a Latin square over the movements."""
    combos = [(side, speed) for side in SIDES for speed in SPEEDS]
    order = [0, 3, 1, 2]  # left slowly, right quickly, left quickly, right slowly, ...
    out = []
    for i, (verb, part) in enumerate(MOVEMENTS.items()):
        side, speed = combos[order[i % 4]]
        out.append(f"{verb} {side} {part} {speed}")
    return out


def _rot(axis: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _turn(p: np.ndarray, joints, pivot: int, rot: np.ndarray) -> None:
    """Rotate `joints` of pose `p` about joint `pivot`, in place."""
    idx = list(joints)
    p[idx] = (p[idx] - p[pivot]) @ rot.T + p[pivot]


def pose_frame(rest: np.ndarray, movement: str, side: str, phase: float, amp: float, idle: dict) -> np.ndarray:
    """Joint positions [25, 3] in the body frame at `phase` (repetitions done, a real number)."""
    p = rest.copy()
    sign = 1.0 if side == "left" else -1.0
    cyc = 0.5 * (1 - math.cos(2 * math.pi * phase))  # 0 -> 1 -> 0 once per repetition
    osc = math.sin(2 * math.pi * phase)
    # Idle pose of every limb (class-independent), then the movement on top of it.
    for s in SIDES:
        sh, el, *_ = ARM[s]
        _turn(p, ARM[s][1:], sh, _rot("x", idle[f"{s}_arm"]))
        hip, knee, *_ = LEG[s]
        _turn(p, LEG[s][1:], hip, _rot("x", idle[f"{s}_leg"]))
    sh, el = ARM[side][0], ARM[side][1]
    hip, knee = LEG[side][0], LEG[side][1]
    if movement == "raise":  # shoulder flexion, forward and up
        _turn(p, ARM[side][1:], sh, _rot("x", amp * math.radians(160) * cyc))
    elif movement == "swing":  # shoulder flexion back and forth
        _turn(p, ARM[side][1:], sh, _rot("x", amp * math.radians(40) * osc))
    elif movement == "wave":  # arm out to the side, forearm up and swaying
        _turn(p, ARM[side][2:], el, _rot("z", sign * (math.radians(90) + amp * math.radians(30) * osc)))
        _turn(p, ARM[side][1:], sh, _rot("z", sign * math.radians(80)))
    elif movement == "kick":  # hip flexion, straight leg
        _turn(p, LEG[side][1:], hip, _rot("x", amp * math.radians(70) * cyc))
    elif movement == "lift":  # knee up: hip flexion with the shin kept hanging
        angle = amp * math.radians(85) * cyc
        _turn(p, LEG[side][2:], knee, _rot("x", -angle))
        _turn(p, LEG[side][1:], hip, _rot("x", angle))
    else:
        raise ValueError(movement)
    return p


def _project(xyz: np.ndarray, fx: float, cx: float, cy: float) -> np.ndarray:
    z = np.maximum(xyz[:, 2], 0.5)
    return np.stack([cx + fx * xyz[:, 0] / z, cy - fx * xyz[:, 1] / z], axis=1)


def make_body(body_id: int, xyz: np.ndarray, rng: np.random.Generator) -> Body:
    """A Body with Kinect-like extras: projections into the depth and colour images, identity joint
    orientations (not modelled), every joint tracked. Values are rounded as Kinect files print them."""
    joints = np.zeros((len(xyz), 12))
    joints[:, :3] = np.round(xyz, 6)
    joints[:, 3:5] = np.round(_project(xyz, 365.0, 256.0, 212.0), 3)
    joints[:, 5:7] = np.round(_project(xyz, 1060.0, 960.0, 540.0), 3)
    joints[:, 7] = 1.0
    joints[:, 11] = 2
    lean = np.round(rng.normal(0, 0.05, 2), 6)
    info = np.array([0, 1, 1, 1, 1, 0, lean[0], lean[1], 2], dtype=np.float64)
    return Body(body_id, info, joints)


def render_sequence(cls: str, rng: np.random.Generator) -> SkeletonSequence:
    """One performance of `cls`; every nuisance drawn from `rng` independently of the class."""
    verb, side, _part, speed = cls.split(" ")
    scale = rng.uniform(0.85, 1.15)
    rest = REST * scale * rng.uniform(0.95, 1.05, size=(len(REST), 1))
    seconds = rng.uniform(2.4, 3.2)
    frames = int(round(seconds * FPS))
    period = SPEEDS[speed] * rng.uniform(0.9, 1.1)
    phase0 = rng.uniform(0, 0.25)
    amp = rng.uniform(0.8, 1.1)
    idle = {f"{s}_{limb}": math.radians(rng.uniform(-10, 10)) for s in SIDES for limb in ("arm", "leg")}
    sway, sway_period = math.radians(rng.uniform(0, 4)), rng.uniform(1.5, 4.0)
    yaw = math.radians(rng.uniform(-35, 35))
    place = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.2, 0.1), rng.uniform(2.4, 3.6)])
    # The camera looks along +z at a body whose forward (-z in the body frame) faces it, turned by yaw.
    to_camera = _rot("y", yaw)
    body_id = int(rng.integers(72057594037900000, 72057594037999999))
    ghost = None
    if rng.random() < 0.15:  # a static wide 'body': furniture seen as a skeleton
        ghost = (int(rng.integers(72057594037900000, 72057594037999999)),
                 np.column_stack([rng.uniform(-0.8, 0.8, 25), rng.uniform(-0.1, 0.1, 25), np.zeros(25)])
                 + np.array([rng.uniform(-1, 1), -0.5, rng.uniform(3.0, 4.0)]))
    seq = SkeletonSequence()
    for f in range(frames):
        phase = phase0 + f / FPS / period
        xyz = pose_frame(rest, verb, side, phase, amp, idle)
        _turn(xyz, UPPER, 1, _rot("z", sway * math.sin(2 * math.pi * f / FPS / sway_period)))  # idle sway
        xyz = xyz @ to_camera.T + place
        xyz = xyz + rng.normal(0, 0.008, xyz.shape)
        bodies = [make_body(body_id, xyz, rng)]
        if ghost is not None:
            bodies.append(make_body(ghost[0], ghost[1] + rng.normal(0, 0.005, (25, 3)), rng))
        seq.frames.append(bodies)
    return seq


def sample_name(performer: int, replication: int, action: int) -> str:
    return f"S001C001P{performer:03d}R{replication:03d}A{action:03d}"


def synthesize(out: str | Path, *, seed: int = 0, replications: int = 2, progress=None) -> Path:
    """Render the skeleton demo into `out` (a temp folder first, moved in place when complete)."""
    out = Path(out)
    classes = class_names()
    records, jobs = [], []
    for performer in TRAIN_PERFORMERS + TEST_PERFORMERS:
        for a, cls in enumerate(classes, 1):
            for r in range(1, replications + 1):
                jobs.append((performer, r, a, cls))
    with staged_dir(out) as tmp:
        for n, (performer, r, a, cls) in enumerate(jobs):
            rng = np.random.default_rng([seed, performer, r, a])
            rel = Path("skeletons") / f"{sample_name(performer, r, a)}.skeleton"
            write_skeleton(render_sequence(cls, rng), tmp / rel)
            split = "train" if performer in TRAIN_PERFORMERS else "test"
            records.append({"path": str(rel), "class": cls, "performer": performer, "split": split})
            if progress:
                progress(n + 1, len(jobs))
        meta = {"format_version": FORMAT_VERSION, "seed": seed, "fps": FPS, "classes": classes,
                "unseen": unseen_classes(), "train_performers": list(TRAIN_PERFORMERS), "samples": records}
        (tmp / "demo_skeleton.json").write_text(json.dumps(meta, indent=1))
    return out
