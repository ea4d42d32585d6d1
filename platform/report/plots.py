"""PNG plots with matplotlib's Agg backend (no display, no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def table_bars(table, path: Path) -> Path | None:
    """Grouped bars: one group per row, one bar per plotted column, std as error bars. Missing
    cells leave a gap labelled 'missing'; published rows are hatched."""
    if not table.rows or not table.plot_columns:
        return None
    plt = _plt()
    names = [table.column_names()[i] for i in table.plot_columns]
    n_rows, n_cols = len(table.rows), len(names)
    width = 0.8 / n_cols
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * n_rows * max(n_cols, 2) * 0.6 + 2), 4.2))
    x = np.arange(n_rows)
    for j, (col, name) in enumerate(zip(table.plot_columns, names)):
        cells = [row.cells[col] for row in table.rows]
        pos = x - 0.4 + width * (j + 0.5)
        values = [0.0 if c.missing else c.value for c in cells]
        errs = [0.0 if c.missing or c.std is None else c.std for c in cells]
        bars = ax.bar(pos, values, width, yerr=errs, capsize=2, label=name, color=f"C{j}")
        for bar, cell, row in zip(bars, cells, table.rows):
            if row.published:
                bar.set_hatch("//")
            if cell.missing:
                ax.text(bar.get_x() + bar.get_width() / 2, 1, "missing", rotation=90, ha="center", va="bottom", fontsize=7)
    labels = [" / ".join(str(v) for k, v in row.labels.items() if k != "protocol") for row in table.rows]
    ax.set_xticks(x, labels, rotation=25, ha="right", fontsize=7)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(table.title, fontsize=9)
    ax.legend(fontsize=7, ncols=min(n_cols, 4))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def per_class_bars(classes: list[str], accuracy: list[float], title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.3 * len(classes) + 1.5), 3.8))
    values = np.nan_to_num(np.asarray(accuracy, dtype=float), nan=0.0)
    ax.bar(np.arange(len(classes)), values, color="C0")
    ax.set_xticks(np.arange(len(classes)), classes, rotation=70, ha="right", fontsize=6)
    ax.set_ylim(0, 100)
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def confusion_heatmap(classes: list[str], counts: np.ndarray, title: str, path: Path) -> Path:
    """Row-normalised confusion matrix (true class per row)."""
    plt = _plt()
    counts = np.asarray(counts, dtype=float)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = max(4.0, 0.25 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=90, fontsize=6)
    ax.set_yticks(ticks, classes, fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def tsne_scatter(points: np.ndarray, labels: np.ndarray, n_videos: int, classes: list[str], title: str, path: Path) -> Path:
    """`points[:n_videos]` are videos (dots coloured by true class), the rest class text embeddings
    (stars in the same colour, named)."""
    plt = _plt()
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    videos, texts = points[:n_videos], points[n_videos:]
    ax.scatter(videos[:, 0], videos[:, 1], c=[cmap(int(l) % 20) for l in labels], s=12, alpha=0.7, label="videos")
    ax.scatter(texts[:, 0], texts[:, 1], c=[cmap(i % 20) for i in range(len(texts))], marker="*", s=160,
               edgecolors="black", linewidths=0.6, label="class text")
    for (x, y), name in zip(texts, classes):
        ax.annotate(name, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
