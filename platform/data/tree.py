"""One listing of a dataset root, a local folder or a URI, that a listed adapter finds its files in.

`Tree.scan` lists the root once: a local folder with `os.walk` (following symlinks, each real
folder once so a loop ends), a URI with one recursive `pyarrow.fs` listing. Hidden files and
folders are left out either way. Paths it hands out are local paths under a local root and URIs
in the root's scheme under a URI root, so a manifest made from them decodes through
`remote.opener`. pyarrow follows the symlinks of a `file://` root without a loop guard; a local
tree with symlink loops should be given as a plain path.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from pathlib import Path

from zsar.data import remote


class Tree:
    """The files of `root`, by folder: folder (a tuple of names below root) -> file names."""

    def __init__(self, root: str, folders: dict[tuple[str, ...], list[str]]):
        self.root = root
        self.folders = folders
        if remote.is_uri(root):
            self._base = remote.resolve(root)[1].rstrip("/")
            self._prefix = remote.uri_of(root, self._base + "/")
        else:
            self._prefix = os.path.join(root, "")

    @classmethod
    def scan(cls, root: str) -> "Tree":
        return cls(root, _list_uri(root) if remote.is_uri(root) else _walk(root))

    def path(self, parts: tuple[str, ...]) -> str:
        """The local path or URI of `parts` below the root."""
        if remote.is_uri(self.root):
            return remote.uri_of(self.root, posixpath.join(self._base, *parts))
        return os.path.join(self.root, *parts)

    def relative(self, path: str) -> str:
        """`path` (one this tree handed out) relative to the root."""
        return path[len(self._prefix):] if path.startswith(self._prefix) else path

    def files(self, extensions: tuple[str, ...] | None = None) -> list[str]:
        """Every file, or those whose extension (any case) is one of `extensions`."""
        return [self.path(folder + (name,)) for folder, names in self.folders.items() for name in names
                if extensions is None or os.path.splitext(name)[1].lower() in extensions]

    def find_files(self, pattern: str, max_depth: int = 3) -> list[str]:
        """Files named like `pattern` (fnmatch) at most `max_depth` folders below the root, sorted."""
        found = [folder + (name,) for folder, names in self.folders.items() if len(folder) <= max_depth
                 for name in names if fnmatch.fnmatch(name, pattern)]
        return [self.path(parts) for parts in sorted(found)]

    def find_dir(self, name: str, max_depth: int = 2) -> str | None:
        """The first folder called `name` at the root or below it (breadth first), or beside it."""
        if self._name() == name:
            return self.root
        found = [f for f in self.folders if 1 <= len(f) <= max_depth and f[-1] == name]
        if found:
            return self.path(min(found, key=lambda f: (len(f), f)))
        beside = self._beside(name)
        return beside if beside is not None and remote.is_dir(beside) else None

    def _name(self) -> str:
        return posixpath.basename(self._base) if remote.is_uri(self.root) else Path(self.root).name

    def _beside(self, name: str) -> str | None:
        if not remote.is_uri(self.root):
            return str(Path(self.root).parent / name)
        parent = posixpath.dirname(self._base)
        return remote.uri_of(self.root, posixpath.join(parent, name)) if parent else None


def _walk(root: str) -> dict[tuple[str, ...], list[str]]:
    folders = {}
    seen = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(folder, root)
        parts = () if rel == os.curdir else tuple(rel.split(os.sep))
        folders[parts] = sorted(f for f in files if not f.startswith("."))
    return folders


def _list_uri(root: str) -> dict[tuple[str, ...], list[str]]:
    import pyarrow.fs as pafs

    fs, base = remote.resolve(root)
    base = base.rstrip("/")
    folders: dict[tuple[str, ...], list[str]] = {(): []}
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        if not info.path.startswith(base + "/"):
            continue
        parts = tuple(info.path[len(base) + 1:].strip("/").split("/"))
        if any(p.startswith(".") for p in parts):
            continue
        if info.type == pafs.FileType.Directory:
            folders.setdefault(parts, [])
        elif info.type == pafs.FileType.File:
            for i in range(1, len(parts)):  # object stores may list no folder entries
                folders.setdefault(parts[:i], [])
            folders.setdefault(parts[:-1], []).append(parts[-1])
    for names in folders.values():
        names.sort()
    return folders
