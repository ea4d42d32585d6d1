"""Adapters for datasets read in their native layout, whose protocols are published lists.

A subclass lists its root once (`Tree`: a local folder or a URI), finds its videos by name in it
(`FileIndex`), knows each file's own class where the dataset says it (class folder, annotation
file) and its own split, and describes its `full` protocol; the shipped-list protocols
(`zsar.data.protocols`) are shared. `realize` turns a `ProtocolSpec` into a `Plan`:

- each list entry is resolved by basename; an entry with no file is left out, counted in the
  plan's notes and recorded as an issue (`zsar data check` prints them);
- a video's class is the dataset's own where it has one, else the list's; a disagreement is
  recorded (`mismatch`) and the dataset's class wins;
- leakage is checked on what was resolved: a training video of an unseen class, or one video in
  training and evaluation, raises `DataError`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from zsar.data import protocols, remote
from zsar.data.classnames import class_key, vocab
from zsar.data.dataset import VIDEO_EXTENSIONS, Dataset, Part, Plan, make_manifest
from zsar.data.files import FileIndex, Issues
from zsar.data.sources import root_error
from zsar.data.tree import Tree
from zsar.errors import DataError
from zsar.models.text import LabelSet


class ListedDataset(Dataset):
    modality = "video"
    # splits that `--split all` leaves out: variants, not repeats of one measurement
    variant_splits: dict[str, tuple[str, ...]] = {"zeroshot": ("full",)}

    quiet = False  # `zsar data check` silences the per-plan warnings (it prints every issue)

    def __init__(self, root: str | None = None):
        super().__init__(root)
        self.root = str(root) if remote.is_uri(root) else str(Path(root).expanduser())
        layout = self.description.split(": ", 1)[-1]
        if not remote.is_dir(self.root):
            raise root_error(root, self.name, layout)
        self.vocab = vocab(self.name)
        self.issues = Issues()
        self.tree = Tree.scan(self.root)
        self.index = FileIndex(self.tree.files(VIDEO_EXTENSIONS))
        if not self.index.paths():
            raise DataError(f"no video file ({', '.join(VIDEO_EXTENSIONS)}) under {root}: {self.name} looks for {layout}")
        self.index.report_duplicates(self.issues)
        self.scan()

    # ---------------------------------------------------------------- what a subclass provides

    def scan(self) -> None:
        """Read the dataset's own annotations (after `self.tree` and `self.index` are built)."""

    def class_of(self, path: str) -> str | None:
        """The dataset's own class of a file (display name), or None when it does not say."""
        return None

    def videos(self) -> list[tuple[str, str, str | None]]:
        """(path, class, own split or None) of every file whose class the dataset gives."""
        out = []
        for path in self.index.paths():
            cls = self.class_of(path)
            if cls is not None:
                out.append((path, cls, None))
        return out

    def full_spec(self, split: str) -> protocols.ProtocolSpec:
        raise NotImplementedError

    # ---------------------------------------------------------------- protocols

    def spec(self, protocol: str, split: str) -> protocols.ProtocolSpec:
        if protocol == "full":
            return self.full_spec(split)
        if protocol == "base2novel":
            return protocols.base2novel(self.name, split, self.issues)
        if protocol == "zeroshot":
            return protocols.zeroshot(self.name, split, self.issues)
        if protocol == "cezsar":
            return protocols.cezsar(split, self.issues)
        raise DataError(f"dataset '{self.name}' has no protocol '{protocol}'")

    def plan(self, protocol: str, split: str) -> Plan:
        if self.check_protocol(protocol, split) == "all":
            raise DataError(f"{self.name}: a plan is for one split; `all` means {', '.join(self.splits_for_all(protocol))}")
        return self.realize(protocol, split, self.spec(protocol, split))

    def realize(self, protocol: str, split: str, spec: protocols.ProtocolSpec) -> Plan:
        what = f"{self.name} {protocol}/{split}"
        unseen = {class_key(c) for p in spec.evals if p.unseen for c in p.classes}
        if spec.train is not None:
            protocols.assert_disjoint(spec.train.classes, [c for p in spec.evals if p.unseen for c in p.classes], what)
        notes = dict(spec.notes)
        train = self._part(spec.train, what, notes, unseen) if spec.train is not None else None
        evals = [self._part(p, what, notes, set()) for p in spec.evals]
        if train is not None:
            train_paths = set(train.manifest["path"].to_pylist())
            for part in evals:
                shared = sorted(train_paths & set(part.manifest["path"].to_pylist()))
                if shared:
                    raise DataError(f"leakage in {what}: {len(shared)} videos are in training and in '{part.name}', e.g. {shared[0]}")
        return Plan(self.name, protocol, split, train, evals, kind=spec.kind, notes=notes)

    def _part(self, spec: protocols.PartSpec, what: str, notes: dict, unseen: set[str]) -> Part:
        labels = LabelSet(tuple(spec.classes))
        allowed = set(spec.classes)
        paths, names = [], []
        if spec.entries is None:
            for path, cls, own_split in self.videos():
                if cls in allowed and (spec.split is None or own_split == spec.split):
                    paths.append(path)
                    names.append(cls)
        else:
            missing, taken = 0, set()
            for entry in spec.entries:
                path = self.index.find(entry.name)
                if path is None:
                    missing += 1
                    self.issues.add("missing", entry.name, f"listed in {entry.where}; no file of this name under {self.root}")
                    continue
                own = self.class_of(path)
                if own is not None and entry.cls is not None and own != entry.cls:
                    self.issues.add("mismatch", path, f"{entry.where} says '{entry.cls}', the dataset says '{own}' (using '{own}')")
                cls = own or entry.cls
                if cls is None:
                    self.issues.add("unknown_class", path, f"listed in {entry.where}, which names no class, and the dataset gives none")
                    continue
                if unseen and class_key(cls) in unseen:
                    raise DataError(f"leakage in {what}: {path} (class '{cls}', a test class) is listed for training in {entry.where}")
                if cls not in allowed:
                    self.issues.add("protocol", path, f"class '{cls}' is not in the '{spec.name}' label set of {what} ({entry.where})")
                    continue
                if path in taken:
                    self.issues.add("duplicate", path, f"{entry.where}: names a file already in '{spec.name}'")
                    continue
                taken.add(path)
                paths.append(path)
                names.append(cls)
            if missing:
                notes.setdefault("missing", {})[spec.name] = {"missing": missing, "listed": len(spec.entries)}
                if not self.quiet:
                    print(
                        f"[zsar] warning: {what} '{spec.name}': {missing} of {len(spec.entries)} listed videos have no file "
                        f"under {self.root} (left out; `zsar data check` lists them)",
                        file=sys.stderr,
                    )
        return Part(spec.name, make_manifest(paths, names, labels), labels, prefix=spec.prefix)


def folder_classes(dataset) -> None:
    """Map every video folder to its class; report folders that are not classes (once each)."""
    dataset._folder_class = {}
    for path in dataset.index.paths():
        folder = os.path.dirname(path)
        if folder in dataset._folder_class:
            continue
        cls = dataset.vocab.get(os.path.basename(folder))
        dataset._folder_class[folder] = cls
        if cls is None:
            dataset.issues.add("unknown_class", folder, f"folder '{os.path.basename(folder)}' is not a {dataset.name} class; its videos have no class")
