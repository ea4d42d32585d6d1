"""The video files of a dataset tree, found by file name, and the problems met while reading it.

Published lists name videos as bare file names (`v_ApplyEyeMakeup_g01_c01.avi`) or with a path
that depends on how the list's authors stored them (`train/…`, `val/…`); `FileIndex.find`
resolves an entry by its basename only, never by its relative path. `Issues` collects what is
wrong (a listed video with no file, two files with one name, an unknown class, ...) so that
`zsar data check` can print every one of them and a run can report their counts.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from zsar.data.dataset import VIDEO_EXTENSIONS

# Kinds of problem. Missing and unreadable files are tolerated up to `--max-failures`; the others
# make a dataset unusable; warnings are reported and change nothing.
FILE_FAILURES = ("missing", "unreadable")
ERRORS = FILE_FAILURES + ("unknown_class", "duplicate", "overlap", "mismatch", "empty", "protocol")


@dataclass(frozen=True, order=True)
class Issue:
    kind: str
    path: str
    reason: str

    @property
    def is_error(self) -> bool:
        return self.kind in ERRORS


class Issues:
    """An ordered, de-duplicated collection of problems."""

    def __init__(self):
        self._items: dict[Issue, None] = {}

    def add(self, kind: str, path: str, reason: str) -> None:
        self._items.setdefault(Issue(kind, str(path), reason), None)

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def counts(self) -> Counter:
        return Counter(i.kind for i in self._items)


def entry_name(entry: str) -> str:
    """The basename of a list entry, whatever separator its authors used."""
    return entry.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


class FileIndex:
    """Every video file under `root`, by file name and by file name without extension."""

    def __init__(self, paths):
        self.by_name: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        for path in sorted(paths):
            name = os.path.basename(path)
            self.by_name.setdefault(name, []).append(path)
            self.by_stem.setdefault(os.path.splitext(name)[0], []).append(path)

    @classmethod
    def scan(cls, root: str | Path, extensions=VIDEO_EXTENSIONS) -> "FileIndex":
        paths = []
        seen_dirs = set()
        for folder, dirs, files in os.walk(root, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen_dirs:  # a symlink loop
                dirs[:] = []
                continue
            seen_dirs.add(real)
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                    paths.append(os.path.join(folder, name))
        return cls(paths)

    def __len__(self) -> int:
        return sum(len(p) for p in self.by_name.values())

    def paths(self) -> list[str]:
        return [p for paths in self.by_name.values() for p in paths]

    def find(self, entry: str) -> str | None:
        """The file a list entry names: same basename, else same name without extension when
        exactly one file has it (a dataset re-encoded to another container)."""
        name = entry_name(entry)
        found = self.by_name.get(name)
        if found:
            return found[0]
        stem, ext = os.path.splitext(name)
        found = self.by_stem.get(stem if ext.lower() in VIDEO_EXTENSIONS else name, [])
        return found[0] if len(found) == 1 else None

    def duplicates(self) -> dict[str, list[str]]:
        return {name: paths for name, paths in self.by_name.items() if len(paths) > 1}

    def report_duplicates(self, issues: Issues) -> None:
        for name, paths in self.duplicates().items():
            for path in paths[1:]:
                issues.add("duplicate", path, f"another file has the same name ({paths[0]}); lists resolve {name} to that one")


def find_files(root: str | Path, pattern: str, max_depth: int = 3) -> list[Path]:
    """Files named like `pattern` (fnmatch) at most `max_depth` folders below `root`, sorted."""
    import fnmatch

    root = Path(root)
    found = []
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        if depth >= max_depth:
            dirs[:] = []
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder) / f for f in files if fnmatch.fnmatch(f, pattern) and not f.startswith(".")]
    return sorted(found)


def find_dir(root: str | Path, name: str, max_depth: int = 2) -> Path | None:
    """The first folder called `name` under `root` (breadth first), or beside it."""
    root = Path(root)
    level = [root]
    for _ in range(max_depth + 1):
        for folder in level:
            if folder.name == name:
                return folder
        level = sorted(p for f in level for p in f.iterdir() if p.is_dir() and not p.name.startswith("."))
    beside = root.parent / name
    return beside if beside.is_dir() else None
