"""Dataset adapters and what a protocol produces: a Plan of manifests and label sets.

A manifest is a pyarrow table with one row per video: `path` (local path or URI), `label` (index
into its part's label set), `class_name`, `index` (row id, unique within the part). A Plan says
which part trains and which parts evaluate, each with the label set it is scored against; the
metric names follow from each part's prefix (DESIGN.md, Metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pyarrow as pa

from zsar.errors import DataError, ZsarError
from zsar.models.text import LabelSet

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".ogv")


def make_manifest(paths: Sequence[str], class_names: Sequence[str], labels: LabelSet, **extra) -> pa.Table:
    """Rows for `paths` labelled by position of their class in `labels`."""
    if len(paths) != len(class_names):
        raise ValueError("paths and class_names differ in length")
    lookup = {n: i for i, n in enumerate(labels.names)}
    unknown = sorted(set(class_names) - set(lookup))
    if unknown:
        raise ValueError(f"classes not in the label set: {unknown[:5]}")
    columns = {
        "path": pa.array(list(paths), pa.string()),
        "label": pa.array([lookup[c] for c in class_names], pa.int32()),
        "class_name": pa.array(list(class_names), pa.string()),
        "index": pa.array(range(len(paths)), pa.int64()),
    }
    for key, values in extra.items():
        columns[key] = pa.array(list(values))
    return pa.table(columns)


@dataclass
class Part:
    """One manifest with the label set it is trained or scored against."""

    name: str
    manifest: pa.Table
    labels: LabelSet
    prefix: str = ""  # metric prefix: "base_", "novel_", "ucf101/split1/", ""
    # GZSL parts: the classes among `labels` that were seen in training. Their scores are lowered
    # by `gzsl_gamma` (calibrated stacking) and the part also reports `seen`, `unseen` and `h`.
    seen: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return self.manifest.num_rows


@dataclass
class Plan:
    dataset: str
    protocol: str
    split: str
    train: Part | None
    evals: list[Part]
    kind: str = "full"  # "full" | "base2novel" | "targets" | "zsl" | "gzsl": decides the derived metrics
    notes: dict = field(default_factory=dict)  # logged with the run (overlaps, filtered classes)
    selection: str = "test"
    unseen: tuple[str, ...] = ()  # zero-shot classes: never in any training stage

    def __post_init__(self):
        self.check_no_unseen_in_training()

    def check_no_unseen_in_training(self) -> None:
        """Raise if an unseen class name or sample is part of the training part."""
        if not self.unseen or self.train is None:
            return
        held_out = set(self.unseen)
        leaked = held_out & (set(self.train.labels.names) | set(self.train.manifest["class_name"].to_pylist()))
        if leaked:
            raise DataError(f"{self.dataset}/{self.protocol}/{self.split}: unseen classes in training: {sorted(leaked)[:5]}")


class Dataset:
    """Base class of dataset adapters. Subclasses register with `@register_dataset(name)`."""

    name = ""
    modality = "video"
    protocols: dict[str, tuple[str, ...]] = {"full": ("all",)}
    config_defaults: dict = {}
    protocol_defaults: dict[str, dict] = {}  # config defaults that apply under one protocol only
    variant_splits: dict[str, tuple[str, ...]] = {}  # splits `--split all` leaves out (e.g. zeroshot `full`)
    needs_root = True
    description = ""

    def __init__(self, root: str | None = None):
        if root is None and self.needs_root:
            raise ZsarError(f"dataset '{self.name}' needs --root DIR (the folder you downloaded it to)")
        self.root = root

    @classmethod
    def check_protocol(cls, protocol: str, split: str | None) -> str:
        """The split to use; a clear error for a protocol or split the dataset does not have."""
        if protocol not in cls.protocols:
            raise ZsarError(
                f"dataset '{cls.name}' has no protocol '{protocol}'; its protocols: {', '.join(cls.protocols)}"
            )
        splits = cls.protocols[protocol]
        if split is None:
            return splits[0]
        if split != "all" and split not in splits:
            raise ZsarError(f"protocol '{protocol}' of '{cls.name}' has no split '{split}'; its splits: {', '.join(splits)}, all")
        return split

    @classmethod
    def splits_for_all(cls, protocol: str) -> tuple[str, ...]:
        """The splits `--split all` runs and averages."""
        skip = set(cls.variant_splits.get(protocol, ()))
        return tuple(s for s in cls.protocols[protocol] if s not in skip)

    def plan(self, protocol: str, split: str) -> Plan:
        raise NotImplementedError

    @classmethod
    def summary(cls) -> str:
        protos = "; ".join(f"{p} [{', '.join(s)}]" for p, s in cls.protocols.items())
        return f"{cls.name:<14} {cls.modality:<9} {protos}"
