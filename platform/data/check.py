"""`zsar data check`: validate a dataset tree against its protocols without training.

Builds every plan asked for (one protocol and split, or all of them), then decodes a few frames of
every video those plans use with the pre-flight probe (zsar.data.probe, cached by path, size and
mtime). Reports every problem on its own line (`kind  path: reason`): files a list or annotation
names that are not there, files that do not decode, files cut short (`truncated`, a warning: the
header's frame count and the count that decodes; runs sample within the latter), list entries of unknown
classes, duplicates, a video or class on both sides of a split, a list that disagrees with the
dataset about a class, parts left empty. Then a summary. An evaluation video with the same size and
the same first MB as a training video of the same plan, under another name, is flagged
(`same_content`, a warning: a human decides whether it is a copy).

Exit status: 0 when the dataset is usable, 1 when it is not: any structural problem, or more
missing + unreadable videos than `max_failures` (a fraction of the videos the plans name; Kinetics
downloads always miss some, so `--max-failures 0.1` is a sensible choice there).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from zsar.data.files import FILE_FAILURES, Issues
from zsar.data.probe import probe_all
from zsar.errors import DataError, ZsarError
from zsar.registry import DATASETS


@dataclass
class CheckReport:
    dataset: str
    root: str
    plans: list = field(default_factory=list)  # (protocol, split, {part: (videos, classes)})
    issues: Issues = field(default_factory=Issues)
    videos: int = 0  # distinct videos the plans use
    decoded: bool = True
    max_failures: float = 0.0

    @property
    def failures(self) -> int:
        return sum(1 for i in self.issues if i.kind in FILE_FAILURES)

    @property
    def named(self) -> int:
        """Videos the plans name: those found plus those missing."""
        return self.videos + sum(1 for i in self.issues if i.kind == "missing")

    @property
    def structural(self) -> int:
        return sum(1 for i in self.issues if i.is_error and i.kind not in FILE_FAILURES)

    @property
    def usable(self) -> bool:
        if not self.plans or self.structural:
            return False
        return self.failures <= self.max_failures * max(self.named, 1)

    def summary(self) -> str:
        """One line: how many videos were checked and what was found, e.g. `15 videos checked by
        decoding: 12 decode, 3 unreadable; other problems: 2 missing`."""
        counts = self.issues.counts()
        if self.decoded:
            bad = counts.pop("unreadable", 0)
            checked = f"{self.videos} videos checked by decoding: {self.videos - bad} decode, {bad} unreadable"
        else:
            checked = f"{self.videos} videos found (not decoded: --no-decode)"
        others = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        return checked + (f"; other problems: {others}" if others else "; no other problems")

    def print(self, out=None) -> None:
        out = sys.stdout if out is None else out
        for issue in sorted(self.issues, key=lambda i: (not i.is_error, i.kind, i.path)):
            print(f"{issue.kind:<13} {issue.path}: {issue.reason}", file=out)
        print(f"\n{self.dataset} at {self.root}", file=out)
        for protocol, split, parts in self.plans:
            shown = ", ".join(f"{name} {v} videos / {c} classes" for name, (v, c) in parts.items())
            print(f"  {protocol}/{split}: {shown}", file=out)
        print(f"  {self.summary()}", file=out)
        if self.usable:
            print("usable" + (f" ({self.failures} of {self.named} videos missing or unreadable)" if self.failures else ""), file=out)
        else:
            why = []
            if not self.plans:
                why.append("no protocol split could be built")
            if self.structural:
                why.append(f"{self.structural} structural problems")
            if self.failures > self.max_failures * max(self.named, 1):
                why.append(f"{self.failures} of {self.named} videos missing or unreadable (allowed: --max-failures {self.max_failures:g})")
            print("UNUSABLE: " + "; ".join(why), file=out)


HASHED_BYTES = 1 << 20


def _sizes(paths: list[str]) -> dict[str, int]:
    """Size of each file that exists (one listing call per filesystem for URIs)."""
    import os

    from zsar.data import remote

    out = {}
    local = [p for p in paths if not remote.is_uri(p)]
    for p in local:
        try:
            out[p] = os.path.getsize(p)
        except OSError:
            pass
    uris = [p for p in paths if remote.is_uri(p)]
    if uris:
        fs, _ = remote.resolve(uris[0])
        infos = fs.get_file_info([remote.resolve(u)[1] for u in uris])
        out.update({u: i.size for u, i in zip(uris, infos) if i.size is not None})
    return out


def _head_hash(path: str) -> str | None:
    import hashlib

    from zsar.data import remote

    try:
        with (remote.open_input(path) if remote.is_uri(path) else open(path, "rb")) as f:
            return hashlib.sha256(f.read(HASHED_BYTES)).hexdigest()
    except OSError:
        return None


def same_content_across(sides: list[tuple[str, list[str], list[str]]]) -> list[tuple[str, str, str]]:
    """(plan, evaluation video, training video) for every evaluation video whose content equals a
    training video's of the same plan under another name: same size and same hash of the first MB.
    Sizes are compared first, so only files that share a size are read."""
    all_paths = list(dict.fromkeys(p for _, train, evals in sides for p in train + evals))
    sizes = _sizes(all_paths)
    hashes: dict[str, str | None] = {}

    def key(path: str):
        if path not in hashes:
            hashes[path] = _head_hash(path)
        return sizes[path], hashes[path]

    found, flagged = [], set()
    for where, train, evals in sides:
        train_sizes = {sizes[p] for p in train if sizes.get(p)}  # empty files are all alike: decoding reports them
        candidates = [p for p in evals if sizes.get(p) in train_sizes]
        if not candidates:
            continue
        by_key = {key(p): p for p in train if sizes.get(p) in {sizes[c] for c in candidates}}
        for path in candidates:
            twin = by_key.get(key(path))
            if twin is not None and twin != path and key(path)[1] is not None and path not in flagged:
                flagged.add(path)
                found.append((where, path, twin))
    return found


def check_dataset(dataset: str, root: str | None, protocol: str | None = None, split: str | None = None, *,
                  frames: int = 3, jobs: int = 8, decode: bool = True, max_failures: float = 0.0,
                  progress=None) -> CheckReport:
    cls = DATASETS.get(dataset)
    if protocol is not None:
        cls.check_protocol(protocol, split)
    elif split is not None:
        raise ZsarError("--split needs --protocol")
    ds = cls(root)
    ds.quiet = True
    report = CheckReport(dataset, str(getattr(ds, "root", root)), decoded=decode, max_failures=max_failures)
    issues = getattr(ds, "issues", None)
    report.issues = issues if issues is not None else Issues()
    wanted = [protocol] if protocol else list(cls.protocols)
    paths: dict[str, None] = {}
    sides: list[tuple[str, list[str], list[str]]] = []  # (plan, training videos, evaluation videos)
    for proto in wanted:
        splits = cls.protocols[proto] if split in (None, "all") else (split,)
        for s in splits:
            try:
                plan = ds.plan(proto, s)
            except DataError as e:
                report.issues.add("protocol", f"{proto}/{s}", str(e))
                continue
            parts = ([plan.train] if plan.train is not None else []) + list(plan.evals)
            report.plans.append((proto, s, {p.name: (len(p), len(p.labels)) for p in parts}))
            for part in parts:
                if len(part) == 0:
                    report.issues.add("empty", f"{proto}/{s}/{part.name}", "no video of this part was found")
                paths.update(dict.fromkeys(part.manifest["path"].to_pylist()))
            if plan.train is not None:
                sides.append((f"{proto}/{s}", plan.train.manifest["path"].to_pylist(),
                              [p for e in plan.evals for p in e.manifest["path"].to_pylist()]))
    report.videos = len(paths)
    for where, path, twin in same_content_across(sides):
        report.issues.add("same_content", path, f"{where}: the same size and first MB as the training video {twin} "
                                                "(a copy under another name would leak a test video into training)")
    if decode and paths:
        for path, result in probe_all(paths, frames=frames, jobs=jobs, use_ray=False, progress=progress).items():
            if result["status"] == "bad":
                report.issues.add("unreadable", path, result["reason"])
            elif result["status"] == "truncated":
                report.issues.add("truncated", path, result["reason"] + " (sampled within the frames that decode)")
    return report
