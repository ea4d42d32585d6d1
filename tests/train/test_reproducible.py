"""A run is a function of (config, seed, data, code): not of the machine's load, the number of
decode tasks, an interruption, or the number of workers (issue: reproducible runs).

Runs here train vificlip on the small demo (96 training videos of 8 base classes) with augmented
clips, so the random offsets, crops and flips of every epoch are part of what must repeat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from zsar.data.sources.demo import TRAIN_SHOTS
from zsar.train import checkpoint as ckpt
from zsar.train.runner import run
from conftest import cli_env, fresh_store, repro_config, run_cli, zsar_command

pytestmark = pytest.mark.integration

SMALL_TRAIN_PER_CLASS = 6  # conftest's small_demo_root


def _cfg(root, name, **over):
    return repro_config(root, name, **over)


def _history(uri, run_id, key) -> dict[int, float]:
    return {m.step: m.value for m in MlflowClient(uri).get_metric_history(run_id, key)}


@pytest.fixture
def busy_cores():
    """Both cores loaded by other processes while the test runs (niced: the run's tasks are delayed
    and reordered without the test taking twice as long)."""
    procs = [subprocess.Popen(["nice", "-n", "10", sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for p in procs:
        p.kill()
        p.wait()


@pytest.fixture(scope="module")
def reference(small_demo_root, session_home, empty_store, ray_session, tmp_path_factory):
    """The uninterrupted run every other run here is compared with (4 epochs, 1 decode task)."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = fresh_store(empty_store, tmp_path_factory.mktemp("repro_store"))
    yield run(_cfg(small_demo_root, "reference"))
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(scope="module")
def worker_runs(small_demo_root, session_home, empty_store, ray_session, tmp_path_factory) -> dict:
    """The same 2-epoch training in the driver (`workers=0`, the one-process loop every launch runs)
    and over 2 Ray Train workers (same global batch), shared by the tests of the loss curve and of
    the global batch split: {0: RunResult, 2: RunResult}."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = fresh_store(empty_store, tmp_path_factory.mktemp("worker_runs"))
    try:
        return {n: run(repro_config(small_demo_root, f"workers-{n}", resources={"workers": n}, optim={"epochs": 2}))
                for n in (0, 2)}
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def test_decode_tasks_and_machine_load_do_not_change_the_numbers(reference, small_demo_root, busy_cores, figures):
    again = run(_cfg(small_demo_root, "three-tasks-loaded", data={"decode_tasks": 3, "decode_batch": 2}))
    keys = ("train/loss", "base_top1", "novel_top1", "hm")
    figures["repro/3_tasks_loaded_vs_1_task_max_abs_diff"] = max(abs(again.metrics[k] - reference.metrics[k]) for k in keys)
    for key in keys:
        assert again.metrics[key] == reference.metrics[key], key
    for key in ("train/loss", "lr"):
        assert _history(again.tracking_uri, again.run_id, key) == _history(reference.tracking_uri, reference.run_id, key)


def test_a_run_killed_after_epoch_2_continues_exactly(reference, small_demo_root, tmp_path, figures):
    storage = tmp_path / "runs"
    args = ["train", "--method", "vificlip", "--dataset", "demo", "--root", str(small_demo_root), "--protocol",
            "base2novel", "--name", "killed", "--workers", "0", "--set", "optim.epochs=4", "optim.batch_size=8",
            "optim.lr=1e-4", "data.augment=true", "data.flip=true", "data.decode_tasks=2", "data.decode_batch=4",
            f"run.storage={storage}", "tracking.experiment=repro"]
    log = open(tmp_path / "first.log", "w+")  # a file, not a pipe: a full pipe would block the run
    proc = subprocess.Popen(zsar_command(*args), stdout=log, stderr=subprocess.STDOUT, env=cli_env(), start_new_session=True)

    def epoch_two_saved() -> bool:
        return any(ckpt.is_complete(c) and ckpt.epoch_of(c) == 2 for c in (storage / "killed").glob("checkpoint_*"))

    deadline = time.time() + 600
    while time.time() < deadline and not epoch_two_saved() and proc.poll() is None:
        time.sleep(0.1)
    assert epoch_two_saved(), (tmp_path / "first.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)  # no clean-up of any kind: a lost node
    proc.wait(timeout=60)

    second = run_cli(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    run_id = json.loads((storage / "killed" / "zsar_run.json").read_text())["run_id"]
    uri = reference.tracking_uri
    diffs = []
    for key in ("train/loss", "lr", "base_top1", "hm"):
        resumed, whole = _history(uri, run_id, key), _history(uri, reference.run_id, key)
        diffs += [abs(resumed[e] - whole[e]) for e in (3, 4) if e in whole]
        for epoch in (3, 4):
            if epoch in whole:
                assert resumed[epoch] == pytest.approx(whole[epoch], abs=1e-3, rel=0), (key, epoch)
    assert "resumed from" in second.stderr
    figures["repro/killed_after_epoch_2_epochs_3_4_max_abs_diff"] = max(diffs)


def test_zsar_rerun_reproduces_a_finished_run(reference, figures):
    out = run_cli("rerun", reference.run_id)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["run_id"] == reference.run_id and report["rerun_run_id"] != reference.run_id
    assert report["compared"] >= 5 and "hm" in report["metrics"] and "train/loss" in report["metrics"]
    figures["repro/zsar_rerun_largest_diff"] = report["largest_difference"]["difference"]
    assert report["largest_difference"]["difference"] < 1e-3
    assert "largest difference" in out.stderr


def test_one_process_and_two_workers_follow_the_same_loss_curve(worker_runs, figures):
    """Same global batch: DDP with 2 workers averages the gradients of the two halves of each of
    the one-process run's batches (zsar.data.order), so the losses agree to float rounding."""
    one, two = worker_runs[0], worker_runs[2]
    curve = lambda r: _history(r.tracking_uri, r.run_id, "train/loss")  # noqa: E731
    assert sorted(curve(one)) == sorted(curve(two)) == [1, 2]
    figures["repro/1_process_vs_2_workers_loss_max_rel_diff"] = max(abs(curve(two)[e] / loss - 1) for e, loss in curve(one).items())
    for epoch, loss in curve(one).items():
        assert curve(two)[epoch] == pytest.approx(loss, rel=1e-4), epoch


def test_global_batch_size_is_split_across_workers(small_demo_root, worker_runs):
    """optim.batch_size is the global batch: one process takes 8 clips a step, 2 workers 4 each."""
    train_rows = 8 * min(SMALL_TRAIN_PER_CLASS, TRAIN_SHOTS)
    for workers, result in worker_runs.items():
        assert result.metrics["train/samples_per_step"] == 8.0, workers
        assert result.metrics["train/samples"] == (train_rows // 8) * 8, workers  # full batches only, every epoch's
        assert result.metrics["train/steps"] == train_rows // 8, workers  # per worker: each takes every step
