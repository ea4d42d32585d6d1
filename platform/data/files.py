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
    """Video files (those of a `Tree`), by file name and by file name without extension."""

    def __init__(self, paths):
        self.by_name: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        for path in sorted(paths):
            name = os.path.basename(path)
            self.by_name.setdefault(name, []).append(path)
            self.by_stem.setdefault(os.path.splitext(name)[0], []).append(path)

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
