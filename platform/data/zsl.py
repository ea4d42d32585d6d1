"""Zero-shot skeleton protocols `zsl` and `gzsl`, and the supervised benchmarks (`full`).

A split names its unseen classes (`resources/protocols/skeleton/zsl_splits.json`: SynSE's fixed
splits and SMIE's random ones). Every sample belongs to one half of the dataset's cross-subject
benchmark. Then:

- train: seen classes, cross-subject training half only;
- `zsl_` part: every sample of the unseen classes (both halves), scored among the unseen classes;
- `gzsl` part (protocol `gzsl`): seen-class samples of the held-out half plus every unseen sample,
  scored among all classes; reports `seen`, `unseen`, `h` with calibrated stacking;
- `seen_` part: seen-class samples of the held-out half among the seen classes (what a classifier
  trained on the seen classes, e.g. `stgcn_pretrain`, is scored on).

No unseen class name or sample enters the training part: `Plan` checks it when built, the loop
checks it again, and the runner refuses stage-1 checkpoints trained on an unseen class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from zsar.data.dataset import Part, Plan, make_manifest
from zsar.errors import DataError
from zsar.models.text import LabelSet


@dataclass(frozen=True)
class Sample:
    path: str
    class_name: str
    half: str  # "train" | "test": the benchmark half this sample belongs to
    start: int = 0  # frame segment [start, end) within the file; end -1: to the end
    end: int = -1


def resource_file(*parts: str):
    return resources.files("zsar.resources").joinpath(*parts)


def split_table() -> dict:
    return json.loads(resource_file("protocols", "skeleton", "zsl_splits.json").read_text())["splits"]


def splits_for(dataset: str) -> tuple[str, ...]:
    return tuple(name for name, s in split_table().items() if s["dataset"] == dataset)


def unseen_of(split: str, labels: LabelSet) -> list[str]:
    spec = split_table()[split]
    return [labels.names[i] for i in spec["unseen"]]


def skeleton_labels(labels_file: str, descriptions_file: str | None = None) -> LabelSet:
    """Class names (a trailing full stop removed) with one description sentence each."""
    names = [n.strip().rstrip(".").strip() for n in resource_file("labels", labels_file).read_text().splitlines() if n.strip()]
    descriptions = None
    if descriptions_file:
        lines = [d.strip() for d in resource_file("descriptions", "skeleton", descriptions_file).read_text().splitlines() if d.strip()]
        if len(lines) != len(names):
            raise ValueError(f"{descriptions_file}: {len(lines)} descriptions for {len(names)} classes")
        descriptions = tuple((d,) for d in lines)
    return LabelSet(tuple(names), descriptions)


def _manifest(samples: list[Sample], labels: LabelSet):
    return make_manifest([s.path for s in samples], [s.class_name for s in samples], labels,
                         start=[s.start for s in samples], end=[s.end for s in samples])


def zsl_plan(dataset: str, protocol: str, split: str, labels: LabelSet, samples: list[Sample],
             unseen: list[str], notes: dict | None = None) -> Plan:
    """The `zsl` or `gzsl` plan (see the module docstring)."""
    unknown = sorted(set(unseen) - set(labels.names))
    if unknown:
        raise DataError(f"split {split}: unseen classes not in the label set: {unknown[:5]}")
    held_out = set(unseen)
    seen_names = [n for n in labels.names if n not in held_out]
    seen_labels = labels.subset(seen_names)
    unseen_labels = labels.subset([n for n in labels.names if n in held_out])
    train = [s for s in samples if s.class_name not in held_out and s.half == "train"]
    seen_test = [s for s in samples if s.class_name not in held_out and s.half != "train"]
    unseen_all = [s for s in samples if s.class_name in held_out]
    evals = [Part("unseen", _manifest(unseen_all, unseen_labels), unseen_labels, prefix="zsl_")]
    if protocol == "gzsl":
        evals.append(Part("gzsl", _manifest(seen_test + unseen_all, labels), labels, prefix="", seen=tuple(seen_names)))
    evals.append(Part("seen", _manifest(seen_test, seen_labels), seen_labels, prefix="seen_"))
    notes = {**(notes or {}), "unseen_classes": list(unseen_labels.names), "seen_classes": len(seen_names)}
    return Plan(dataset, protocol, split, Part("train", _manifest(train, seen_labels), seen_labels), evals,
                kind=protocol, notes=notes, unseen=tuple(unseen_labels.names))


def full_plan(dataset: str, split: str, labels: LabelSet, samples: list[Sample], notes: dict | None = None) -> Plan:
    """A supervised benchmark (cross-subject, cross-view, cross-setup): all classes."""
    train = [s for s in samples if s.half == "train"]
    test = [s for s in samples if s.half != "train"]
    return Plan(dataset, "full", split, Part("train", _manifest(train, labels), labels),
                [Part("test", _manifest(test, labels), labels)], kind="full", notes=dict(notes or {}))
