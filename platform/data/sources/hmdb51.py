"""`hmdb51`: HMDB-51 as downloaded.

Layout: `<class>/<video>.avi` (the unpacked per-class archives, under `--root` or a folder below
it) and `testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`, one `<video> <tag>` a line
(0 unused, 1 train, 2 test). A video's class is its folder's, or its split file's.

Protocols: `base2novel` s1..s3, `zeroshot` split1..3 (the official test lists) and `full` (every
video), `full` split1..3 (official train/test videos, all 51 classes).
"""

from __future__ import annotations

import os
import re

from zsar.data import protocols as proto
from zsar.data import remote
from zsar.data.listed import ListedDataset, folder_classes
from zsar.errors import DataError
from zsar.registry import register_dataset

SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<n>[123])\.txt$")
TAGS = {"1": "train", "2": "test"}


@register_dataset("hmdb51")
class HMDB51(ListedDataset):
    protocols = {
        "base2novel": proto.BASE2NOVEL_SPLITS,
        "zeroshot": proto.TEST_SPLITS + ("full",),
        "full": proto.TEST_SPLITS,
    }
    description = "HMDB-51: <class>/*.avi + testTrainMulti_7030_splits/"

    def scan(self) -> None:
        folder_classes(self)
        self.split_files: dict[int, list] = {1: [], 2: [], 3: []}
        for path in self.tree.find_files("*_test_split[123].txt"):
            m = SPLIT_FILE.match(os.path.basename(path))
            cls = self.vocab.get(m["cls"])
            if cls is None:
                self.issues.add("unknown_class", path, f"'{m['cls']}' is not an HMDB-51 class")
                continue
            self.split_files[int(m["n"])].append((cls, path))

    def class_of(self, path: str) -> str | None:
        return self._folder_class.get(os.path.dirname(path))

    def full_spec(self, split: str) -> proto.ProtocolSpec:
        n = proto.TEST_SPLITS.index(split) + 1
        if not self.split_files[n]:
            raise DataError(f"hmdb51 protocol 'full' needs testTrainMulti_7030_splits/<class>_test_split{n}.txt under {self.root}")
        have = {cls for cls, _ in self.split_files[n]}
        for cls in self.vocab.names:
            if cls not in have:
                self.issues.add("missing", f"testTrainMulti_7030_splits/{cls.replace(' ', '_')}_test_split{n}.txt", "split file not found; this class has no videos in full/" + split)
        parts = {"train": [], "test": []}
        for cls, path in self.split_files[n]:
            for i, line in enumerate(remote.read_text(path).splitlines(), 1):
                fields = line.split()
                if len(fields) >= 2 and fields[-1] in TAGS:
                    parts[TAGS[fields[-1]]].append(proto.Entry(fields[0], cls, f"{os.path.basename(path)}:{i}"))
        classes = self.vocab.names
        return proto.ProtocolSpec(
            train=proto.PartSpec("train", classes, parts["train"]),
            evals=[proto.PartSpec("test", classes, parts["test"])],
            kind="full",
            notes={"lists": f"testTrainMulti_7030_splits/*_test_split{n}.txt"},
        )
