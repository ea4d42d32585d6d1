"""Published numbers placed beside our runs, labelled as published (never as ours).

`zsar/resources/published/sc_clip_tables.csv` holds SC-CLIP's Table 2 (base-to-novel, mean over
the three splits: Base, Novel, HM on HMDB-51, UCF-101, SSv2) and Table 3 (zero-shot from
Kinetics-400: UCF-101 / HMDB-51 full test set and mean ± std over the three test splits,
Kinetics-600 mean ± std over its three 160-class splits), typed from the paper's text. A published
row joins one of our tables only when that table has a row under the same protocol: a base-to-novel
dataset we ran, or a zero-shot run trained on the same dataset with a target the paper reports.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

from zsar.report.tables import B2N_METRICS, MEAN, Cell, Row, Table

SOURCE_FILE = "sc_clip_tables.csv"


@dataclass(frozen=True)
class Published:
    source: str
    method: str
    venue: str
    protocol: str
    train_dataset: str
    dataset: str
    split: str
    metric: str
    value: float
    std: float | None


def load_published() -> list[Published]:
    text = resources.files("zsar.resources").joinpath("published", SOURCE_FILE).read_text()
    out = []
    for r in csv.DictReader(text.splitlines()):
        out.append(Published(r["source"], r["method"], r["venue"], r["protocol"], r["train_dataset"], r["dataset"],
                             r["split"], r["metric"], float(r["value"]), float(r["std"]) if r["std"] else None))
    return out


def _label(p: Published) -> str:
    return f"{p.method} [published, {p.venue}]"


def _group(entries: list[Published]) -> dict[tuple[str, str, str], dict]:
    groups: dict[tuple[str, str, str], dict] = {}
    for p in entries:
        groups.setdefault((p.source, p.method, p.train_dataset), {})[(p.dataset, p.split, p.metric)] = p
    return groups


def add_published(tables: list[Table], published: list[Published] | None = None) -> None:
    """Append published rows to the tables whose protocol they match (in place)."""
    published = load_published() if published is None else published
    for table in tables:
        ours = [r for r in table.rows if not r.published]
        if table.key == "base2novel":
            datasets = {r.labels["dataset"] for r in ours}
            entries = [p for p in published if p.protocol == "base2novel" and p.dataset in datasets]
            for (source, _, dataset), values in _group(entries).items():
                first = next(iter(values.values()))
                cells = []
                for group, name in table.columns:
                    metric = dict(B2N_METRICS)[name]
                    p = values.get((dataset, group, metric))
                    cells.append(Cell(p.value, p.std, note="published") if p else Cell(note="not reported"))
                table.rows.append(Row({"dataset": dataset, "method": _label(first), "selection": "published"}, cells, published=source))
        elif table.key == "zeroshot":
            trained = {r.labels["train dataset"] for r in ours}
            entries = [p for p in published if p.protocol == "zeroshot" and p.train_dataset in trained
                       and any(d == p.dataset for d, _ in table.columns)]
            for (source, _, train), values in _group(entries).items():
                first = next(iter(values.values()))
                cells = []
                for dataset, split in table.columns:
                    p = values.get((dataset, split, "top1"))
                    cells.append(Cell(p.value, p.std, note="published") if p else Cell(note="not reported"))
                labels = {"train dataset": train, "protocol": "zeroshot", "method": _label(first), "selection": "published"}
                table.rows.append(Row(labels, cells, published=source))
        if len(table.rows) > len(ours):
            table.notes.append("Rows marked [published] are numbers reported in the papers (SC-CLIP, Pattern Recognition 2025), "
                               f"not runs of ours; per-split cells they do not report read 'not reported'. Published means use the "
                               f"column '{MEAN}'.")


def published_table(published: list[Published] | None = None) -> str:
    """The shipped reference numbers as one Markdown table (a section of the report)."""
    published = load_published() if published is None else published
    lines = ["| source | method | venue | protocol | trained on | evaluated on | split | metric | value |", "|---|---|---|---|---|---|---|---|---|"]
    for p in published:
        value = f"{p.value:.1f}" + (f" ± {p.std:.1f}" if p.std is not None else "")
        lines.append(f"| {p.source} | {p.method} | {p.venue} | {p.protocol} | {p.train_dataset} | {p.dataset} | {p.split} | {p.metric} | {value} |")
    return "\n".join(lines) + "\n"
