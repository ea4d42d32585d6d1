"""PNG plots with matplotlib's Agg backend (no display, no network), sized for the report page.

The page is at most 1200 px wide; the plots are drawn 11 inches wide at 100 dpi, so they show at
about their own size. Titles are wrapped to the figure's width and every figure is saved with a
tight bounding box and a white margin, so no title, label or legend is cut at the image's edge.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

WIDTH_IN = 11.0
DPI = 100
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _title(ax, text: str, width_in: float, size: int = 11) -> None:
    chars = max(int(width_in * 72 / (size * 0.55)), 20)  # about how many characters fit on a line
    ax.set_title(textwrap.fill(text, chars), fontsize=size)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.25, facecolor="white")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def shown_groups(table, row) -> list:
    """The bar groups drawn for `row`: those with a value, less those a complete mean covers."""
    have = [g for g in table.plot_groups if any(not row.cells[c].missing for c in g.columns)]
    complete = [g for g in have if g.covers and all(not row.cells[c].missing for c in g.columns)]
    hidden = {label for g in complete for label in g.covers}
    return [g for g in have if g.label not in hidden]


def table_bars(table, path: Path) -> Path | None:
    """One cluster of bars per (row, shown group), one bar per metric with a value (std as an error
    bar); published rows are hatched. Missing cells are not drawn (the table says why)."""
    clusters = [(row, g) for row in table.rows for g in shown_groups(table, row)]
    if not clusters:
        return None
    plt = _plt()
    metrics = list(dict.fromkeys(table.columns[c][1] for _, g in clusters for c in g.columns))
    colour = {m: f"C{i % 10}" for i, m in enumerate(metrics)}
    per = max(len(g.columns) for _, g in clusters)
    width = 0.8 / per
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 5.0))
    labelled = set()
    for x, (row, group) in enumerate(clusters):
        cells = [(table.columns[c][1], row.cells[c]) for c in group.columns]
        for j, (metric, cell) in enumerate(cells):
            if cell.missing:
                continue
            bar = ax.bar(x - 0.4 + width * (j + 0.5), cell.value, width, yerr=cell.std or 0.0, capsize=2, color=colour[metric],
                         label=None if metric in labelled else metric, hatch="//" if row.published else None,
                         edgecolor="white" if row.published else None)
            labelled.add(metric)
            ax.bar_label(bar, fmt="%.1f", fontsize=7, padding=1)
    names = [" / ".join(str(v) for k, v in row.labels.items() if k != "protocol") for row, _ in clusters]
    ticks = [textwrap.fill(n, 28) + f"\n({g.label})" for n, (_, g) in zip(names, clusters)]
    ax.set_xticks(np.arange(len(clusters)), ticks, rotation=30 if len(clusters) > 4 else 0,
                  ha="right" if len(clusters) > 4 else "center", fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, 110)
    ax.set_xlim(-0.6, len(clusters) - 0.4)
    _title(ax, table.title + (" (hatched: published)" if any(r.published for r in table.rows) else ""), WIDTH_IN)
    ax.legend(fontsize=8, ncols=min(len(metrics), 6), loc="upper right")
    return _save(fig, path)


def per_class_bars(classes: list[str], accuracy: list[float], title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.5))
    values = np.nan_to_num(np.asarray(accuracy, dtype=float), nan=0.0)
    ax.bar(np.arange(len(classes)), values, color="C0")
    size = 8 if len(classes) <= 40 else 6 if len(classes) <= 80 else 5
    ax.set_xticks(np.arange(len(classes)), classes, rotation=70 if len(classes) > 12 else 30, ha="right", fontsize=size)
    ax.set_xlim(-0.6, len(classes) - 0.4)
    ax.set_ylim(0, 100)
    ax.set_ylabel("top-1 (%)")
    _title(ax, title, WIDTH_IN)
    return _save(fig, path)


def confusion_heatmap(classes: list[str], counts: np.ndarray, title: str, path: Path) -> Path:
    """Row-normalised confusion matrix (true class per row)."""
    plt = _plt()
    counts = np.asarray(counts, dtype=float)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = min(max(7.0, 0.16 * len(classes) + 4), WIDTH_IN)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(classes))
    font = 8 if len(classes) <= 30 else 6 if len(classes) <= 60 else 4
    ax.set_xticks(ticks, classes, rotation=90, fontsize=font)
    ax.set_yticks(ticks, classes, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    _title(ax, title, size)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def class_style(i: int) -> tuple[str, str]:
    """(colour, marker) of class i: 20 colours, then a new marker for each further 20 classes."""
    import matplotlib

    return matplotlib.colormaps["tab20"](i % 20), MARKERS[(i // 20) % len(MARKERS)]


def tsne_scatter(points: np.ndarray, labels: np.ndarray, n_videos: int, classes: list[str], title: str, path: Path) -> Path:
    """`points[:n_videos]` are videos (small marks in their true class's colour and shape), the rest
    the class text embeddings (large marks, black edge). Class names are in a legend beside the
    plot, never written on it, so they cannot overlap."""
    plt = _plt()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    videos, texts = points[:n_videos], points[n_videos:]
    handles = []
    for i, name in enumerate(classes):
        colour, marker = class_style(i)
        mine = videos[np.asarray(labels) == i]
        if len(mine):
            ax.scatter(mine[:, 0], mine[:, 1], color=colour, marker=marker, s=16, alpha=0.6, linewidths=0)
        ax.scatter(texts[i, 0], texts[i, 1], color=colour, marker=marker, s=220, edgecolors="black", linewidths=1.0, zorder=3)
        handles.append(Line2D([], [], color=colour, marker=marker, linestyle="", markersize=7, markeredgecolor="black", label=name))
    ncols = 1 if len(classes) <= 24 else 2 if len(classes) <= 60 else 3
    ax.legend(handles=handles, title="class (large: its text embedding, small: its videos)", fontsize=7, title_fontsize=8,
              ncols=ncols, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    ax.set_xticks([])
    ax.set_yticks([])
    _title(ax, title, 7.5)
    return _save(fig, path)
