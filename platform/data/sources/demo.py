"""`demo`: the synthetic motion dataset (zsar.data.synth), synthesised into ZSAR_HOME on first use."""

from __future__ import annotations

import fcntl
import json
import sys
from pathlib import Path

import numpy as np

from zsar.data import synth
from zsar.data.dataset import Dataset, Part, Plan, make_manifest
from zsar.errors import DataError
from zsar.home import zsar_home
from zsar.models.text import LabelSet
from zsar.registry import register_dataset

TRAIN_SHOTS = 88  # of the 96 training videos per base class, each base-to-novel split draws 88


def default_root() -> Path:
    return zsar_home() / "data" / f"demo-v{synth.FORMAT_VERSION}"


SMALL = {"train_per_class": 6, "test_per_class": 3}  # `zsar demo --quick`: 96 + 48 videos


def ensure_demo(root: Path | None = None, quiet: bool = False, small: bool = False) -> Path:
    """Synthesise the demo dataset into `root` (default ZSAR_HOME/data/demo-vN, or demo-small-vN
    with `small`) unless present."""
    root = Path(root) if root else (default_root().with_name(f"demo-small-v{synth.FORMAT_VERSION}") if small
                                    else default_root())
    if (root / "demo.json").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process renders; the others wait and reuse it
        if (root / "demo.json").is_file():
            return root
        return _render(root, quiet, **(SMALL if small else {}))


def _render(root: Path, quiet: bool, **size) -> Path:
    def progress(done, total):
        if not quiet and (done % 64 == 0 or done == total):
            print(f"[zsar] synthesising demo videos: {done}/{total}", file=sys.stderr, flush=True)

    if not quiet:
        print(f"[zsar] demo data not found; rendering it into {root}", file=sys.stderr, flush=True)
    return synth.synthesize(root, progress=progress, **size)


@register_dataset("demo")
class DemoDataset(Dataset):
    modality = "video"
    protocols = {"base2novel": ("s1", "s2", "s3"), "full": ("all",)}
    needs_root = False
    description = "synthetic shapes whose classes differ only by motion (motion x speed)"
    config_defaults = {
        "backbone": {"name": "zsar-tiny", "pretrained": None},
        "text": {"templates": "shape"},
        # Fixed clips (no augmentation): tiny models learn the motion cues faster, and the clips are
        # decoded once and kept in memory.
        "data": {"num_frames": 8, "augment": False, "flip": False, "decode_batch": 8},
        # Tiny from-scratch transformers learn far faster here without gradient clipping.
        "optim": {"epochs": 20, "batch_size": 16, "eval_batch_size": 32, "lr": 5e-4, "warmup_epochs": 1.0,
                  "weight_decay": 0.05, "grad_clip": None},
    }

    def __init__(self, root: str | None = None):
        super().__init__(root)
        if root is not None and not (Path(root) / "demo.json").is_file():
            raise DataError(f"{root} is not a demo dataset (no demo.json); make one with `zsar data synth --out {root}`")
        self.root = str(ensure_demo(Path(root) if root else None))
        meta_path = Path(self.root) / "demo.json"
        try:
            self.meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{meta_path}: not a zsar demo dataset ({e})") from None

    def _rows(self, split: str, classes: list[str]) -> tuple[list[str], list[str]]:
        keep = set(classes)
        rows = [v for v in self.meta["videos"] if v["split"] == split and v["class"] in keep]
        return [str(Path(self.root) / v["path"]) for v in rows], [v["class"] for v in rows]

    def plan(self, protocol: str, split: str) -> Plan:
        if protocol == "full":
            labels = LabelSet(tuple(self.meta["classes"]))
            train = Part("train", make_manifest(*self._rows("train", list(labels.names)), labels), labels)
            test = Part("test", make_manifest(*self._rows("test", list(labels.names)), labels), labels, prefix="")
            return Plan(self.name, protocol, split, train, [test], kind="full")
        base, novel = LabelSet(tuple(self.meta["base"])), LabelSet(tuple(self.meta["novel"]))
        paths, names = self._rows("train", list(base.names))
        rng = np.random.default_rng(int(split[1:]))
        keep = []
        for cls in base.names:
            idx = [i for i, n in enumerate(names) if n == cls]
            keep += sorted(rng.choice(idx, size=min(TRAIN_SHOTS, len(idx)), replace=False).tolist())
        train = Part("train", make_manifest([paths[i] for i in keep], [names[i] for i in keep], base), base)
        evals = [
            Part("base", make_manifest(*self._rows("test", list(base.names)), base), base, prefix="base_"),
            Part("novel", make_manifest(*self._rows("test", list(novel.names)), novel), novel, prefix="novel_"),
        ]
        assert not set(base.names) & set(novel.names), "a novel class is among the training classes"
        return Plan(self.name, protocol, split, train, evals, kind="base2novel")
