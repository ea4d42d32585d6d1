"""The published protocols as data: which videos train, which evaluate, against which classes.

A protocol split becomes a `ProtocolSpec`: a training part and evaluation parts, each with its
label set (display names, `zsar.data.classnames`) and either the entries of a published list or
"every video of these classes". Adapters (`zsar.data.listed`) turn a spec into a `Plan` by
resolving each entry by file basename against the dataset tree.

- `base2novel` (s1..s3): ViFi-CLIP's lists for hmdb51, ucf101, ssv2, kinetics400. Train on the
  16-shot base list; evaluate `base_val` against the base names and `novel_val` against the
  novel names. List label ids are local to `*_base_labels.csv` / `*_novel_labels.csv`.
- `zeroshot`: UCF-101 / HMDB-51 test splits 1..3 (`ucf_splits/val{N}.txt`, the official test
  lists, against all classes) and `full` (every video of the dataset); Kinetics-600's three
  160-class splits (`ZS_split{N}_K600*`), whose classes must not be Kinetics-400 classes.
- `cezsar` (ucf101): CEZSAR's class splits `truezsl`, `truezsl2`, `hard`, `semantic_gap`, and
  `random50_r1..r10` (ours: 50 test classes drawn per run by a fixed hash, 51 train classes).
  A class listed on both sides is removed from training; a class listed twice counts once; both
  are recorded in the plan's notes.
- `cezsar_captions` (activitynet_captions, CEZSAR's published regime) has no shipped list: its
  adapter builds it from the caption files (`zsar.data.sources.activitynet`).

Leakage: `assert_disjoint` raises `DataError` when a test class would reach training; it runs for
every split built here, and `zsar.data.listed` checks the resolved videos again.

ViFi-CLIP's HMDB-51 label CSVs are sorted with spaces ("kick ball" < "kick") while its lists number
classes in folder order ("kick" < "kick_ball"): read as written they swap kick / kick ball and
sword / sword exercise. Their ids are read in folder order here (`FOLDER_ORDER`), which the
tests check against the class embedded in every HMDB file name.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from zsar.data.classnames import class_key, overlap, vocab
from zsar.data.files import Issues
from zsar.errors import DataError
from zsar.resources import resource

VIDEO = resource("protocols", "video")  # tests point this at a doctored copy

BASE2NOVEL_SPLITS = ("s1", "s2", "s3")
TEST_SPLITS = ("split1", "split2", "split3")
CEZSAR_FILES = {
    "truezsl": "ucf101_truezsl_splits.json",
    "truezsl2": "ucf101_truezsl2.0_splits.json",
    "hard": "ucf101_hard_cases_splits.json",
    "semantic_gap": "ucf101_semantic_gap_cases_splits.json",
}
RANDOM50 = tuple(f"random50_r{i}" for i in range(1, 11))
CEZSAR_SPLITS = tuple(CEZSAR_FILES) + RANDOM50

# dataset -> (folder under base2novel_splits/, label CSV prefix under labels/)
BASE2NOVEL_LISTS = {
    "hmdb51": ("hmdb_splits", "hmdb_51"),
    "ucf101": ("ucf_splits", "ucf_101"),
    "ssv2": ("ssv2_splits", "ssv2_174"),
    "kinetics400": ("k400_splits", "kinetics_400"),
}
ZEROSHOT_LISTS = {"ucf101": ("ucf_splits", "ucf_101_labels.csv"), "hmdb51": ("hmdb_splits", "hmdb_51_labels.csv")}
FOLDER_ORDER = {"hmdb51"}


@dataclass(frozen=True)
class Entry:
    name: str  # as the list writes it
    cls: str | None  # display name the list gives (None: the list names no class)
    where: str  # "file.txt:12", for messages


@dataclass
class PartSpec:
    name: str
    classes: tuple[str, ...]  # the label set, display names
    entries: list[Entry] | None  # None: every video of these classes in the dataset tree
    prefix: str = ""
    unseen: bool = False  # its classes must never reach training
    split: str | None = None  # with entries=None: only the dataset's own videos of this split


@dataclass
class ProtocolSpec:
    train: PartSpec | None
    evals: list[PartSpec]
    kind: str = "full"
    notes: dict = field(default_factory=dict)


def assert_disjoint(train_names, test_names, what: str) -> None:
    """No test class may reach training (same key = same class)."""
    leaked = overlap(train_names, test_names)
    if leaked:
        shown = ", ".join(leaked[:8]) + (" ..." if len(leaked) > 8 else "")
        raise DataError(f"leakage in {what}: {len(leaked)} test classes are training classes too: {shown}")


# ---------------------------------------------------------------- shipped files


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(VIDEO))
    except ValueError:
        return path.name


def label_names(dataset: str, csv_name: str) -> list[str]:
    """Display names by label id of a ViFi-CLIP label CSV (`id,name`)."""
    path = VIDEO / "labels" / csv_name
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ids = [int(r["id"]) for r in rows]
    if ids != list(range(len(rows))):
        raise DataError(f"{_rel(path)}: ids are not 0..{len(rows) - 1} in order")
    v = vocab(dataset)
    names = [v.resolve(r["name"], where=_rel(path)) for r in rows]
    if dataset in FOLDER_ORDER:
        names = sorted(names, key=lambda n: n.replace(" ", "_"))
    return names


def read_list(path: Path, names: list[str] | None, issues: Issues) -> list[Entry]:
    """`<video> <label id>` lines; ids index `names`. A repeated video counts once."""
    entries, seen, rel = [], set(), _rel(path)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{rel}:{n}"
        cls = None
        if names is not None and len(parts) > 1:
            label = int(parts[-1]) if parts[-1].lstrip("-").isdigit() else -1
            if not 0 <= label < len(names):
                issues.add("unknown_class", parts[0], f"{where}: label id {parts[-1]} is not one of the {len(names)} classes")
                continue
            cls = names[label]
        name = " ".join(parts[:-1]) if len(parts) > 1 else parts[0]
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        if base in seen:
            issues.add("duplicate", name, f"{where}: listed twice")
            continue
        seen.add(base)
        entries.append(Entry(name, cls, where))
    return entries


# ---------------------------------------------------------------- protocols


def base2novel(dataset: str, split: str, issues: Issues) -> ProtocolSpec:
    folder, prefix = BASE2NOVEL_LISTS[dataset]
    lists = VIDEO / "datasets_splits" / "base2novel_splits" / folder
    base = label_names(dataset, f"{prefix}_base_labels.csv")
    novel = label_names(dataset, f"{prefix}_novel_labels.csv")
    assert_disjoint(base, novel, f"{dataset} base2novel (base vs novel label lists)")
    shots = BASE2NOVEL_SPLITS.index(split) + 1
    return ProtocolSpec(
        train=PartSpec("train", tuple(base), read_list(lists / f"fs_base_s{shots}_train.txt", base, issues)),
        evals=[
            PartSpec("base", tuple(base), read_list(lists / "base_val.txt", base, issues), prefix="base_"),
            PartSpec("novel", tuple(novel), read_list(lists / "novel_val.txt", novel, issues), prefix="novel_", unseen=True),
        ],
        kind="base2novel",
        notes={"lists": [f"base2novel_splits/{folder}/fs_base_s{shots}_train.txt", "base_val.txt", "novel_val.txt"]},
    )


def zeroshot(dataset: str, split: str, issues: Issues) -> ProtocolSpec:
    """An evaluation-only split of a zero-shot target (the model trained on Kinetics-400)."""
    if dataset == "kinetics600":
        n = TEST_SPLITS.index(split) + 1
        names = label_names(dataset, f"ZS_split{n}_K600.csv")
        assert_disjoint(vocab("kinetics400").names, names, f"kinetics600 zeroshot {split} (vs Kinetics-400)")
        path = VIDEO / "datasets_splits" / "k600_splits" / f"ZS_split{n}_K600_eval.txt"
        test = PartSpec("test", tuple(names), read_list(path, names, issues), unseen=True)
        return ProtocolSpec(None, [test], kind="full", notes={"lists": [_rel(path)], "trained_on": "kinetics400"})
    all_classes = vocab(dataset).names
    if split == "full":
        return ProtocolSpec(None, [PartSpec("test", all_classes, None, unseen=True)], kind="full", notes={"lists": []})
    folder, csv_name = ZEROSHOT_LISTS[dataset]
    names = label_names(dataset, csv_name)
    path = VIDEO / "datasets_splits" / folder / f"val{TEST_SPLITS.index(split) + 1}.txt"
    test = PartSpec("test", all_classes, read_list(path, names, issues), unseen=True)
    return ProtocolSpec(None, [test], kind="full", notes={"lists": [_rel(path)]})


def cezsar_classes(split: str) -> tuple[list[str], list[str], dict]:
    """(training classes, test classes, notes) of a CEZSAR class split of UCF-101."""
    v = vocab("ucf101")
    if split in RANDOM50:
        run = RANDOM50.index(split) + 1
        order = sorted(v.names, key=lambda n: hashlib.sha256(f"cezsar-random50-r{run}/{class_key(n)}".encode()).hexdigest())
        test = sorted(order[:50], key=v.names.index)
        train = [n for n in v.names if n not in set(test)]
        return train, test, {"random50": f"run {run}: 50 test classes ranked by sha256('cezsar-random50-r{run}/<class key>')"}
    path = VIDEO / "cezsar" / CEZSAR_FILES[split]
    data = json.loads(path.read_text(encoding="utf-8"))
    where = _rel(path)
    train_raw = [v.resolve(n, where) for n in data["training"]]
    test_raw = [v.resolve(n, where) for n in data["testing"]]
    train = list(dict.fromkeys(train_raw))
    test = list(dict.fromkeys(test_raw))
    notes = {"list": where}
    repeated = sorted({n for side in (train_raw, test_raw) for n in side if side.count(n) > 1})
    if repeated:
        notes["listed_twice_on_one_side"] = repeated
    both = overlap(test, train)
    if both:
        train = [n for n in train if n not in set(both)]
        notes["removed_from_training"] = {"classes": both, "reason": "listed as training and as test classes; kept as test classes"}
    assert_disjoint(train, test, f"ucf101 cezsar {split}")
    return train, test, notes


def cezsar(split: str, issues: Issues) -> ProtocolSpec:
    train, test, notes = cezsar_classes(split)
    path = VIDEO / "cezsar" / "ucf101_dataset.json"
    v = vocab("ucf101")
    videos: dict[str, list[str]] = {}
    rel = _rel(path)
    for cls, ids in json.loads(path.read_text(encoding="utf-8")).items():
        videos[v.resolve(cls, rel)] = ids

    def entries(classes):
        return [Entry(vid, c, f"{rel}[{c}]") for c in classes for vid in videos.get(c, [])]

    return ProtocolSpec(
        train=PartSpec("train", tuple(train), entries(train)),
        evals=[PartSpec("test", tuple(test), entries(test), unseen=True)],
        kind="full",
        notes={**notes, "train_classes": len(train), "test_classes": len(test)},
    )

