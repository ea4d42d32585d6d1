"""Every run that stops ends FINISHED, FAILED or KILLED, with the error as the tag `zsar.error`;
none is left RUNNING (real MLflow store, real Ray, the small demo). Artifacts of the default
store go under ZSAR_HOME, never into the current folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from mlflow.tracking import MlflowClient

from conftest import cli_env, zsar_command
from zsar.config import deep_merge, resolve
from zsar.errors import ConfigError, DivergedError
from zsar.train.runner import run

pytestmark = pytest.mark.integration


def _cfg(root, split="s1", **overrides):
    base = {"root": str(root), "split": split, "optim": {"epochs": 1, "eval_every": 1, "batch_size": 8},
            "tracking": {"experiment": "states"}, "data": {"num_frames": 2}}
    return resolve(method="vificlip", dataset="demo", protocol="base2novel",
                   overrides=deep_merge(base, overrides))


def _runs(uri, experiment="states"):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=100) if exp else []


def test_bad_config_caught_after_the_parent_started_fails_the_parent(small_demo_root, zsar_home, ray_session, tmp_path):
    cfg = _cfg(small_demo_root, split="all", optim={"batch_size": 10_000}, run={"storage": str(tmp_path / "runs")})
    with pytest.raises(ConfigError, match="larger than"):
        run(cfg)
    runs = _runs(os.environ["MLFLOW_TRACKING_URI"])
    assert runs, "the --split all parent run was not created"
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "ConfigError" in runs[0].data.tags["zsar.error"] and "larger than" in runs[0].data.tags["zsar.error"]


@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)])  # 1: the check runs in Train's controller
def test_nan_loss_stops_the_run_failed(small_demo_root, zsar_home, ray_session, tmp_path, workers):
    cfg = _cfg(small_demo_root, optim={"lr": 1.0e30, "epochs": 2}, resources={"workers": workers},
               run={"storage": str(tmp_path / "runs"), "name": f"nan-{workers}"})
    with pytest.raises(DivergedError, match="train/loss=nan"):
        run(cfg)
    (only,) = _runs(os.environ["MLFLOW_TRACKING_URI"])
    assert only.info.status == "FAILED"
    assert "non-finite" in only.data.tags["zsar.error"]
    assert only.data.metrics["epoch"] == 1  # the diverged epoch reached MLflow, the next one never ran


@pytest.mark.slow
# SIGTERM stops a Ray Train run (the default launch), SIGINT a run in the driver (`--workers 0`)
@pytest.mark.parametrize("sig,workers", [(signal.SIGTERM, 1), (signal.SIGINT, 0)], ids=["15", "2"])
def test_a_signalled_run_ends_killed_with_exit_130(small_demo_root, zsar_home, ray_session, tmp_path, sig, workers):
    storage = tmp_path / "runs"
    args = ["train", "--method", "vificlip", "--dataset", "demo", "--root", str(small_demo_root), "--protocol",
            "base2novel", "--name", "signalled", "--workers", str(workers), "--set", "optim.epochs=6", "optim.batch_size=8",
            "data.num_frames=2", f"run.storage={storage}", "tracking.experiment=states"]
    log = open(tmp_path / "run.log", "w+")
    proc = subprocess.Popen(zsar_command(*args), stdout=log, stderr=subprocess.STDOUT, text=True, env=cli_env(),
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((storage / "signalled").glob("checkpoint_*")) and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
    proc.send_signal(sig)  # to the zsar process alone, as `kill` or a job stop does
    proc.wait(timeout=120)
    out = (tmp_path / "run.log").read_text()
    assert proc.returncode == 130, out[-3000:]
    run_id = json.loads((storage / "signalled" / "zsar_run.json").read_text())["run_id"]
    run_ = MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).get_run(run_id)
    assert run_.info.status == "KILLED" and "interrupted" in run_.data.tags["zsar.error"]
    assert not [line for line in out.splitlines() if line.startswith("Traceback")]  # the driver's own (Ray actors' lines are prefixed)
    assert out.rstrip().endswith("zsar: interrupted")


def test_default_store_keeps_artifacts_in_zsar_home_not_the_current_folder(small_demo_root, empty_store, ray_session,
                                                                          tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(empty_store, home / "mlflow.db")
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    env = {k: v for k, v in cli_env({"ZSAR_HOME": str(home)}).items() if k != "MLFLOW_TRACKING_URI"}
    # in the driver (--workers 0): every file the run writes is written from the process run in `cwd`
    proc = subprocess.run(zsar_command("train", "--method", "vificlip", "--dataset", "demo", "--root", str(small_demo_root),
                                       "--protocol", "base2novel", "--workers", "0", "--set", "optim.epochs=1",
                                       "optim.batch_size=8", "data.num_frames=2", "tracking.experiment=states"),
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(cwd.iterdir()) == []  # no mlruns/ (nor anything else) in the current folder
    (only,) = _runs(f"sqlite:///{home / 'mlflow.db'}")
    assert only.info.artifact_uri.startswith((home / "mlartifacts").as_uri())
    assert list((home / "mlartifacts").rglob("config.yaml"))


def test_an_experiment_in_a_folders_mlruns_is_reported_once(zsar_home, tmp_path, capsys):
    from zsar.track import mlflow_log as track

    uri = os.environ["MLFLOW_TRACKING_URI"]
    MlflowClient(uri).create_experiment("old", artifact_location=(tmp_path / "mlruns" / "1").as_uri())
    first = track.ensure_experiment(uri, "old")
    assert track.ensure_experiment(uri, "old") == first
    lines = [line for line in capsys.readouterr().err.splitlines() if "mlruns" in line]
    assert len(lines) == 1 and "'old'" in lines[0] and "not moved" in lines[0]
    assert MlflowClient(uri).get_experiment(first).artifact_location == (tmp_path / "mlruns" / "1").as_uri()
    new = track.ensure_experiment(uri, "new")
    assert MlflowClient(uri).get_experiment(new).artifact_location.startswith((tmp_path / "mlartifacts").as_uri())
