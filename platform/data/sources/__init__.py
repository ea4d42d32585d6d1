"""Dataset adapters; every module here registers its datasets on import."""

from __future__ import annotations

from pathlib import Path

from zsar.errors import DataError

ARCHIVES = (".zip", ".rar", ".tar", ".gz", ".tgz", ".7z", ".bz2", ".xz")


def root_error(root, dataset: str, layout: str) -> DataError:
    """The one-line error for a `--root` that is not a folder: a path that does not exist, or a
    file (an archive not unpacked, a video, a list) where the adapter wants a folder. It says what
    the adapter looks for (`layout`)."""
    path = Path(str(root)).expanduser()
    if path.is_file():
        unpack = " (unpack the archive and pass the folder)" if path.name.lower().endswith(ARCHIVES) else ""
        return DataError(f"--root {root} is a file, not a folder{unpack}: {dataset} looks for a folder holding {layout}")
    return DataError(f"dataset root not found: {root} ({dataset} looks for a folder holding {layout})")
