"""Paper-style tables from run records: base-to-novel, zero-shot, skeleton ZSL/GZSL.

A row is one (dataset, method, selection) — the `selection` tag says whether the run's numbers
were selected on validation or test data, and rows with different selections are never merged.
A cell holds a value (and a std where it is a mean over splits) and the ids of the runs it came
from. When several finished runs fill the same cell, the newest one is used. A cell with no run
behind it is kept and marked missing, with the reason; a method is never dropped.

Means over splits follow the papers' tables: accuracies are averaged over the splits with the
population std (`zsar.train.metrics.mean_std`, ddof=0), and the HM (or GZSL H) of a mean column is
the harmonic mean of the mean Base and mean Novel (seen, unseen) next to it, so every row's HM
agrees with its own Base and Novel. A mean needs every split: with one missing it is marked
missing ("2/3 splits").
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from zsar.report.collect import RunRecord
from zsar.train.metrics import harmonic_mean, mean_std

B2N_SPLITS = ("s1", "s2", "s3")
B2N_METRICS = (("Base", "base_top1"), ("Novel", "novel_top1"), ("HM", "hm"))
GZSL_METRICS = (("S", "seen"), ("U", "unseen"), ("H", "h"))
TARGET_METRIC = re.compile(r"^([^/]+)/([^/]+)/top1$")
FAMILY = re.compile(r"^(.*)_r\d+$")
MEAN = "mean"


@dataclass
class Cell:
    value: float | None = None
    std: float | None = None
    runs: tuple[str, ...] = ()
    note: str = ""  # why a cell is missing; "published" for numbers from a paper

    @property
    def missing(self) -> bool:
        return self.value is None or (isinstance(self.value, float) and math.isnan(self.value))

    def text(self) -> str:
        if self.missing:
            return f"— ({self.note})" if self.note else "—"
        return f"{self.value:.2f}" + (f" ± {self.std:.2f}" if self.std is not None else "")


@dataclass
class Row:
    labels: dict  # e.g. {"dataset": "hmdb51", "method": "vificlip", "selection": "test"}
    cells: list[Cell]
    published: str = ""  # the source, for a row of published numbers

    @property
    def runs(self) -> list[str]:
        seen: dict[str, None] = {}
        for cell in self.cells:
            for r in cell.runs:
                seen.setdefault(r, None)
        return list(seen)


@dataclass
class Table:
    key: str  # file stem
    title: str
    label_names: list[str]
    columns: list[tuple[str, str]]  # (group, metric), e.g. ("s1", "Base"), ("mean", "HM")
    rows: list[Row] = field(default_factory=list)
    plot_columns: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def column_names(self) -> list[str]:
        return [f"{g} {m}" if g else m for g, m in self.columns]

    def cell(self, labels: dict, column: tuple[str, str]) -> Cell:
        for row in self.rows:
            if all(row.labels.get(k) == v for k, v in labels.items()):
                return row.cells[self.columns.index(column)]
        raise KeyError(labels)


def _newest(runs: list[RunRecord]) -> RunRecord:
    return max(runs, key=lambda r: r.start_time)


def _metric_cell(run: RunRecord | None, metric: str, absent: str = "no run") -> Cell:
    if run is None:
        return Cell(note=absent)
    value = run.metrics.get(metric)
    if value is None:
        return Cell(note=f"{metric} not logged", runs=(run.run_id,))
    return Cell(float(value), runs=(run.run_id,))


def _mean_cells(per_split: list[list[Cell]], hm_of: tuple[int, int, int] | None, expected: int) -> list[Cell]:
    """Mean ± std over splits of each metric column; per_split[i][j] = split i, metric j."""
    n_metrics = len(per_split[0]) if per_split else 0
    out = []
    for j in range(n_metrics):
        cells = [split[j] for split in per_split]
        have = [c for c in cells if not c.missing]
        runs = tuple(r for c in cells for r in c.runs)
        if len(have) < expected:
            out.append(Cell(note=f"{len(have)}/{expected} splits", runs=runs))
        else:
            mean, std = mean_std([c.value for c in have])
            out.append(Cell(mean, std, runs))
    if hm_of is not None and out:
        a, b, h = hm_of
        if not out[a].missing and not out[b].missing:
            out[h] = Cell(harmonic_mean(out[a].value, out[b].value), None, out[h].runs)
    return out


def _grouped(runs: list[RunRecord], key) -> dict[tuple, list[RunRecord]]:
    groups: dict[tuple, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return dict(sorted(groups.items()))


# --------------------------------------------------------------------------- base-to-novel
def base_to_novel(runs: list[RunRecord]) -> Table:
    runs = [r for r in runs if r.tag("protocol") == "base2novel" and r.tag("split") in B2N_SPLITS]
    columns = [(s, m) for s in (*B2N_SPLITS, MEAN) for m, _ in B2N_METRICS]
    table = Table(
        "base2novel", "Base-to-novel: top-1 (%) per split and mean ± std over s1..s3",
        ["dataset", "method", "selection"], columns,
        plot_columns=[columns.index((s, "HM")) for s in B2N_SPLITS] + [columns.index((MEAN, m)) for m, _ in B2N_METRICS],
        notes=["HM = 2·Base·Novel/(Base+Novel); the mean column's HM is the HM of the mean Base and Novel."],
    )
    for (dataset, method, selection), group in _grouped(runs, lambda r: (r.tag("dataset"), r.tag("method"), r.selection)).items():
        per_split = []
        for split in B2N_SPLITS:
            found = [r for r in group if r.tag("split") == split]
            run = _newest(found) if found else None
            per_split.append([_metric_cell(run, metric) for _, metric in B2N_METRICS])
        mean = _mean_cells(per_split, (0, 1, 2), len(B2N_SPLITS))
        table.rows.append(Row({"dataset": dataset, "method": method, "selection": selection}, [c for s in per_split for c in s] + mean))
    return table


# --------------------------------------------------------------------------- zero-shot
def _targets(run: RunRecord) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key, value in run.metrics.items():
        m = TARGET_METRIC.match(key)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = value
    return out


def zero_shot(runs: list[RunRecord]) -> Table:
    runs = [r for r in runs if _targets(r) and r.tag("split") != "all"]
    splits: dict[str, set[str]] = {}
    for run in runs:
        for dataset, values in _targets(run).items():
            splits.setdefault(dataset, set()).update(values)
    columns = [(d, s) for d in sorted(splits) for s in (*sorted(splits[d]), MEAN)]
    table = Table(
        "zeroshot", "Zero-shot: top-1 (%) on each target split and mean ± std over the target's splits",
        ["train dataset", "protocol", "method", "selection"], columns,
        plot_columns=[i for i, (_, s) in enumerate(columns) if s == MEAN],
    )
    key = lambda r: (r.tag("dataset"), r.tag("protocol"), r.tag("method"), r.selection)  # noqa: E731
    for (dataset, protocol, method, selection), group in _grouped(runs, key).items():
        cells = []
        for target in sorted(splits):
            found = [r for r in group if target in _targets(r)]
            run = _newest(found) if found else None
            per_split = [[_metric_cell(run, f"{target}/{s}/top1", absent=f"no run on {target}")] for s in sorted(splits[target])]
            cells += [c[0] for c in per_split] + _mean_cells(per_split, None, len(per_split))
        labels = {"train dataset": dataset, "protocol": protocol, "method": method, "selection": selection}
        table.rows.append(Row(labels, cells))
    return table


# --------------------------------------------------------------------------- skeleton ZSL / GZSL
def skeleton(runs: list[RunRecord]) -> Table:
    runs = [r for r in runs if r.tag("protocol") in ("zsl", "gzsl")]
    zsl_splits = sorted({r.tag("split") for r in runs if r.tag("protocol") == "zsl"})
    gzsl_splits = sorted({r.tag("split") for r in runs if r.tag("protocol") == "gzsl"})
    metrics_of = {s: ([("ZSL", "zsl_top1")] if s in zsl_splits else []) + (list(GZSL_METRICS) if s in gzsl_splits else [])
                  for s in sorted(set(zsl_splits) | set(gzsl_splits))}
    families: dict[str, list[str]] = {}
    for split in metrics_of:
        m = FAMILY.match(split)
        if m:
            families.setdefault(m.group(1), []).append(split)
    families = {f: members for f, members in families.items() if len(members) > 1}
    columns = [(s, name) for s, ms in metrics_of.items() for name, _ in ms]
    for family, members in sorted(families.items()):
        names = [name for name, _ in metrics_of[members[0]] if all(name in dict(metrics_of[m]) for m in members)]
        columns += [(f"{family}_r* {MEAN}", name) for name in names]
    table = Table(
        "skeleton", "Skeleton zero-shot: ZSL top-1 and GZSL seen (S) / unseen (U) / H (%)",
        ["dataset", "method", "selection"], columns,
        plot_columns=[i for i, (_, m) in enumerate(columns) if m in ("ZSL", "H")],
        notes=["H = 2·S·U/(S+U); a mean over random splits (`_r1.._rN`) is mean ± std, its H the H of the mean S and U."],
    )
    protocol_of = {"ZSL": "zsl", "S": "gzsl", "U": "gzsl", "H": "gzsl"}
    for (dataset, method, selection), group in _grouped(runs, lambda r: (r.tag("dataset"), r.tag("method"), r.selection)).items():
        by_col: dict[tuple[str, str], Cell] = {}
        for split, ms in metrics_of.items():
            for name, metric in ms:
                found = [r for r in group if r.tag("split") == split and r.tag("protocol") == protocol_of[name]]
                by_col[(split, name)] = _metric_cell(_newest(found) if found else None, metric)
        for family, members in sorted(families.items()):
            names = [name for g, name in columns if g == f"{family}_r* {MEAN}"]
            per_split = [[by_col[(m, name)] for name in names] for m in sorted(members)]
            hm = (names.index("S"), names.index("U"), names.index("H")) if {"S", "U", "H"} <= set(names) else None
            for name, cell in zip(names, _mean_cells(per_split, hm, len(members))):
                by_col[(f"{family}_r* {MEAN}", name)] = cell
        table.rows.append(Row({"dataset": dataset, "method": method, "selection": selection}, [by_col[c] for c in columns]))
    return table


def build_tables(runs: list[RunRecord]) -> list[Table]:
    return [base_to_novel(runs), zero_shot(runs), skeleton(runs)]


# --------------------------------------------------------------------------- writers
def to_markdown(table: Table) -> str:
    head = [*table.label_names, *table.column_names(), "runs"]
    lines = [f"### {table.title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table.rows:
        runs = f"published: {row.published}" if row.published else " ".join(r[:8] for r in row.runs)
        lines.append("| " + " | ".join([*(str(row.labels[k]) for k in table.label_names), *(c.text() for c in row.cells), runs]) + " |")
    if not table.rows:
        lines.append("| " + " | ".join(["(no runs)"] + [""] * (len(head) - 1)) + " |")
    lines += [""] + [f"{n}" for n in table.notes] + ([""] if table.notes else [])
    lines.append("Full run ids of every cell: `" + table.key + "_cells.csv`.")
    return "\n".join(lines) + "\n"


def write_csv(table: Table, out: Path) -> tuple[Path, Path]:
    """`<key>.csv` (the wide table: value and std per column, run ids per row) and
    `<key>_cells.csv` (one line a cell: value, std, note and the run ids behind it)."""
    wide, cells = out / f"{table.key}.csv", out / f"{table.key}_cells.csv"
    with open(wide, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*table.label_names, *(x for c in table.column_names() for x in (c, f"{c} std")), "source", "run_ids"])
        for row in table.rows:
            values = [x for c in row.cells for x in ("" if c.missing else f"{c.value:.4f}", "" if c.std is None or c.missing else f"{c.std:.4f}")]
            w.writerow([*(row.labels[k] for k in table.label_names), *values, row.published or "ours", " ".join(row.runs)])
    with open(cells, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*table.label_names, "column", "value", "std", "missing", "note", "source", "run_ids"])
        for row in table.rows:
            for name, c in zip(table.column_names(), row.cells):
                w.writerow([*(row.labels[k] for k in table.label_names), name, "" if c.missing else f"{c.value:.4f}",
                            "" if c.std is None or c.missing else f"{c.std:.4f}", int(c.missing), c.note, row.published or "ours", " ".join(c.runs)])
    return wide, cells
