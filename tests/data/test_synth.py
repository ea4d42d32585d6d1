import hashlib
import json

import av
import numpy as np
import pytest
import torch

from zsar.data import synth


def test_classes_are_motion_by_speed_compositions():
    names = synth.class_names()
    assert len(names) >= 12 and len(set(names)) == len(names)
    base, novel = synth.base_novel()
    assert not set(base) & set(novel) and set(base) | set(novel) == set(names)
    # every motion and every speed of a novel class also occurs in the base half
    for cls in novel:
        motion, speed = cls.rsplit(" ", 1)
        assert any(b.startswith(motion + " ") for b in base)
        assert any(b.endswith(" " + speed) for b in base)


def test_nuisance_parameters_do_not_depend_on_the_class():
    for seed in range(5):
        a = synth.draw_params(np.random.default_rng(seed), "moving left quickly")
        b = synth.draw_params(np.random.default_rng(seed), "growing slowly")
        assert {**a.__dict__, "cls": None} == {**b.__dict__, "cls": None}


def test_anchor_frame_shows_the_drawn_state_whatever_the_motion():
    params = synth.draw_params(np.random.default_rng(0), "moving left quickly")
    frames = {cls: synth.render(synth.VideoParams(**{**params.__dict__, "cls": cls}), 8, 64) for cls in synth.class_names()}
    anchors = [f[4] for f in frames.values()]
    for other in anchors[1:]:
        assert np.abs(other.astype(int) - anchors[0].astype(int)).max() == 0
    assert not np.array_equal(frames["moving left quickly"][0], frames["moving right quickly"][0])


def test_train_and_test_videos_are_disjoint_and_files_are_real_videos(small_demo_root):
    meta = json.loads((small_demo_root / "demo.json").read_text())
    train = {v["frames_sha"] for v in meta["videos"] if v["split"] == "train"}
    test = {v["frames_sha"] for v in meta["videos"] if v["split"] == "test"}
    assert train and test and not train & test
    assert len(train) == 6 * 16 and len(test) == 3 * 16
    first = small_demo_root / meta["videos"][0]["path"]
    with av.open(str(first)) as c:
        assert c.streams.video[0].codec_context.name in ("h264", "mpeg4")
        assert sum(1 for _ in c.decode(video=0)) == meta["num_frames"]


def test_deterministic_per_seed(tmp_path):
    a = synth.synthesize(tmp_path / "a", seed=7, train_per_class=1, test_per_class=1, num_frames=8)
    b = synth.synthesize(tmp_path / "b", seed=7, train_per_class=1, test_per_class=1, num_frames=8)
    c = synth.synthesize(tmp_path / "c", seed=8, train_per_class=1, test_per_class=1, num_frames=8)
    meta = lambda root: json.loads((root / "demo.json").read_text())  # noqa: E731
    assert meta(a)["videos"] == meta(b)["videos"]
    assert meta(a)["videos"] != meta(c)["videos"]
    for v in meta(a)["videos"]:
        assert hashlib.sha256((a / v["path"]).read_bytes()).digest() == hashlib.sha256((b / v["path"]).read_bytes()).digest()


def _decode_all(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _moments(frame: np.ndarray) -> list[float]:
    """Foreground centroid, log-area and second moments of one frame."""
    fg = (np.abs(frame.astype(float) - np.array(synth.BACKGROUND)).sum(-1) > 60).astype(float)
    ys, xs = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    area = fg.sum() + 1e-6
    cx, cy = (fg * xs).sum() / area, (fg * ys).sum() / area
    mxx, myy, mxy = (fg * (xs - cx) ** 2).sum() / area, (fg * (ys - cy) ** 2).sum() / area, (fg * (xs - cx) * (ys - cy)).sum() / area
    return [cx, cy, np.log(area), mxx, myy, mxy]


def _probe_accuracy(train_x, train_y, test_x, test_y, num_classes) -> float:
    """Multinomial logistic regression (standardised inputs, weight decay): test accuracy."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    tx, vx = (train_x - mu) / sd, (test_x - mu) / sd
    torch.manual_seed(0)
    w = torch.zeros(tx.shape[1], num_classes, requires_grad=True)
    b = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05, weight_decay=1e-3)
    for _ in range(400):
        loss = torch.nn.functional.cross_entropy(tx @ w + b, train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(((vx @ w + b).argmax(1) == test_y).float().mean())


@pytest.fixture(scope="module")
def demo_frames(small_demo_root):
    """Every frame of the small rendering (96 training, 48 test videos), as decoded from its files."""
    demo_root = small_demo_root
    meta = json.loads((demo_root / "demo.json").read_text())
    classes = meta["classes"]
    out = {"train": ([], []), "test": ([], [])}
    for v in meta["videos"]:
        frames = _decode_all(demo_root / v["path"])
        out[v["split"]][0].append(frames)
        out[v["split"]][1].append(classes.index(v["class"]))
    return {k: (np.stack(x), torch.tensor(y)) for k, (x, y) in out.items()}, len(classes), meta["num_frames"] // 2


def test_one_middle_frame_carries_no_class_information(demo_frames):
    data, num_classes, mid = demo_frames
    chance = 1 / num_classes
    (xtr, ytr), (xte, yte) = data["train"], data["test"]
    pixels = lambda x: torch.from_numpy(x[:, mid, ::4, ::4].reshape(len(x), -1).astype(np.float32))  # noqa: E731
    moments = lambda x, idx: torch.tensor([sum((_moments(v[i]) for i in idx), []) for v in x], dtype=torch.float32)  # noqa: E731
    acc_pixels = _probe_accuracy(pixels(xtr), ytr, pixels(xte), yte, num_classes)
    acc_moments = _probe_accuracy(moments(xtr, [mid]), ytr, moments(xte, [mid]), yte, num_classes)
    # Control: the same probe on three frames (motion visible) must find the classes.
    acc_motion = _probe_accuracy(moments(xtr, [mid - 3, mid, mid + 3]), ytr, moments(xte, [mid - 3, mid, mid + 3]), yte, num_classes)
    assert acc_pixels < 2 * chance, acc_pixels
    assert acc_moments < 2 * chance, acc_moments
    assert acc_motion > 6 * chance, acc_motion
