"""Paper-style tables from run records, one for each protocol that has runs: base-to-novel,
zero-shot (eval targets, and runs of a dataset's `zeroshot` protocol), skeleton ZSL/GZSL, and a
top-1/top-5 table per split for any other protocol (`full`, `cezsar`, ...).

A row is one (dataset, method, selection) — the `selection` tag says whether the run's numbers
were selected on validation or test data, and rows with different selections are never merged.
A cell holds a value (and a std where it is a mean over splits) and the ids of the runs it came
from. When several finished runs fill the same cell, the newest one is used. A cell with no run
behind it is kept and marked missing, with the reason; a method is never dropped. A row also
counts the videos its runs could not decode (`data/failures`).

Runs that only aggregate others are left out: the parent of a `--split all` run (its children
are the splits) and a sweep's parent; a table computes its own means from the splits.

Means over splits follow the papers' tables: accuracies are averaged over the splits with the
population std (`zsar.train.metrics.mean_std`, ddof=0), and the HM (or GZSL H) of a mean column is
the harmonic mean of the mean Base and mean Novel (seen, unseen) next to it, so every row's HM
agrees with its own Base and Novel. A mean needs every split: with one missing it is marked
missing ("2/3 splits"). Splits that repeat one measurement (`split1..3`, `random50_r1..r10`) get
a mean column; a variant (`full` next to `split1..3`) does not join it.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from zsar.report.collect import RunRecord
from zsar.report.model import (MEAN, Cell, PlotGroup, Row, Table, families, grouped, mean_cells, metric_cell, newest,
                               row_failures, split_order)

__all__ = ["MEAN", "Cell", "Row", "Table", "build_tables", "to_markdown", "write_csv"]

B2N_SPLITS = ("s1", "s2", "s3")
B2N_METRICS = (("Base", "base_top1"), ("Novel", "novel_top1"), ("HM", "hm"))
GZSL_METRICS = (("S", "seen"), ("U", "unseen"), ("H", "h"))
TOPK_METRICS = (("Top-1", "top1"), ("Top-5", "top5"))
TARGET_METRIC = re.compile(r"^([^/]+)/([^/]+)/top1$")
FAMILY = re.compile(r"^(.*_r)\d+$")
OWN_TABLES = ("base2novel", "zeroshot", "zsl", "gzsl")
VARIANTS = ("full",)
FAILURES = "failed videos"
FAILURES_NOTE = ("failed videos: videos the row's runs could not decode and left out (`data/failures`, summed over its runs; "
                 "— when not logged); each run's list is its `eval/failures.csv` artifact.")  # a split that is not a repeat of the others (zeroshot/full: the whole test set)


def _row_labels(run: RunRecord) -> tuple[str, str, str]:
    return run.tag("dataset"), run.tag("method"), run.selection


def _add_mean_groups(table: Table, fams: dict[str, list[str]], metrics: list[str]) -> None:
    """Columns and bar groups for the mean over each family of splits."""
    for family, members in fams.items():
        label = f"{family}* {MEAN}"
        start = len(table.columns)
        table.columns += [(label, m) for m in metrics]
        table.plot_groups.append(PlotGroup(label, list(range(start, len(table.columns))), covers=tuple(members)))


# --------------------------------------------------------------------------- base-to-novel
def base_to_novel(runs: list[RunRecord]) -> Table:
    runs = [r for r in runs if r.tag("protocol") == "base2novel" and r.tag("split") in B2N_SPLITS]
    columns = [(s, m) for s in (*B2N_SPLITS, MEAN) for m, _ in B2N_METRICS]
    groups = [PlotGroup(s, [columns.index((s, m)) for m, _ in B2N_METRICS]) for s in B2N_SPLITS]
    groups.append(PlotGroup(MEAN, [columns.index((MEAN, m)) for m, _ in B2N_METRICS], covers=B2N_SPLITS))
    table = Table(
        "base2novel", "Base-to-novel: top-1 (%) per split and mean ± std over s1..s3",
        ["dataset", "method", "selection"], columns, plot_groups=groups,
        primary=[columns.index((s, "HM")) for s in B2N_SPLITS],
        notes=["HM = 2·Base·Novel/(Base+Novel); the mean column's HM is the HM of the mean Base and Novel."],
    )
    for (dataset, method, selection), group in grouped(runs, _row_labels).items():
        per_split = []
        for split in B2N_SPLITS:
            found = [r for r in group if r.tag("split") == split]
            run = newest(found) if found else None
            per_split.append([metric_cell(run, metric) for _, metric in B2N_METRICS])
        mean = mean_cells(per_split, (0, 1, 2), len(B2N_SPLITS))
        table.rows.append(Row({"dataset": dataset, "method": method, "selection": selection}, [c for s in per_split for c in s] + mean))
    return table


# --------------------------------------------------------------------------- zero-shot
def _targets(run: RunRecord) -> dict[str, dict[str, float]]:
    """{target dataset: {split: top-1}}: a run's eval-target metrics (`ucf101/split1/top1`), or a
    run of a dataset's own `zeroshot` protocol (its plain `top1` on its split)."""
    out: dict[str, dict[str, float]] = {}
    for key, value in run.metrics.items():
        m = TARGET_METRIC.match(key)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = value
    if not out and run.tag("protocol") == "zeroshot" and "top1" in run.metrics and run.tag("split") not in ("", "all"):
        out[run.tag("dataset")] = {run.tag("split"): run.metrics["top1"]}
    return out


def zero_shot(runs: list[RunRecord]) -> Table:
    runs = [r for r in runs if _targets(r) and r.tag("split") != "all"]
    splits: dict[str, set[str]] = {}
    for run in runs:
        for dataset, values in _targets(run).items():
            splits.setdefault(dataset, set()).update(values)
    repeats = {d: [s for s in sorted(v, key=split_order) if s not in VARIANTS] for d, v in splits.items()}
    columns, groups = [], []
    for d in sorted(splits):
        start = len(columns)
        columns += [(d, s) for s in sorted(splits[d], key=split_order)] + ([(d, MEAN)] if len(repeats[d]) > 1 else [])
        groups.append(PlotGroup(d, list(range(start, len(columns)))))
    table = Table(
        "zeroshot", "Zero-shot: top-1 (%) on each target split and mean ± std over the target's splits",
        ["train dataset", "protocol", "method", "selection"], columns, plot_groups=groups,
        primary=[i for i, (_, s) in enumerate(columns) if s != MEAN],
        notes=["A row trained on '—' is a run of the target's own zeroshot protocol (evaluated directly, no training run of its own)."],
    )

    def key(r):
        trained = "—" if not any(TARGET_METRIC.match(k) for k in r.metrics) else r.tag("dataset")
        return trained, r.tag("protocol"), r.tag("method"), r.selection

    for (trained, protocol, method, selection), group in grouped(runs, key).items():
        cells = []
        for target in sorted(splits):
            found = [r for r in group if target in _targets(r)]
            for split in sorted(splits[target], key=split_order):
                having = [r for r in found if split in _targets(r)[target]]
                run = newest(having) if having else None
                cells.append(Cell(float(_targets(run)[target][split]), runs=(run.run_id,)) if run else Cell(note=f"no run on {target}"))
            if (target, MEAN) in columns:
                cells += mean_cells([[cells[columns.index((target, s))]] for s in repeats[target]], None, len(repeats[target]))
        labels = {"train dataset": trained, "protocol": protocol, "method": method, "selection": selection}
        table.rows.append(Row(labels, cells))
    return table


# --------------------------------------------------------------------------- skeleton ZSL / GZSL
def skeleton(runs: list[RunRecord]) -> Table:
    runs = [r for r in runs if r.tag("protocol") in ("zsl", "gzsl")]
    zsl_splits = sorted({r.tag("split") for r in runs if r.tag("protocol") == "zsl"})
    gzsl_splits = sorted({r.tag("split") for r in runs if r.tag("protocol") == "gzsl"})
    metrics_of = {s: ([("ZSL", "zsl_top1")] if s in zsl_splits else []) + (list(GZSL_METRICS) if s in gzsl_splits else [])
                  for s in sorted(set(zsl_splits) | set(gzsl_splits))}
    fams = families(metrics_of, FAMILY)
    columns = [(s, name) for s, ms in metrics_of.items() for name, _ in ms]
    groups = [PlotGroup(s, [columns.index((s, n)) for n, _ in ms if n in ("ZSL", "H")]) for s, ms in metrics_of.items()]
    table = Table(
        "skeleton", "Skeleton zero-shot: ZSL top-1 and GZSL seen (S) / unseen (U) / H (%)",
        ["dataset", "method", "selection"], columns, plot_groups=groups,
        primary=[i for i, (_, m) in enumerate(columns) if m in ("ZSL", "H")],
        notes=["H = 2·S·U/(S+U); a mean over random splits (`_r1.._rN`) is mean ± std, its H the H of the mean S and U."],
    )
    for family, members in fams.items():  # the metrics every member has
        names = [name for name, _ in metrics_of[members[0]] if all(name in dict(metrics_of[m]) for m in members)]
        start = len(table.columns)
        table.columns += [(f"{family}* {MEAN}", name) for name in names]
        plotted = [i for i in range(start, len(table.columns)) if table.columns[i][1] in ("ZSL", "H")]
        table.plot_groups.append(PlotGroup(f"{family}* {MEAN}", plotted, covers=tuple(members)))
    protocol_of = {"ZSL": "zsl", "S": "gzsl", "U": "gzsl", "H": "gzsl"}
    for (dataset, method, selection), group in grouped(runs, _row_labels).items():
        by_col: dict[tuple[str, str], Cell] = {}
        for split, ms in metrics_of.items():
            for name, metric in ms:
                found = [r for r in group if r.tag("split") == split and r.tag("protocol") == protocol_of[name]]
                by_col[(split, name)] = metric_cell(newest(found) if found else None, metric)
        for family, members in fams.items():
            names = [name for g, name in table.columns if g == f"{family}* {MEAN}"]
            per_split = [[by_col[(m, name)] for name in names] for m in members]
            hm = (names.index("S"), names.index("U"), names.index("H")) if {"S", "U", "H"} <= set(names) else None
            for name, cell in zip(names, mean_cells(per_split, hm, len(members))):
                by_col[(f"{family}* {MEAN}", name)] = cell
        table.rows.append(Row({"dataset": dataset, "method": method, "selection": selection}, [by_col[c] for c in table.columns]))
    return table


# --------------------------------------------------------------------------- any other protocol
def per_split(runs: list[RunRecord], protocol: str) -> Table:
    """Top-1 / top-5 per split (and mean ± std over repeated splits) of one protocol (`full`, ...)."""
    runs = [r for r in runs if r.tag("protocol") == protocol and "top1" in r.metrics]
    splits = sorted({r.tag("split") for r in runs}, key=split_order)
    metrics = [name for name, _ in TOPK_METRICS]
    columns = [(s, m) for s in splits for m in metrics]
    table = Table(
        protocol, f"Protocol {protocol}: top-1 / top-5 (%) per split" + (" and mean ± std over repeated splits" if families(splits) else ""),
        ["dataset", "method", "selection"], columns,
        plot_groups=[PlotGroup(s, [columns.index((s, m)) for m in metrics]) for s in splits],
        primary=[columns.index((s, "Top-1")) for s in splits],
    )
    fams = families(s for s in splits if s not in VARIANTS)
    _add_mean_groups(table, fams, metrics)
    for (dataset, method, selection), group in grouped(runs, _row_labels).items():
        by_split = {}
        for split in splits:
            found = [r for r in group if r.tag("split") == split]
            by_split[split] = [metric_cell(newest(found) if found else None, metric) for _, metric in TOPK_METRICS]
        cells = [c for s in splits for c in by_split[s]]
        for members in fams.values():
            cells += mean_cells([by_split[m] for m in members], None, len(members))
        table.rows.append(Row({"dataset": dataset, "method": method, "selection": selection}, cells))
    return table


def build_tables(runs: list[RunRecord]) -> list[Table]:
    """The tables of the protocols that have runs (a table without rows is left out)."""
    parents = {r.tags.get("mlflow.parentRunId") for r in runs}
    runs = [r for r in runs if r.run_id not in parents]
    others = sorted({r.tag("protocol") for r in runs if r.tag("protocol") not in OWN_TABLES and "top1" in r.metrics})
    tables = [base_to_novel(runs), zero_shot(runs), skeleton(runs)] + [per_split(runs, p) for p in others]
    by_id = {r.run_id: r for r in runs}
    for table in tables:
        for row in table.rows:
            row.failures = row_failures(row, by_id)
    return [t for t in tables if t.rows]


# --------------------------------------------------------------------------- writers
def to_markdown(table: Table) -> str:
    head = [*table.label_names, *table.column_names(), FAILURES, "runs"]
    lines = [f"### {table.title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table.rows:
        runs = f"published: {row.published}" if row.published else " ".join(r[:8] for r in row.runs)
        lines.append("| " + " | ".join([*(str(row.labels[k]) for k in table.label_names), *(c.text() for c in row.cells),
                                        row.failures_text(), runs]) + " |")
    if not table.rows:
        lines.append("| " + " | ".join(["(no runs)"] + [""] * (len(head) - 1)) + " |")
    lines += ["", FAILURES_NOTE] + [f"{n}" for n in table.notes] + [""]
    lines.append("Full run ids of every cell: `" + table.key + "_cells.csv`.")
    return "\n".join(lines) + "\n"


def write_csv(table: Table, out: Path) -> tuple[Path, Path]:
    """`<key>.csv` (the wide table: value and std per column, run ids per row) and
    `<key>_cells.csv` (one line a cell: value, std, note and the run ids behind it)."""
    wide, cells = out / f"{table.key}.csv", out / f"{table.key}_cells.csv"
    with open(wide, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*table.label_names, *(x for c in table.column_names() for x in (c, f"{c} std")), "failed_videos", "source", "run_ids"])
        for row in table.rows:
            values = [x for c in row.cells for x in ("" if c.missing else f"{c.value:.4f}", "" if c.std is None or c.missing else f"{c.std:.4f}")]
            failed = "" if row.failures is None else row.failures
            w.writerow([*(row.labels[k] for k in table.label_names), *values, failed, row.published or "ours", " ".join(row.runs)])
    with open(cells, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*table.label_names, "column", "value", "std", "missing", "note", "source", "run_ids"])
        for row in table.rows:
            for name, c in zip(table.column_names(), row.cells):
                w.writerow([*(row.labels[k] for k in table.label_names), name, "" if c.missing else f"{c.value:.4f}",
                            "" if c.std is None or c.missing else f"{c.std:.4f}", int(c.missing), c.note, row.published or "ours", " ".join(c.runs)])
    return wide, cells
