"""`pkummd`: PKU-MMD phase 1 skeletons (Liu et al., 2017), trimmed into action instances.

Expected under the root (folder names matched case-insensitively, at any depth up to three):
- a `skeleton` (or `PKU_Skeleton_Renew`) folder of `<video>.txt` files, one frame a line,
  150 numbers (two bodies x 25 joints x xyz);
- a `label` (or `Train_Label_PKU_final`) folder of `<video>.txt` files, one action instance a
  line: `label,start,end,confidence` with 1-based labels in `resources/labels/pkummd.txt` order;
- `cross-subject.txt` (or `cross_subject.txt`): the training videos on the line after the one
  that names them (comma separated), then the held-out ones.

Each label line becomes one sample, the skeleton file's frames [start, end). Protocols: `zsl`,
`gzsl` (SMIE's random 46/5 splits) on the cross-subject halves, and `full` (`xsub`).
"""

from __future__ import annotations

import re
from pathlib import Path

from zsar.data.dataset import Dataset, Plan
from zsar.data.sources import root_error
from zsar.data.sources.ntu import SKELETON_DEFAULTS
from zsar.data.zsl import Sample, full_plan, skeleton_labels, splits_for, unseen_of, zsl_plan
from zsar.errors import DataError
from zsar.registry import register_dataset

SKELETON_DIRS = ("skeleton", "pku_skeleton_renew")
LABEL_DIRS = ("label", "train_label_pku_final")
SPLIT_FILES = ("cross-subject.txt", "cross_subject.txt")


def _find(root: Path, names: tuple[str, ...], want_dir: bool) -> Path | None:
    for depth in range(4):
        for p in sorted(root.glob("/".join(["*"] * (depth + 1)))):
            if p.name.lower() in names and p.is_dir() == want_dir:
                return p
    return None


def read_split(path: Path) -> tuple[set[str], set[str]]:
    """(training videos, held-out videos) from PKU-MMD's cross-subject file."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    ids = lambda line: {v.strip() for v in re.split(r"[,\s]+", line) if v.strip()}  # noqa: E731
    train = test = None
    for i, line in enumerate(lines[:-1]):
        low = line.lower()
        if low.startswith("train"):
            train = ids(lines[i + 1])
        elif low.startswith(("valid", "test")):
            test = ids(lines[i + 1])
    if not train:
        raise DataError(f"{path}: no training video list (expected a 'Training videos:' line followed by the ids)")
    return train, test or set()


@register_dataset("pkummd")
class PKUMMD(Dataset):
    modality = "skeleton"
    protocols = {"zsl": splits_for("pkummd"), "gzsl": splits_for("pkummd"), "full": ("xsub",)}
    config_defaults = SKELETON_DEFAULTS
    description = "PKU-MMD phase 1 skeletons, trimmed action instances; cross-subject; zero-shot splits"

    def __init__(self, root: str | None = None):
        super().__init__(root)
        path = Path(root)
        if not path.is_dir():
            raise root_error(root, self.name, "skeleton/, label/ and cross-subject.txt (PKU-MMD phase 1)")
        skeletons, labels_dir = _find(path, SKELETON_DIRS, True), _find(path, LABEL_DIRS, True)
        split_file = _find(path, SPLIT_FILES, False)
        for found, what in ((skeletons, "a skeleton/ folder"), (labels_dir, "a label/ folder"), (split_file, "cross-subject.txt")):
            if found is None:
                raise DataError(f"{root} is not a PKU-MMD phase 1 root: {what} is missing")
        self.labels = skeleton_labels("pkummd.txt", "pku.txt")
        train_videos, _ = read_split(split_file)
        self.samples: list[Sample] = []
        self.counts = {"videos_without_labels": 0, "bad_label_lines": 0}
        for file in sorted(skeletons.glob("*.txt")):
            label_file = labels_dir / file.name
            if not label_file.is_file():
                self.counts["videos_without_labels"] += 1
                continue
            half = "train" if file.stem in train_videos else "test"
            for line in label_file.read_text().splitlines():
                fields = [f.strip() for f in line.split(",")]
                try:
                    label, start, end = int(float(fields[0])), int(float(fields[1])), int(float(fields[2]))
                except (ValueError, IndexError):
                    self.counts["bad_label_lines"] += int(bool(line.strip()))
                    continue
                if not 1 <= label <= len(self.labels) or end <= start:
                    self.counts["bad_label_lines"] += 1
                    continue
                self.samples.append(Sample(str(file), self.labels.names[label - 1], half, start, end))
        if not self.samples:
            raise DataError(f"no labelled PKU-MMD action instances under {root}")

    def plan(self, protocol: str, split: str) -> Plan:
        if protocol == "full":
            return full_plan(self.name, split, self.labels, self.samples, self.counts)
        return zsl_plan(self.name, protocol, split, self.labels, self.samples, unseen_of(split, self.labels), self.counts)
