"""`folder`: any `root/<class name>/<video>` tree, `root/{train,test}/<class name>/<video>`, or a
CSV `path,label[,split]` (paths relative to the CSV's folder). Protocol `full`."""

from __future__ import annotations

import csv
from pathlib import Path

from zsar.data import remote
from zsar.data.dataset import VIDEO_EXTENSIONS, Dataset, Part, Plan, make_manifest
from zsar.data.sources import root_error
from zsar.errors import DataError
from zsar.models.text import LabelSet
from zsar.registry import register_dataset

LAYOUT = "<class>/<video> or {train,test}/<class>/<video> (or a CSV file path,label[,split])"
TRAIN_NAMES = {"train", "training"}
TEST_NAMES = {"test", "val", "validation", "testing"}


def _videos_by_class(folder: Path) -> list[tuple[str, str]]:
    rows = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for video in sorted(class_dir.rglob("*")):
            if video.suffix.lower() in VIDEO_EXTENSIONS:
                rows.append((str(video), class_dir.name))
    return rows


def _read_csv(path: Path) -> list[tuple[str, str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise DataError(f"{path}: a CSV needs the columns path,label[,split]")
        out = []
        for row in reader:
            video = Path(row["path"])
            video = video if video.is_absolute() else path.parent / video
            out.append((str(video), row["label"].strip(), (row.get("split") or "test").strip().lower()))
        return out


@register_dataset("folder")
class FolderDataset(Dataset):
    protocols = {"full": ("all",)}
    description = "your own videos: root/<class>/<video>, root/{train,test}/<class>/<video>, or a CSV path,label[,split]"

    def __init__(self, root: str | None = None):
        super().__init__(root)
        if remote.is_uri(root):  # s3://, gs://, file://: listed through pyarrow filesystems
            self.rows = self._scan_uri(str(root))
            if not self.rows:
                raise DataError(f"no videos found under {root} (expected <class>/<video> folders)")
            return
        path = Path(root).expanduser()
        if not path.exists():
            raise root_error(root, "folder", LAYOUT)
        self.rows = self._scan(path)
        if not self.rows:
            raise DataError(f"no videos found under {root} (expected <class>/<video> folders or a CSV path,label)")

    @staticmethod
    def _scan_uri(root: str) -> list[tuple[str, str, str]]:
        """The tree layouts of `_scan` under a URI (videos keep their URIs as manifest paths)."""
        base = root.rstrip("/") + "/"
        rows = []
        for uri in remote.list_files(root, VIDEO_EXTENSIONS):
            parts = uri[len(base):].split("/")
            if len(parts) < 2:
                continue
            top = parts[0].lower()
            if len(parts) >= 3 and top in TRAIN_NAMES | TEST_NAMES:
                rows.append((uri, parts[1], "train" if top in TRAIN_NAMES else "test"))
            else:
                rows.append((uri, parts[0], "test"))
        return rows

    @staticmethod
    def _scan(path: Path) -> list[tuple[str, str, str]]:
        if path.is_file():
            try:
                return _read_csv(path)
            except (UnicodeDecodeError, csv.Error):
                raise DataError(f"--root {path} is a file but not a text CSV: folder looks for a folder holding {LAYOUT}") from None
        subdirs = {p.name.lower(): p for p in path.iterdir() if p.is_dir()}
        if subdirs and set(subdirs) <= TRAIN_NAMES | TEST_NAMES:
            out = []
            for name, sub in subdirs.items():
                split = "train" if name in TRAIN_NAMES else "test"
                out += [(v, c, split) for v, c in _videos_by_class(sub)]
            return out
        return [(v, c, "test") for v, c in _videos_by_class(path)]

    def plan(self, protocol: str, split: str) -> Plan:
        labels = LabelSet(tuple(sorted({c for _, c, _ in self.rows})))
        train_rows = [(v, c) for v, c, s in self.rows if s in TRAIN_NAMES]
        test_rows = [(v, c) for v, c, s in self.rows if s not in TRAIN_NAMES]
        train = None
        if train_rows:
            train = Part("train", make_manifest([v for v, _ in train_rows], [c for _, c in train_rows], labels), labels)
        test = Part("test", make_manifest([v for v, _ in test_rows], [c for _, c in test_rows], labels), labels)
        return Plan(self.name, protocol, split, train, [test], kind="full")
