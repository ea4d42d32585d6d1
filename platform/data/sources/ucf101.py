"""`ucf101`: UCF-101 as downloaded.

Layout: `UCF-101/<Class>/v_<Class>_gXX_cYY.avi` and `ucfTrainTestlist/{classInd.txt,
trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt}`; `--root` is the folder holding both (or `UCF-101`
itself, with `ucfTrainTestlist` inside or beside it). A video's class is its folder's, or the
list's (`HandstandPushups/v_HandStandPushups_g01_c01.avi` is `HandstandPushups`), never parsed from
its file name.

Protocols: `base2novel` s1..s3, `zeroshot` split1..3 (official test lists) and `full` (every
video), `cezsar` class splits (`--split all`: the ten random runs), `full` split1..3 (official
train/test lists, all 101 classes).
"""

from __future__ import annotations

import os

from zsar.data import protocols as proto
from zsar.data import remote
from zsar.data.listed import ListedDataset, folder_classes
from zsar.errors import DataError
from zsar.registry import register_dataset

LISTS_DIR = "ucfTrainTestlist"


@register_dataset("ucf101")
class UCF101(ListedDataset):
    protocols = {
        "base2novel": proto.BASE2NOVEL_SPLITS,
        "zeroshot": proto.TEST_SPLITS + ("full",),
        "cezsar": proto.CEZSAR_SPLITS,
        "full": proto.TEST_SPLITS,
    }
    # `--split all` averages the repeated measurements: the three test splits, the ten random runs
    variant_splits = {"zeroshot": ("full",), "cezsar": tuple(proto.CEZSAR_FILES)}
    description = "UCF-101: UCF-101/<Class>/*.avi + ucfTrainTestlist/"

    def scan(self) -> None:
        folder_classes(self)
        self.lists_dir = self.tree.find_dir(LISTS_DIR)
        path = remote.join(self.lists_dir, "classInd.txt") if self.lists_dir else None
        if path is not None and remote.is_file(path):
            for n, line in enumerate(remote.read_text(path).splitlines(), 1):
                parts = line.split()
                if parts and self.vocab.get(parts[-1]) is None:
                    self.issues.add("unknown_class", f"{path}:{n}", f"'{parts[-1]}' is not a UCF-101 class")

    def class_of(self, path: str) -> str | None:
        return self._folder_class.get(os.path.dirname(path))

    def _official(self, name: str) -> list[proto.Entry]:
        path = remote.join(self.lists_dir, name) if self.lists_dir else None
        if path is None or not remote.is_file(path):
            raise DataError(f"ucf101 protocol 'full' needs {LISTS_DIR}/{name} under {self.root} (from UCF101TrainTestSplits-RecognitionTask.zip)")
        entries = []
        for n, line in enumerate(remote.read_text(path).splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{LISTS_DIR}/{name}:{n}"
            folder = parts[0].replace("\\", "/").split("/")[0] if "/" in parts[0] else None
            cls = self.vocab.get(folder) if folder else None
            if folder and cls is None:
                self.issues.add("unknown_class", parts[0], f"{where}: '{folder}' is not a UCF-101 class")
                continue
            entries.append(proto.Entry(parts[0], cls, where))
        return entries

    def full_spec(self, split: str) -> proto.ProtocolSpec:
        n = proto.TEST_SPLITS.index(split) + 1
        classes = self.vocab.names
        return proto.ProtocolSpec(
            train=proto.PartSpec("train", classes, self._official(f"trainlist0{n}.txt")),
            evals=[proto.PartSpec("test", classes, self._official(f"testlist0{n}.txt"))],
            kind="full",
            notes={"lists": [f"{LISTS_DIR}/trainlist0{n}.txt", f"{LISTS_DIR}/testlist0{n}.txt"]},
        )
