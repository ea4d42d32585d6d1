"""`demo_skeleton`: the synthetic skeleton demo (zsar.data.skeleton_synth), official `.skeleton`
files synthesised into ZSAR_HOME on first use. Protocols `zsl`, `gzsl` (split `demo`: unseen
classes are new compositions of seen movements, sides and speeds) and `full` (`xsub`)."""

from __future__ import annotations

import fcntl
import json
import sys
from pathlib import Path

from zsar.data import skeleton_synth
from zsar.data.dataset import Dataset, Plan
from zsar.data.zsl import Sample, full_plan, zsl_plan
from zsar.errors import DataError
from zsar.home import zsar_home
from zsar.models.text import LabelSet
from zsar.registry import register_dataset

META = "demo_skeleton.json"


def default_root() -> Path:
    return zsar_home() / "data" / f"demo_skeleton-v{skeleton_synth.FORMAT_VERSION}"


def ensure_demo_skeleton(root: Path | None = None, quiet: bool = False) -> Path:
    """Synthesise the skeleton demo into `root` (default ZSAR_HOME/data/demo_skeleton-vN) unless present."""
    root = Path(root) if root else default_root()
    if (root / META).is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process synthesises; the others wait and reuse it
        if (root / META).is_file():
            return root
        if not quiet:
            print(f"[zsar] skeleton demo data not found; synthesising it into {root}", file=sys.stderr, flush=True)
        return skeleton_synth.synthesize(root)


@register_dataset("demo_skeleton")
class DemoSkeletonDataset(Dataset):
    modality = "skeleton"
    protocols = {"zsl": ("demo",), "gzsl": ("demo",), "full": ("xsub",)}
    needs_root = False
    description = "synthetic skeletons: body part x movement x side x speed ('raise left arm slowly')"
    config_defaults = {
        "backbone": {"name": "zsar-tiny", "pretrained": None},
        "text": {"templates": "name"},
        # One performer per sequence; 16 frames sample even the quick movements ~5 times a repetition.
        # No augmentation: clips are decoded once and kept in the object store (parsing text files
        # every epoch would dominate a CPU run).
        "data": {"num_frames": 16, "decode_batch": 32, "augment": False, "skeleton": {"bodies": 1}},
        "optim": {"epochs": 30, "batch_size": 16, "eval_batch_size": 64, "lr": 1e-3, "warmup_epochs": 1.0,
                  "weight_decay": 1e-4, "eval_every": 10},
    }

    def __init__(self, root: str | None = None):
        super().__init__(root)
        if root is not None and not (Path(root) / META).is_file():
            raise DataError(f"{root} is not a skeleton demo dataset (no {META}); make one with "
                            f"`zsar data synth --modality skeleton --out {root}`")
        self.root = str(ensure_demo_skeleton(Path(root) if root else None))
        try:
            self.meta = json.loads((Path(self.root) / META).read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{self.root}/{META}: not a zsar skeleton demo ({e})") from None
        self.labels = LabelSet(tuple(self.meta["classes"]))
        self.samples = [Sample(str(Path(self.root) / r["path"]), r["class"], r["split"]) for r in self.meta["samples"]]

    def plan(self, protocol: str, split: str) -> Plan:
        if protocol == "full":
            return full_plan(self.name, split, self.labels, self.samples)
        return zsl_plan(self.name, protocol, split, self.labels, self.samples, list(self.meta["unseen"]))
