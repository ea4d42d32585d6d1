"""What a report table is made of: cells (a value, a std where it is a mean over splits, and the
runs behind it), rows, tables, and the groups of columns a table's bar chart draws; and the cell
arithmetic the per-protocol tables share (newest run of a cell, mean ± std over splits)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from zsar.report.collect import RunRecord
from zsar.train.metrics import harmonic_mean, mean_std

MEAN = "mean"
REPEAT = re.compile(r"^(.*\D)(\d+)$")  # split1, random50_r3, ntu60_55_5_r2: a family and a number


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
    failures: int | None = None  # videos that could not be decoded, summed over the row's runs

    @property
    def runs(self) -> list[str]:
        seen: dict[str, None] = {}
        for cell in self.cells:
            for r in cell.runs:
                seen.setdefault(r, None)
        return list(seen)

    def failures_text(self) -> str:
        if self.published:
            return ""
        return "—" if self.failures is None else str(self.failures)


@dataclass
class PlotGroup:
    """One cluster of bars: `columns` (indices into the table's columns), drawn when any of its
    cells has a value. A complete group hides the groups it `covers` (a mean and its splits)."""

    label: str
    columns: list[int]
    covers: tuple[str, ...] = ()


@dataclass
class Table:
    key: str  # file stem
    title: str
    label_names: list[str]
    columns: list[tuple[str, str]]  # (group, metric), e.g. ("s1", "Base"), ("mean", "HM")
    rows: list[Row] = field(default_factory=list)
    plot_groups: list[PlotGroup] = field(default_factory=list)
    primary: list[int] = field(default_factory=list)  # one-run columns that rank runs (the per-run section)
    notes: list[str] = field(default_factory=list)

    def column_names(self) -> list[str]:
        return [f"{g} {m}" if g else m for g, m in self.columns]

    def cell(self, labels: dict, column: tuple[str, str]) -> Cell:
        for row in self.rows:
            if all(row.labels.get(k) == v for k, v in labels.items()):
                return row.cells[self.columns.index(column)]
        raise KeyError(labels)


def split_order(split: str) -> tuple:
    """split2 before split10."""
    m = REPEAT.match(split)
    return (m.group(1), int(m.group(2))) if m else (split, -1)


def families(splits, pattern: re.Pattern = REPEAT) -> dict[str, list[str]]:
    """Splits that repeat one measurement (same name up to a trailing number), two or more."""
    out: dict[str, list[str]] = {}
    for split in sorted(splits, key=split_order):
        m = pattern.match(split)
        if m:
            out.setdefault(m.group(1), []).append(split)
    return {f: members for f, members in out.items() if len(members) > 1}


def newest(runs: list[RunRecord]) -> RunRecord:
    return max(runs, key=lambda r: r.start_time)


def metric_cell(run: RunRecord | None, metric: str, absent: str = "no run") -> Cell:
    if run is None:
        return Cell(note=absent)
    value = run.metrics.get(metric)
    if value is None:
        return Cell(note=f"{metric} not logged", runs=(run.run_id,))
    return Cell(float(value), runs=(run.run_id,))


def mean_cells(per_split: list[list[Cell]], hm_of: tuple[int, int, int] | None, expected: int) -> list[Cell]:
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


def grouped(runs: list[RunRecord], key) -> dict[tuple, list[RunRecord]]:
    groups: dict[tuple, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return dict(sorted(groups.items()))


def row_failures(row: Row, by_id: dict[str, RunRecord]) -> int | None:
    """Videos that could not be decoded (`data/failures`), summed over the row's runs; None when
    none of them logged the count."""
    counts = [by_id[r].metrics.get("data/failures") for r in row.runs if r in by_id]
    counts = [c for c in counts if c is not None]
    return int(sum(counts)) if counts else None
