"""Dataset roots and caches that are URIs (`s3://`, `gs://`, `file://`, anything pyarrow's
filesystems know) as well as local paths.

Everything goes through `pyarrow.fs`: `resolve(uri)` gives (filesystem, path), videos are decoded
from a file object opened on that filesystem (PyAV reads from any seekable file object), and
caches write and publish their shards there. A plain path (no scheme) stays a local path, so the
local code paths are unchanged. Credentials come from the environment the way pyarrow reads them
(AWS_* variables, GOOGLE_APPLICATION_CREDENTIALS, instance metadata).
"""

from __future__ import annotations

import os
import posixpath
import re
from urllib.parse import quote

from zsar.errors import DataError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_uri(path) -> bool:
    """True for `scheme://...` (a single letter before the colon is a Windows drive, not a scheme)."""
    return bool(_SCHEME.match(str(path)))


def resolve(uri: str):
    """(pyarrow filesystem, path on it) for a URI or a local path."""
    import pyarrow.fs as pafs

    if not is_uri(uri):
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(str(uri)))
    try:
        return pafs.FileSystem.from_uri(_parseable(str(uri)))
    except Exception as e:  # unknown scheme, missing credentials, a filesystem pyarrow was built without
        raise DataError(f"cannot open {uri}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def _parseable(uri: str) -> str:
    """`uri` with what a URI cannot hold raw percent-encoded (spaces, `#`, `[]`, non-ASCII, a `%`
    that starts no escape). Paths in manifests are `scheme://` + the path as the filesystem names
    it (`uri_of`), and real file names have these (`train/air drumming/...`, HMDB's `Day_#_2`);
    URIs that are already encoded, and `?key=value` options, pass unchanged."""
    scheme, rest = uri.split("://", 1)
    rest = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", rest)
    return scheme + "://" + quote(rest, safe="/:@!$&'()*+,;=?%~")


def join(base: str, *parts: str) -> str:
    """`base` / parts for URIs (forward slashes) and local paths alike."""
    if is_uri(base):
        return posixpath.join(str(base).rstrip("/"), *parts)
    return os.path.join(str(base), *parts)


def uri_of(base: str, path_on_fs: str) -> str:
    """The URI (or local path) of `path_on_fs`, a path on the filesystem that `base` resolves to."""
    if not is_uri(base):
        return path_on_fs
    scheme = str(base).split("://", 1)[0]
    return f"{scheme}://{path_on_fs}"


def open_input(uri: str):
    """A seekable binary file object for `uri` (PyAV decodes from it)."""
    fs, path = resolve(uri)
    return fs.open_input_file(path)


def opener(path: str):
    """`open_fn` for the decoders: None for a local path (PyAV opens it itself), else open_input."""
    return open_input if is_uri(path) else None


def list_files(uri: str, extensions: tuple[str, ...] | None = None) -> list[str]:
    """Every file below `uri` (recursively), as URIs in the same scheme, sorted; only those whose
    name ends in one of `extensions` (case-insensitive) when given."""
    import pyarrow.fs as pafs

    fs, path = resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise DataError(f"dataset root not found: {uri}")
    out = []
    for f in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
        if f.type != pafs.FileType.File:
            continue
        if extensions and not f.path.lower().endswith(tuple(e.lower() for e in extensions)):
            continue
        out.append(uri_of(uri, f.path))
    return sorted(out)


def _file_type(path: str):
    fs, on_fs = resolve(path)
    return fs.get_file_info(on_fs).type


def is_dir(path: str) -> bool:
    import pyarrow.fs as pafs

    return _file_type(path) == pafs.FileType.Directory if is_uri(path) else os.path.isdir(path)


def is_file(path: str) -> bool:
    import pyarrow.fs as pafs

    return _file_type(path) == pafs.FileType.File if is_uri(path) else os.path.isfile(path)


def read_text(path: str) -> str:
    """A small text file (a split list, an annotation CSV or JSON) as UTF-8, line endings as stored."""
    if not is_uri(path):
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    fs, on_fs = resolve(path)
    with fs.open_input_stream(on_fs) as f:
        return f.read().decode("utf-8")
