"""`kinetics400`, `kinetics600`: Kinetics as downloaded.

Layout: the annotation CSVs (`label,youtube_id,time_start,time_end,split`, e.g.
`annotations/{train,validate}.csv`, anywhere up to three folders below `--root`) and the videos
`<youtube_id>_<start:06d>_<end:06d>.mp4` under a split folder (`train/…`) or a split/class folder
(`train/<class>/…`); both layouts work because videos are found by name. A video's class and split
are its annotation row's; without annotations, its class folder's and split folder's.

Protocols: kinetics400 `base2novel` s1..s3, `zeroshot` full (train on every Kinetics-400 training
video; evaluate on `eval_targets`, by default UCF-101 and HMDB-51 test splits 1-3 and the three
Kinetics-600 160-class splits) and `zeroshot` val (evaluation only: every validation video against
all 400 classes, the target of a model trained elsewhere, e.g. `activitynet_captions`
`cezsar_captions`), `full` val (train on train, test on val). kinetics600 `zeroshot`
split1..3 (the 160-class splits; their videos come from K600's train/val/test folders), `full` val.
"""

from __future__ import annotations

import csv
import io
import os

from zsar.data import protocols as proto
from zsar.data import remote
from zsar.data.listed import ListedDataset
from zsar.errors import DataError
from zsar.registry import register_dataset

COLUMNS = {"label", "youtube_id", "time_start", "time_end"}
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validate": "val",
               "validation": "val", "test": "test", "testing": "test"}


def video_stem(youtube_id: str, start, end) -> str:
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"


class Kinetics(ListedDataset):
    variant_splits: dict = {}

    def scan(self) -> None:
        self.annotations: dict[str, tuple[str, str, str]] = {}  # stem -> (class, split, where)
        self.csv_files = []
        unknown: dict[str, list[str]] = {}
        for path in self.tree.find_files("*.csv"):
            name = os.path.basename(path)
            with io.StringIO(remote.read_text(path), newline="") as f:
                reader = csv.DictReader(f)
                if not reader.fieldnames or not COLUMNS <= set(reader.fieldnames):
                    continue
                self.csv_files.append(path)
                for n, row in enumerate(reader, 2):
                    label = (row.get("label") or "").strip()
                    if not label:
                        continue  # test rows without labels cannot be used
                    cls = self.vocab.get(label)
                    if cls is None:
                        unknown.setdefault(label, []).append(f"{name}:{n}")
                        continue
                    try:
                        stem = video_stem(row["youtube_id"], row["time_start"], row["time_end"])
                    except ValueError:
                        self.issues.add("protocol", f"{path}:{n}", "time_start/time_end are not numbers")
                        continue
                    split = SPLIT_NAMES.get((row.get("split") or "").strip().lower(), _split_from_name(name))
                    self.annotations[stem] = (cls, split, f"{name}:{n}")
        for label, where in unknown.items():
            self.issues.add("unknown_class", where[0], f"'{label}' is not a {self.name} class ({len(where)} rows)")
        self._folder_class: dict[str, str | None] = {}

    def _own(self, path: str) -> tuple[str | None, str | None]:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in self.annotations:
            cls, split, _ = self.annotations[stem]
            return cls, split
        folder = os.path.dirname(path)
        if folder not in self._folder_class:
            self._folder_class[folder] = self.vocab.get(os.path.basename(folder))
        parts = self.tree.relative(path).replace("\\", "/").split("/")[:-1]
        split = next((SPLIT_NAMES[p.lower()] for p in parts if p.lower() in SPLIT_NAMES), None)
        return self._folder_class[folder], split

    def class_of(self, path: str) -> str | None:
        return self._own(path)[0]

    def videos(self):
        out = []
        for path in self.index.paths():
            cls, split = self._own(path)
            if cls is not None:
                out.append((path, cls, split))
        return out

    def _split(self, split: str, classes) -> proto.PartSpec:
        """Every video of `split`: the annotation's rows (a row without a file is reported), else
        the videos found in class folders."""
        name = "train" if split == "train" else "test"
        if self.annotations:
            entries = [proto.Entry(stem, cls, where) for stem, (cls, s, where) in self.annotations.items() if s == split]
            return proto.PartSpec(name, classes, entries)
        if not any(cls is not None for _, cls, _ in self.videos()):
            raise DataError(
                f"{self.name}: no annotation CSV ({','.join(sorted(COLUMNS))},split) under {self.root} and no videos in class folders"
            )
        return proto.PartSpec(name, classes, None, split=split)

    def full_spec(self, split: str) -> proto.ProtocolSpec:
        classes = self.vocab.names
        return proto.ProtocolSpec(self._split("train", classes), [self._split("val", classes)], kind="full")


def _split_from_name(filename: str) -> str | None:
    stem = os.path.splitext(filename)[0].lower()
    return next((v for k, v in SPLIT_NAMES.items() if k in stem.split("_") or k == stem), None)


ZEROSHOT_TARGETS = [
    {"dataset": "ucf101", "protocol": "zeroshot", "splits": list(proto.TEST_SPLITS)},
    {"dataset": "hmdb51", "protocol": "zeroshot", "splits": list(proto.TEST_SPLITS)},
    {"dataset": "kinetics600", "protocol": "zeroshot", "splits": list(proto.TEST_SPLITS)},
]


@register_dataset("kinetics400")
class Kinetics400(Kinetics):
    protocols = {"base2novel": proto.BASE2NOVEL_SPLITS, "zeroshot": ("full", "val"), "full": ("val",)}
    variant_splits = {"zeroshot": ("val",)}  # an evaluation target, not a repeat of `full`
    protocol_defaults = {"zeroshot": {"eval_targets": ZEROSHOT_TARGETS}}
    description = "Kinetics-400: annotation CSVs + <youtube_id>_<start>_<end>.mp4 under split(/class) folders"

    def spec(self, protocol: str, split: str) -> proto.ProtocolSpec:
        if protocol == "zeroshot" and split == "val":  # an eval target: every val video, all 400 classes unseen
            test = self._split("val", self.vocab.names)
            test.unseen = True
            return proto.ProtocolSpec(None, [test], kind="full", notes={"classes": len(self.vocab.names)})
        if protocol == "zeroshot":  # train on all of Kinetics-400; the evaluations are eval_targets
            return proto.ProtocolSpec(self._split("train", self.vocab.names), [], kind="targets")
        return super().spec(protocol, split)


@register_dataset("kinetics600")
class Kinetics600(Kinetics):
    protocols = {"zeroshot": proto.TEST_SPLITS, "full": ("val",)}
    description = "Kinetics-600: annotation CSVs + <youtube_id>_<start>_<end>.mp4 under split(/class) folders"
