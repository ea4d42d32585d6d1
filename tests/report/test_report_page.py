"""`zsar report` end to end: a real evaluation run (frozen CLIP, tiny backbone, the small demo)
logged to a real MLflow store, the report built by the CLI, and the page opened in headless
Chromium."""

import csv
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def report(small_demo_root, session_home, tmp_path_factory):
    import os

    from mlflow.tracking import MlflowClient

    from zsar.config import resolve
    from zsar.train.runner import run

    tmp = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("paper", artifact_location=(tmp / "artifacts").as_uri())
    cfg = resolve(method="frozen_clip", dataset="demo", protocol="base2novel", overrides={
        "root": str(small_demo_root), "optim": {"epochs": 0}, "resources": {"workers": 0},
        "tracking": {"uri": uri, "experiment": "paper"}, "run": {"name": "frozen-s1", "storage": str(tmp / "runs")},
    })
    result = run(cfg)
    # an Optuna plot logged by a sweep, where the report looks for it
    sweep_png = tmp / "optimization_history.png"
    _tiny_png(sweep_png)
    client = MlflowClient(uri)
    sweep = client.create_run(client.get_experiment_by_name("paper").experiment_id, run_name="sweep-parent")
    client.log_artifact(sweep.info.run_id, str(sweep_png), "sweep/plots")
    client.set_terminated(sweep.info.run_id)
    out = tmp / "out"
    proc = run_cli("report", "--experiment", "paper", "--out", str(out), "--tsne-videos", "32",
                   env={"MLFLOW_TRACKING_URI": uri, "ZSAR_HOME": os.environ["ZSAR_HOME"]})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("index.html")
    return out, result


def _tiny_png(path: Path):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(path, dpi=40)
    plt.close(fig)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def test_report_tables_plots_and_run_section(report):
    out, result = report
    rows = list(csv.DictReader((out / "tables" / "base2novel_cells.csv").open()))
    ours = {r["column"]: r for r in rows if r["source"] == "ours"}
    # the table holds exactly what the run logged, traced to it
    assert float(ours["s1 HM"]["value"]) == pytest.approx(result.metrics["hm"], abs=1e-3)
    assert ours["s1 HM"]["run_ids"] == result.run_id
    assert ours["s2 Base"]["missing"] == "1" and ours["mean HM"]["note"] == "1/3 splits"
    for name in ("base2novel.png", ):
        assert min(_png_size(out / "plots" / name)) > 50
    run_dir = out / "runs" / result.run_id
    for name in ("per_class_base.png", "per_class_novel.png", "confusion_base.png", "confusion_novel.png", "tsne_novel.png"):
        assert min(_png_size(run_dir / name)) > 50, name
    tsne = np.load(run_dir / "tsne_novel.npz")
    # --tsne-videos 32 asks 4 a class; the small demo has 3 test videos of each of 8 novel classes
    assert int(tsne["n_videos"]) == 24 and tsne["points"].shape == (24 + 8, 2)
    assert sorted(np.bincount(tsne["labels"])) == [3] * 8
    assert np.isfinite(tsne["points"]).all()
    assert (out / "sweeps").is_dir() and list((out / "sweeps").rglob("optimization_history.png"))
    page = (out / "index.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_confusion_artifact_agrees_with_logged_accuracy(report):
    """The confusion matrix the pipeline now logs: its diagonal over its row sums is the per-class
    accuracy, and the total accuracy is the logged novel top-1."""
    from mlflow.tracking import MlflowClient

    out, result = report
    client = MlflowClient(result.tracking_uri)
    local = Path(client.download_artifacts(result.run_id, "eval/confusion/novel.csv", str(out / "check")))
    rows = list(csv.reader(local.open()))
    cm = np.asarray([[int(x) for x in r[1:]] for r in rows[1:]])
    assert cm.shape == (8, 8)
    assert np.trace(cm) / cm.sum() * 100 == pytest.approx(result.metrics["novel_top1"], abs=1e-3)


def test_report_page_in_headless_chromium(report, artifacts_dir):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's `chromium` is not installed (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) is not installed")
    out, _ = report
    index = (out / "index.html").resolve()
    requests = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(index.as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])")
        links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        page.screenshot(path=str(artifacts_dir / "report_page.png"), full_page=True)
        browser.close()
    assert len(images) >= 6  # table bars, per-class x2, confusion x2, t-SNE, sweep plot
    for src, complete, width in images:
        assert complete and width > 0, src
    for href in links:
        if href.startswith("#"):
            continue
        assert (index.parent / href).is_file(), href
    left = [u for u in requests if not u.startswith("file://")]
    assert not left, left
    assert all(u.startswith("file://") for u in requests) and len(requests) >= 1 + len(images)
