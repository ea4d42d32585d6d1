"""The report's plots as images: titles inside the image, a legend for the t-SNE's class names,
no 'missing' labels. `edge_ink` is also what the browser test applies to its screenshots."""

import numpy as np
import pytest

from zsar.report import plots
from zsar.report.model import Cell, PlotGroup, Row, Table

LONG = "per-class top-1 of a label set with a long name (" + "a-very-long-run-name-" * 6 + "end)"


def edge_ink(image: np.ndarray, band: int = 3, background: int = 235) -> int:
    """Pixels darker than `background` in the outer `band` pixels of an RGB(A) image: text or lines
    cut at the image's edge. 0 for an image whose content stays inside its margins."""
    rgb = np.asarray(image)[..., :3]
    if rgb.dtype != np.uint8:
        rgb = (rgb * 255).astype(np.uint8)
    frame = np.ones(rgb.shape[:2], bool)
    frame[band:-band, band:-band] = False
    return int((rgb[frame].min(axis=1) < background).sum())


def _read(path):
    import matplotlib.image as mpimg

    return mpimg.imread(path)


def test_edge_check_sees_a_clipped_title(tmp_path):
    """The check itself: a title wider than its figure, saved without the report's settings, is cut
    at the edge and found."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar([0, 1], [10, 20])
    ax.set_title(LONG, fontsize=11)
    fig.savefig(tmp_path / "clipped.png", dpi=100)
    plt.close(fig)
    assert edge_ink(_read(tmp_path / "clipped.png")) > 20


def test_long_titles_stay_inside_and_plots_fill_the_page(tmp_path):
    classes = [f"class number {i}" for i in range(40)]
    png = plots.per_class_bars(classes, list(np.linspace(0, 100, 40)), LONG, tmp_path / "per_class.png")
    image = _read(png)
    assert edge_ink(image) == 0
    assert 900 <= image.shape[1] <= 1200  # about the page's width (1200 px at most)
    png = plots.confusion_heatmap(classes, np.eye(40, dtype=int) * 3, LONG, tmp_path / "confusion.png")
    assert edge_ink(_read(png)) == 0 and _read(png).shape[1] >= 700


def test_tsne_names_every_class_in_a_legend_that_does_not_overlap(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    classes = [f"action {i}" for i in range(30)]
    labels = np.repeat(np.arange(30), 2)
    points = np.concatenate([rng.normal(size=(60, 2)), rng.normal(size=(30, 2)) * 0.01])  # class texts in one clump
    kept = {}
    monkeypatch.setattr(plt, "close", lambda fig: kept.setdefault("fig", fig))
    png = plots.tsne_scatter(points, labels, 60, classes, "t-SNE", tmp_path / "tsne.png")
    fig = kept["fig"]
    (ax,) = [a for a in fig.axes]
    assert not ax.texts  # no name written at the clumped points
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == classes
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in legend.get_texts()]
    overlaps = [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
    assert not overlaps
    # 30 classes: 20 colours, then a new marker shape, so classes 0 and 20 differ
    assert plots.class_style(0) != plots.class_style(20) and plots.class_style(0)[0] == plots.class_style(20)[0]
    assert edge_ink(_read(png)) == 0
    plt.close(fig)


def test_bar_chart_draws_values_only(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    columns = [("s1", "Base"), ("s1", "Novel"), ("s1", "HM"), ("s2", "Base"), ("s2", "Novel"), ("s2", "HM")]
    table = Table("t", "Base-to-novel " + LONG, ["dataset", "method", "selection"], columns,
                  plot_groups=[PlotGroup("s1", [0, 1, 2]), PlotGroup("s2", [3, 4, 5])])
    table.rows.append(Row({"dataset": "d", "method": "m", "selection": "test"},
                          [Cell(60.0), Cell(40.0), Cell(48.0), Cell(note="no run"), Cell(note="no run"), Cell(note="no run")]))
    kept = {}
    monkeypatch.setattr(plt, "close", lambda fig: kept.setdefault("fig", fig))
    png = plots.table_bars(table, tmp_path / "bars.png")
    (ax,) = kept["fig"].axes
    heights = sorted(round(p.get_height(), 1) for p in ax.patches)
    assert heights == [40.0, 48.0, 60.0]  # Base, Novel and HM of s1; s2 has no run and no bar
    assert "missing" not in " ".join(t.get_text() for t in ax.texts)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Base", "Novel", "HM"]
    assert edge_ink(_read(png)) == 0
    plt.close(kept["fig"])


@pytest.mark.parametrize("n", [3, 101])
def test_per_class_bars_fit_many_classes(tmp_path, n):
    png = plots.per_class_bars([f"c{i}" for i in range(n)], [50.0] * n, "t", tmp_path / "p.png")
    assert edge_ink(_read(png)) == 0
