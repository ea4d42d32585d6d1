"""`ssv2`: Something-Something V2 as downloaded.

Layout: `labels.json`, `train.json`, `validation.json` (anywhere up to three folders below
`--root`, usually `labels/`) and the videos `<id>.webm` (usually `20bn-something-something-v2/`).
A video's class is its annotation's `template` with the brackets removed
(`Putting [something] on a surface` -> `Putting something on a surface`).

Protocols: `base2novel` s1..s3 (ViFi-CLIP's lists), `full` val (train on train.json, test on
validation.json, all 174 classes).
"""

from __future__ import annotations

import json
import os

from zsar.data import protocols as proto
from zsar.data import remote
from zsar.data.listed import ListedDataset
from zsar.errors import DataError
from zsar.registry import register_dataset

ANNOTATIONS = {"train.json": "train", "validation.json": "val"}


@register_dataset("ssv2")
class SSv2(ListedDataset):
    protocols = {"base2novel": proto.BASE2NOVEL_SPLITS, "full": ("val",)}
    description = "Something-Something V2: labels.json, train.json, validation.json + <id>.webm"

    def scan(self) -> None:
        self.annotations: dict[str, tuple[str, str, str]] = {}  # id -> (class, split, where)
        self.found = set()
        for path in self.tree.find_files("labels.json"):
            self.found.add(os.path.basename(path))
            for n, name in enumerate(self._load(path), 1):
                if self.vocab.get(name) is None:
                    self.issues.add("unknown_class", f"{path}", f"'{name}' is not an SSv2 class")
        for filename, split in ANNOTATIONS.items():
            for path in self.tree.find_files(filename):
                self.found.add(filename)
                unknown: dict[str, int] = {}
                for i, row in enumerate(self._load(path)):
                    template = str(row.get("template", ""))
                    cls = self.vocab.get(template)
                    if cls is None:
                        unknown[template] = unknown.get(template, 0) + 1
                        continue
                    self.annotations[str(row["id"])] = (cls, split, f"{os.path.basename(path)}[{i}]")
                for template, count in unknown.items():
                    self.issues.add("unknown_class", path, f"template '{template}' is not an SSv2 class ({count} videos)")

    @staticmethod
    def _load(path):
        try:
            return json.loads(remote.read_text(path))
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not readable JSON ({e})") from None

    def class_of(self, path: str) -> str | None:
        found = self.annotations.get(os.path.splitext(os.path.basename(path))[0])
        return found[0] if found else None

    def videos(self):
        out = []
        for path in self.index.paths():
            found = self.annotations.get(os.path.splitext(os.path.basename(path))[0])
            if found:
                out.append((path, found[0], found[1]))
        return out

    def full_spec(self, split: str) -> proto.ProtocolSpec:
        missing = [f for f in ANNOTATIONS if f not in self.found]
        if missing:
            raise DataError(f"ssv2 protocol 'full' needs {', '.join(missing)} under {self.root}")
        classes = self.vocab.names

        def part(name, own):
            entries = [proto.Entry(vid, cls, where) for vid, (cls, s, where) in self.annotations.items() if s == own]
            return proto.PartSpec(name, classes, entries)

        return proto.ProtocolSpec(part("train", "train"), [part("test", "val")], kind="full")
