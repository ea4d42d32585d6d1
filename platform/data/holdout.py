"""Honest hyperparameter selection: a validation split carved out of the training classes.

Selecting hyperparameters on the novel test classes is selecting on the test set. With
`selection: val`, a seeded quarter of the training classes is held out as pseudo-novel classes:

- `train`: the training videos of the remaining classes, minus a seeded quarter of each class's
  videos;
- `val_base` (prefix `val_base_`): that quarter, scored against the remaining classes;
- `val_novel` (prefix `val_novel_`): every training video of the held-out classes, scored against
  the held-out classes, never trained on.

`val_hm` (their harmonic mean) is what a sweep selects on; the protocol's own test parts are
evaluated and logged as before. `selection: test` leaves the plan as the protocol made it (for
reproducing papers that selected on the test classes).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from zsar.data.dataset import Part, Plan
from zsar.errors import ConfigError

HELD_OUT_FRACTION = 0.25
VAL_PARTS = ("val_base", "val_novel")


def _rows(manifest: pa.Table, rows: list[int], names: tuple[str, ...]) -> pa.Table:
    """`rows` of `manifest`, relabelled against `names` and renumbered."""
    table = manifest.take(pa.array(rows, pa.int64()))
    lookup = {n: i for i, n in enumerate(names)}
    labels = pa.array([lookup[c] for c in table["class_name"].to_pylist()], pa.int32())
    table = table.set_column(table.schema.get_field_index("label"), "label", labels)
    return table.set_column(table.schema.get_field_index("index"), "index", pa.array(range(len(rows)), pa.int64()))


def split_classes(names: tuple[str, ...], seed: int) -> tuple[list[str], list[str]]:
    """(kept, held out): a seeded quarter of `names` (at least one) held out, in label order."""
    if len(names) < 2:
        raise ConfigError(f"selection=val needs at least 2 training classes to hold some out, got {len(names)}; "
                          "use selection=test")
    count = max(1, int(round(len(names) * HELD_OUT_FRACTION)))
    held = set(np.random.default_rng(seed).choice(len(names), size=count, replace=False).tolist())
    return [n for i, n in enumerate(names) if i not in held], [n for i, n in enumerate(names) if i in held]


def with_validation(plan: Plan, seed: int) -> Plan:
    """The plan with its training part split into train / val_base / val_novel (module docstring)."""
    if plan.train is None:
        raise ConfigError(f"selection=val holds out training classes, and {plan.dataset}/{plan.protocol} has no "
                          "training part; use selection=test")
    train = plan.train
    kept, held = split_classes(train.labels.names, seed)
    classes = train.manifest["class_name"].to_pylist()
    rng = np.random.default_rng(seed + 1)
    train_rows, val_base_rows, val_novel_rows = [], [], []
    for cls in train.labels.names:
        rows = [i for i, c in enumerate(classes) if c == cls]
        if cls in held:
            val_novel_rows += rows
            continue
        rng.shuffle(rows)
        n_val = int(round(len(rows) * HELD_OUT_FRACTION)) if len(rows) > 1 else 0
        val_base_rows += sorted(rows[:n_val])
        train_rows += sorted(rows[n_val:])
    kept_labels, held_labels = train.labels.subset(kept), train.labels.subset(held)
    new_train = Part("train", _rows(train.manifest, sorted(train_rows), kept_labels.names), kept_labels)
    vals = [
        Part("val_base", _rows(train.manifest, val_base_rows, kept_labels.names), kept_labels, prefix="val_base_"),
        Part("val_novel", _rows(train.manifest, val_novel_rows, held_labels.names), held_labels, prefix="val_novel_"),
    ]
    notes = {**plan.notes, "selection": {"held_out_classes": held, "val_base_videos": len(val_base_rows),
                                         "val_novel_videos": len(val_novel_rows), "seed": seed}}
    return dataclasses.replace(plan, train=new_train, evals=vals + list(plan.evals), notes=notes, selection="val")


def apply_selection(plan: Plan, selection: str, seed: int) -> Plan:
    return with_validation(plan, seed) if selection == "val" else dataclasses.replace(plan, selection="test")
