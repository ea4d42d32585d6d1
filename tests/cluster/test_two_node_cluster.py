"""`zsar submit` against a real two-node Ray cluster on this machine, with a real MLflow server:
one 2-epoch job trains with DDP over both nodes, loses a worker after epoch 1 and survives it in one
MLflow run, with the per-epoch numbers of the same config trained without interruption (in one
process: a run's numbers do not depend on how many workers train it, tests/train/test_reproducible)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO, cli_env, run_cli, zsar_command
from local_cluster import start_cluster
from local_processes import start_mlflow, stop_group, wait_mlflow
from zsar.train.loop import HOLD
from zsar.train.workers import attempts, read_records
from zsar.train import checkpoint as ckpt

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster_services")
    url, mlflow_proc = start_mlflow(folder)  # starts while the Ray nodes start
    try:
        cluster = start_cluster()
    except BaseException:
        stop_group(mlflow_proc)
        raise
    try:
        wait_mlflow(url, mlflow_proc, folder)
    except BaseException:
        cluster.stop()
        stop_group(mlflow_proc)
        raise
    try:
        yield cluster, url, folder
    finally:
        cluster.stop()
        stop_group(mlflow_proc)


def _train_args(name: str, root, storage, *extra: str) -> list[str]:
    return ["train", "--method", "vificlip", "--dataset", "demo", "--protocol", "base2novel", "--root", str(root),
            "--workers", "2", "--name", name, "--set", f"run.storage={storage}", "tracking.experiment=" + name, *extra]


def _env(cluster, mlflow_url) -> dict:
    # what a user's shell holds: the tracking server and the cluster's token
    return {"MLFLOW_TRACKING_URI": mlflow_url, "RAY_AUTH_TOKEN": cluster.env["RAY_AUTH_TOKEN"]}


EPOCHS = ("optim.epochs=2", "resources.placement=STRICT_SPREAD")


def _epochs_logged(client, experiment: str) -> list[int]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id]) if exp else []
    return sorted(m.step for r in runs for m in client.get_metric_history(r.info.run_id, "train/loss"))


@pytest.fixture(scope="module")
def killed_job(services, small_demo_root):
    """`zsar submit` of a 2-epoch run over both nodes, as a user runs it (it streams the job's logs,
    then prints the job id), whose rank-1 worker is SIGKILLed once epoch 1 is checkpointed and its
    report reached the driver (it is in MLflow). The workers hold there (ZSAR_HOLD_AFTER_EPOCH_1),
    so the kill lands between epoch 1's report and epoch 2 on every machine."""
    cluster, url, folder = services
    run_dir = folder / "runs" / "faulty"
    hold = folder / "hold-after-epoch-1"
    hold.touch()
    out, err = open(folder / "submit.out", "w+"), open(folder / "submit.err", "w+")
    proc = subprocess.Popen(zsar_command("submit", "--address", cluster.dashboard, "--env", "ZSAR_HOME",
                                         "--env", f"{HOLD}={hold}", "--",
                                         *_train_args("faulty", small_demo_root, folder / "runs", *EPOCHS, "run.max_failures=1")),
                            stdout=out, stderr=err, text=True, env=cli_env(_env(cluster, url)))
    client = MlflowClient(url)
    try:
        deadline = time.time() + 600
        victim = None
        while time.time() < deadline and victim is None and proc.poll() is None:
            _, epoch = ckpt.latest_complete(run_dir)
            records = read_records(run_dir)
            if epoch == 1 and len(records) == 2 and _epochs_logged(client, "faulty") == [1]:
                victim = next(r for r in records if r["rank"] == 1)
            elif epoch > 1:
                pytest.fail(f"epoch 2 ended before the worker could be killed (checkpoint epoch {epoch})")
            time.sleep(0.5)
        assert victim is not None, "no epoch-1 checkpoint: " + (folder / "submit.err").read_text()[-3000:]
        os.kill(victim["pid"], signal.SIGKILL)  # a worker of this test's own cluster, by the PID it reported
        hold.unlink()  # the restarted workers go on from epoch 1's checkpoint (they never report epoch 1 again)
        proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out.seek(0)
    err.seek(0)
    return {"returncode": proc.returncode, "stdout": out.read(), "stderr": err.read(), "victim": victim,
            "run_dir": run_dir, "client": client}


def test_submit_trains_over_both_nodes_into_mlflow(services, killed_job, zsar_home):
    cluster, url, folder = services
    assert killed_job["returncode"] == 0, killed_job["stdout"][-4000:] + killed_job["stderr"][-3000:] + cluster.log_tail()
    job_id = killed_job["stdout"].strip().splitlines()[-1]
    assert job_id.startswith("zsar-train-faulty-")

    records = read_records(killed_job["run_dir"])
    first = records[:2]  # the first worker group, one worker a node
    assert sorted(r["rank"] for r in first) == [0, 1]
    assert {r["node_id"] for r in first} == {cluster.node_named("node_head"), cluster.node_named("node_b")}
    # the workers imported the shipped package, not this checkout
    assert all(not r["code"].startswith(str(REPO)) for r in records), records

    client = killed_job["client"]
    runs = client.search_runs([client.get_experiment_by_name("faulty").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert {"hm", "base_top1", "novel_top1", "train/loss"} <= set(runs[0].data.metrics)
    assert runs[0].data.params["resources.workers"] == "2"

    listed = run_cli("jobs", "list", "--address", cluster.dashboard, env=_env(cluster, url))
    assert listed.returncode == 0 and job_id in listed.stdout and "SUCCEEDED" in listed.stdout, listed.stderr
    status = run_cli("jobs", "status", job_id, "--address", cluster.dashboard, env=_env(cluster, url))
    assert json.loads(status.stdout)["status"] == "SUCCEEDED"
    logs = run_cli("jobs", "logs", job_id, "--address", cluster.dashboard, env=_env(cluster, url))
    assert "worker rank 1/2" in logs.stdout and "eval novel" in logs.stdout


def test_unauthenticated_submit_is_refused(services, zsar_home, tmp_path):
    cluster, url, _ = services
    out = run_cli("jobs", "list", "--address", cluster.dashboard,
                  env={"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": "", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "none")})
    said = out.stdout + out.stderr
    assert out.returncode != 0 and ("401" in said or "uthentication" in said), said


def _per_epoch(client, experiment: str, key: str) -> dict[int, float]:
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    return {m.step: m.value for m in client.get_metric_history(runs[0].info.run_id, key)}


def test_killed_worker_restarts_once_from_the_epoch_1_checkpoint(services, killed_job, small_demo_root, zsar_home,
                                                                  ray_session, tmp_path):
    from zsar.config import resolve
    from zsar.train.runner import run

    assert killed_job["returncode"] == 0, killed_job["stderr"][-3000:]
    victim = killed_job["victim"]
    records = read_records(killed_job["run_dir"])
    assert attempts(records) == 2, records  # exactly one restart
    assert victim["pid"] not in [r["pid"] for r in records if r["started"] > victim["started"]]
    text = killed_job["stdout"] + killed_job["stderr"]  # the job's logs, streamed by `zsar submit`
    resumed = text.split("resumed from", 1)
    assert len(resumed) == 2 and resumed[1].split("at epoch", 1)[1].split()[0] == "1", text[-4000:]
    after = resumed[1]
    assert "epoch 1/2 step" not in after and "epoch 2/2 step" in after

    client = killed_job["client"]
    runs = client.search_runs([client.get_experiment_by_name("faulty").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    steps = sorted(m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss"))
    assert steps == [1, 2], steps  # both epochs' metrics, each once, in one run

    # and the numbers of the same config that nobody interrupted (trained in one process, on this
    # session's own Ray: the 2-worker global batch of 8 is the one process's batch)
    whole = run(resolve(method="vificlip", dataset="demo", protocol="base2novel", overrides={
        "root": str(small_demo_root), "optim": {"epochs": 2}, "resources": {"workers": 0},
        "run": {"name": "whole", "storage": str(tmp_path)}, "tracking": {"experiment": "whole"}}))
    twin = MlflowClient(whole.tracking_uri)
    for key in ("train/loss", "base_top1", "hm"):
        resumed_curve, whole_curve = _per_epoch(client, "faulty", key), _per_epoch(twin, "whole", key)
        assert resumed_curve.keys() == whole_curve.keys()
        for epoch in whole_curve:
            assert resumed_curve[epoch] == pytest.approx(whole_curve[epoch], abs=1e-3, rel=0), (key, epoch)
