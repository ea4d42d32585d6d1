"""`ntu60`, `ntu120`: NTU RGB+D 60 / 120 raw skeletons (`SsssCcccPpppRrrrAaaa.skeleton` files
anywhere under the root: setup, camera, performer, replication, action).

Benchmarks (NTU RGB+D, Shahroudy et al. CVPR 2016; NTU RGB+D 120, Liu et al. TPAMI 2019;
`resources/protocols/skeleton/ntu_benchmarks.json`): cross-subject (training performers listed),
cross-view (NTU-60: cameras 2 and 3 train), cross-setup (NTU-120: even setups train). The
published samples with missing skeletons are skipped. Protocols: `zsl` and `gzsl` on the
cross-subject halves (zsar.data.zsl), `full` with splits `xsub`, `xview` / `xset`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from zsar.data.dataset import Dataset, Plan
from zsar.data.sources import root_error
from zsar.data.zsl import Sample, resource_file, full_plan, skeleton_labels, splits_for, unseen_of, zsl_plan
from zsar.errors import DataError
from zsar.registry import register_dataset

NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")

SKELETON_DEFAULTS = {
    "data": {"num_frames": 64, "decode_batch": 32, "decode_tasks": 2},
    "text": {"templates": "name"},
}


@dataclass(frozen=True)
class NtuName:
    setup: int
    camera: int
    performer: int
    replication: int
    action: int  # 1-based

    @classmethod
    def parse(cls, stem: str) -> "NtuName | None":
        m = NAME.match(stem)
        return cls(*map(int, m.groups())) if m else None


def benchmarks() -> dict:
    return json.loads(resource_file("protocols", "skeleton", "ntu_benchmarks.json").read_text())


def missing_samples(family: str) -> set[str]:
    text = resource_file("protocols", "skeleton", f"{family}_samples_with_missing_skeletons.txt").read_text()
    return {line.strip() for line in text.splitlines() if NAME.match(line.strip())}


class _NTU(Dataset):
    modality = "skeleton"
    family = ""
    max_setup = 0
    num_classes = 0
    config_defaults = SKELETON_DEFAULTS

    def __init__(self, root: str | None = None):
        super().__init__(root)
        path = Path(root)
        if not path.is_dir():
            raise root_error(root, self.name, "the NTU .skeleton files (S001C001P001R001A001.skeleton, ...)")
        self.labels = skeleton_labels(f"{self.family}.txt", f"{self.family}.txt")
        skip = missing_samples(self.family)
        self.samples: list[tuple[str, NtuName]] = []
        self.counts = {"skipped_missing_skeletons": 0, "ignored_names": 0}
        for file in sorted(path.rglob("*.skeleton")):
            name = NtuName.parse(file.stem)
            if name is None:
                self.counts["ignored_names"] += 1
            elif name.setup > self.max_setup or not 1 <= name.action <= self.num_classes:
                continue  # an NTU-120 sample in an NTU-60 run
            elif file.stem in skip:
                self.counts["skipped_missing_skeletons"] += 1
            else:
                self.samples.append((str(file), name))
        if not self.samples:
            raise DataError(f"no NTU skeleton files (SsssCcccPpppRrrrAaaa.skeleton) under {root}")

    def _samples(self, benchmark: str) -> list[Sample]:
        b = benchmarks()
        subjects = set(b[f"{self.family}_cross_subject_train_subjects"])
        cameras = set(b["ntu60_cross_view_train_cameras"])
        rule = {
            "xsub": lambda n: n.performer in subjects,
            "xview": lambda n: n.camera in cameras,
            "xset": lambda n: n.setup % 2 == 0,
        }[benchmark]
        return [Sample(p, self.labels.names[n.action - 1], "train" if rule(n) else "test") for p, n in self.samples]

    def plan(self, protocol: str, split: str) -> Plan:
        notes = dict(self.counts)
        if protocol == "full":
            return full_plan(self.name, split, self.labels, self._samples(split), notes)
        return zsl_plan(self.name, protocol, split, self.labels, self._samples("xsub"), unseen_of(split, self.labels), notes)


@register_dataset("ntu60")
class NTU60(_NTU):
    family, max_setup, num_classes = "ntu60", 17, 60
    protocols = {"zsl": splits_for("ntu60"), "gzsl": splits_for("ntu60"), "full": ("xsub", "xview")}
    description = "NTU RGB+D 60 skeletons (.skeleton files); cross-subject / cross-view; zero-shot splits"


@register_dataset("ntu120")
class NTU120(_NTU):
    family, max_setup, num_classes = "ntu120", 32, 120
    protocols = {"zsl": splits_for("ntu120"), "gzsl": splits_for("ntu120"), "full": ("xsub", "xset")}
    description = "NTU RGB+D 120 skeletons (.skeleton files); cross-subject / cross-setup; zero-shot splits"
