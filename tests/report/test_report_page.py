"""`zsar report` end to end: real evaluation runs (frozen CLIP, tiny backbone) logged to a real
MLflow store — base-to-novel on the small demo, and `folder`/`full` on a folder of its videos with
one file that does not decode — the report built by the CLI, and the page opened in headless
Chromium, whose screenshots are checked for plots that fit the page and titles inside them."""

import csv
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import fresh_store, run_cli
from test_plots import edge_ink

pytestmark = pytest.mark.integration

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def report(small_demo_root, session_home, empty_store, tmp_path_factory):
    import os

    from mlflow.tracking import MlflowClient

    from zsar.config import resolve
    from zsar.train.runner import run

    tmp = tmp_path_factory.mktemp("report")
    uri = fresh_store(empty_store, tmp)
    MlflowClient(uri).create_experiment("paper", artifact_location=(tmp / "artifacts").as_uri())
    cfg = resolve(method="frozen_clip", dataset="demo", protocol="base2novel", overrides={
        "root": str(small_demo_root), "optim": {"epochs": 0}, "resources": {"workers": 0},
        "tracking": {"uri": uri, "experiment": "paper"}, "run": {"name": "frozen-s1", "storage": str(tmp / "runs")},
    })
    result = run(cfg)
    folder = _folder_of(small_demo_root, tmp / "folder")
    cfg = resolve(method="frozen_clip", dataset="folder", protocol="full", overrides={
        "root": str(folder), "optim": {"epochs": 0}, "resources": {"workers": 0}, "data": {"max_failure_fraction": 0.5},
        "backbone": {"name": "zsar-tiny", "pretrained": None},
        "tracking": {"uri": uri, "experiment": "paper"}, "run": {"name": "frozen-folder", "storage": str(tmp / "runs")},
    })
    folder_result = run(cfg)  # folder has one split: a plain run
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
    assert proc.stdout.strip() == str(out / "index.html")  # stdout: the result alone
    return out, result, folder_result


BROKEN = "broken_clip.mp4"


def _folder_of(demo_root: Path, root: Path) -> Path:
    """`folder` layout: four classes of the demo's test videos, and one file that is not a video."""
    classes = sorted(p for p in (demo_root / "videos" / "test").iterdir() if p.is_dir())[:4]
    for cls in classes:
        shutil.copytree(cls, root / cls.name)
    (root / classes[0].name / BROKEN).write_bytes(b"\x00\x01 not a video" * 64)
    return root


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
    out, result, folder_result = report
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
    # folder/full: the split the run made, its one undecodable file counted and named
    full = list(csv.DictReader((out / "tables" / "full.csv").open()))
    assert len(full) == 1 and full[0]["method"] == "frozen_clip" and full[0]["run_ids"] == folder_result.run_id
    assert float(full[0]["all Top-1"]) == pytest.approx(folder_result.metrics["top1"], abs=1e-3)
    assert full[0]["failed_videos"] == "1" == str(int(folder_result.metrics["data/failures"]))
    assert f"Run frozen-folder ({folder_result.run_id}): best of full" in page and BROKEN in page
    assert (out / "runs" / folder_result.run_id / "per_class_test.png").is_file()


def test_confusion_artifact_agrees_with_logged_accuracy(report):
    """The confusion matrix the pipeline now logs: its diagonal over its row sums is the per-class
    accuracy, and the total accuracy is the logged novel top-1."""
    from mlflow.tracking import MlflowClient

    out, result, _ = report
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
    out, _, _ = report
    index = (out / "index.html").resolve()
    requests, shots = [], {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(index.as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])")
        links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        page.screenshot(path=str(artifacts_dir / "report_page.png"), full_page=True)
        content = page.evaluate("document.body.clientWidth")
        for i, img in enumerate(page.query_selector_all("img")):
            src = img.get_attribute("src")
            if src.startswith(("plots/", "runs/")):  # ours, not a sweep's own plot
                shots[src] = (img.bounding_box()["width"], artifacts_dir / f"report_img_{i}.png")
                img.screenshot(path=str(shots[src][1]))
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
    # the plots as the browser shows them: wide enough to read on a 1280 px page, titles and labels
    # inside the image (nothing drawn in its outer pixels; the element's shot starts at a fractional
    # offset, so its 1 px CSS border lies in its first 3 pixels: those are cut off first)
    import matplotlib.image as mpimg

    assert {"plots/base2novel.png", "plots/full.png"} <= set(shots) and len(shots) >= 8
    for src, (width, shot) in shots.items():
        assert width >= (500 if "confusion" in src else 0.6 * content), (src, width, content)
        rendered = mpimg.imread(shot)[3:-3, 3:-3]
        assert edge_ink(rendered) == 0, f"{src}: something is drawn at the image's edge (a clipped title or label?)"
