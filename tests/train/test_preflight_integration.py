"""Bad files found before training and counted once (issue 21): a `folder` dataset (a CSV) of the
small demo's videos plus one each of zero-byte, cut MP4, random bytes, text named .mp4 and a
listed-but-missing file, and one AVI cut short that still decodes. With the default
`data.max_failure_fraction` the run stops before any training step with one line naming the five;
with the limit raised it finishes, counting each bad file once at every epoch."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from zsar.config import resolve
from zsar.train.runner import run
from conftest import REAL_CLIPS, run_cli

pytestmark = pytest.mark.integration

CLASSES = 3
BAD = ("zero.mp4", "cut.mp4", "random.mp4", "text.mp4", "missing.mp4")


def _dataset(demo: Path, root: Path) -> Path:
    """root/videos.csv: path,label,split. Bad files go to both parts; zero.mp4 is listed in both
    (one file, counted once)."""
    root.mkdir(parents=True)
    mp4 = next(p for p in REAL_CLIPS if p.suffix == ".mp4").read_bytes()
    avi = REAL_CLIPS[0].read_bytes()
    content = {"zero.mp4": b"", "cut.mp4": mp4[: len(mp4) // 3],
               "random.mp4": np.random.default_rng(0).integers(0, 256, 30000, dtype=np.uint8).tobytes(),
               "text.mp4": b"this is not a video\n" * 200, "short_cut.avi": avi[: len(avi) * 6 // 10]}
    for name, data in content.items():
        (root / name).write_bytes(data)
    rows = []
    classes = sorted(p for p in (demo / "videos" / "train").iterdir() if p.is_dir())[:CLASSES]
    for split in ("train", "test"):
        for cls in classes:
            rows += [(str(v), cls.name, split) for v in sorted((demo / "videos" / split / cls.name).iterdir())]
    first = classes[0].name
    rows += [("zero.mp4", first, "train"), ("cut.mp4", first, "train"), ("random.mp4", first, "train"),
             ("short_cut.avi", first, "train"),
             ("zero.mp4", first, "test"), ("text.mp4", first, "test"), ("missing.mp4", first, "test")]
    with open(root / "videos.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split"])
        w.writerows(rows)
    return root / "videos.csv"


@pytest.fixture(scope="module")
def listed(small_demo_root, tmp_path_factory):
    return _dataset(small_demo_root, tmp_path_factory.mktemp("preflight") / "data")


SETTINGS = ["backbone.name=zsar-tiny", "backbone.pretrained=null", "resources.workers=0", "optim.epochs=2",
            "optim.batch_size=4", "data.num_frames=2", "data.size=32"]


def test_default_limit_stops_before_training_with_one_line_naming_every_bad_file(listed, zsar_home, ray_session):
    proc = run_cli("train", "--method", "vificlip", "--dataset", "folder", "--protocol", "full", "--root", str(listed),
                   "--set", *SETTINGS)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "step 1/" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "cannot be read" in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    line = errors[0]
    for name in BAD:
        assert f"{os.sep}{name} (" in line, (name, line)
    assert "short_cut.avi" not in line  # cut short, but decodable: used, not a failure
    assert "5 videos cannot be read" in line and "train 3 of " in line and "test 3 of " in line
    assert "--set data.max_failure_fraction=" in line and f"zsar data check --dataset folder --root {listed}" in line
    client = MlflowClient()  # stopped before any MLflow run was started: nothing left RUNNING
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_raised_limit_finishes_and_counts_each_bad_file_once(listed, zsar_home, ray_session, tmp_path, capfd):
    overrides = {"root": str(listed), "backbone": {"name": "zsar-tiny", "pretrained": None},
                 "resources": {"workers": 0}, "optim": {"epochs": 2, "batch_size": 4, "eval_every": 1},
                 "data": {"num_frames": 2, "size": 32, "max_failure_fraction": 0.5},
                 "run": {"name": "preflight", "storage": str(tmp_path / "runs")}, "tracking": {"experiment": "preflight"}}
    result = run(resolve(method="vificlip", dataset="folder", protocol="full", overrides=overrides))
    client = MlflowClient(result.tracking_uri)
    failures = [(m.step, m.value) for m in client.get_metric_history(result.run_id, "data/failures")]
    assert failures == [(1, 5.0), (2, 5.0)]
    assert [m.value for m in client.get_metric_history(result.run_id, "data/truncated")] == [1.0, 1.0]
    assert client.get_run(result.run_id).info.status == "FINISHED"
    table = client.download_artifacts(result.run_id, "eval/failures.csv", str(tmp_path))
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(Path(r["path"]).name for r in rows) == sorted(BAD)
    parts = {Path(r["path"]).name: r["part"] for r in rows}
    assert parts == {"zero.mp4": "train", "cut.mp4": "train", "random.mp4": "train", "text.mp4": "test", "missing.mp4": "test"}
    assert all(r["error"] for r in rows)
    assert "truncated" in next(r["error"] for r in rows if r["path"].endswith("cut.mp4"))
    assert "skipped 5 videos (see failures.csv)" in capfd.readouterr().err
