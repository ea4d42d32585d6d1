"""`zsar submit` against a real two-node Ray cluster on this machine, with a real MLflow server:
DDP over both nodes, and a worker killed mid-run that the run survives in one MLflow run, with the
same per-epoch numbers as the run that was not interrupted."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO, run_cli
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


@pytest.fixture(scope="module")
def two_node_run(services, small_demo_root):
    """The uninterrupted 2-epoch run over both nodes (the killed run's twin)."""
    cluster, url, folder = services
    out = run_cli("submit", "--address", cluster.dashboard, "--env", "ZSAR_HOME", "--",
                  *_train_args("two-nodes", small_demo_root, folder / "runs", *EPOCHS), env=_env(cluster, url), timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:] + cluster.log_tail()
    return out.stdout.strip().splitlines()[-1]


def _per_epoch(client, experiment: str, key: str) -> dict[int, float]:
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    return {m.step: m.value for m in client.get_metric_history(runs[0].info.run_id, key)}


def test_submit_trains_over_both_nodes_into_mlflow(services, two_node_run, zsar_home):
    cluster, url, folder = services
    storage = folder / "runs"
    job_id = two_node_run
    assert job_id.startswith("zsar-train-two-nodes-")

    records = read_records(storage / "two-nodes")
    assert sorted(r["rank"] for r in records) == [0, 1]
    assert {r["node_id"] for r in records} == {cluster.node_named("node_head"), cluster.node_named("node_b")}
    # the workers imported the shipped package, not this checkout
    assert all(not r["code"].startswith(str(REPO)) for r in records), records

    client = MlflowClient(url)
    runs = client.search_runs([client.get_experiment_by_name("two-nodes").experiment_id])
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


def test_killed_worker_restarts_once_from_the_epoch_1_checkpoint(services, two_node_run, small_demo_root, zsar_home):
    cluster, url, folder = services
    storage = folder / "runs"
    run_dir = storage / "faulty"
    hold = folder / "hold-after-epoch-1"  # the workers wait after epoch 1's report while it exists
    hold.touch()
    out = run_cli("submit", "--no-wait", "--address", cluster.dashboard, "--env", "ZSAR_HOME",
                  "--env", f"{HOLD}={hold}", "--",
                  *_train_args("faulty", small_demo_root, storage, *EPOCHS, "run.max_failures=1"),
                  env=_env(cluster, url))
    assert out.returncode == 0, out.stderr[-3000:]
    job_id = out.stdout.strip().splitlines()[-1]

    client = MlflowClient(url)

    def epochs_logged() -> list[int]:
        exp = client.get_experiment_by_name("faulty")
        runs = client.search_runs([exp.experiment_id]) if exp else []
        return sorted(m.step for r in runs for m in client.get_metric_history(r.info.run_id, "train/loss"))

    # Kill once epoch 1 is checkpointed and its report reached the driver (it is in MLflow): the
    # workers hold there, so the kill lands between epoch 1's report and epoch 2 on every machine.
    deadline = time.time() + 600
    victim = None
    while time.time() < deadline and victim is None:
        _, epoch = ckpt.latest_complete(run_dir)
        records = read_records(run_dir)
        if epoch == 1 and len(records) == 2 and epochs_logged() == [1]:
            victim = next(r for r in records if r["rank"] == 1)
        elif epoch > 1:
            pytest.fail(f"epoch 2 ended before the worker could be killed (checkpoint epoch {epoch})")
        time.sleep(0.5)
    assert victim is not None, "no epoch-1 checkpoint: " + run_cli("jobs", "logs", job_id, "--address", cluster.dashboard, env=_env(cluster, url)).stdout[-3000:]
    os.kill(victim["pid"], signal.SIGKILL)  # a worker of this test's own cluster, by the PID it reported
    hold.unlink()  # the restarted workers go on from epoch 1's checkpoint (they never report epoch 1 again)

    logs = run_cli("jobs", "logs", job_id, "--follow", "--address", cluster.dashboard, env=_env(cluster, url), timeout=900)
    status = json.loads(run_cli("jobs", "status", job_id, "--address", cluster.dashboard, env=_env(cluster, url)).stdout)
    assert status["status"] == "SUCCEEDED", logs.stdout[-5000:]

    records = read_records(run_dir)
    assert attempts(records) == 2, records  # exactly one restart
    assert victim["pid"] not in [r["pid"] for r in records if r["started"] > victim["started"]]
    text = logs.stdout
    resumed = text.split("resumed from", 1)
    assert len(resumed) == 2 and resumed[1].split("at epoch", 1)[1].split()[0] == "1", text[-4000:]
    after = resumed[1]
    assert "epoch 1/2 step" not in after and "epoch 2/2 step" in after

    runs = client.search_runs([client.get_experiment_by_name("faulty").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    steps = sorted(m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss"))
    assert steps == [1, 2], steps  # both epochs' metrics, each once, in one run
    for key in ("train/loss", "base_top1", "hm"):  # and the numbers of the run nobody interrupted
        resumed, whole = _per_epoch(client, "faulty", key), _per_epoch(client, "two-nodes", key)
        assert resumed.keys() == whole.keys()
        for epoch in whole:
            assert resumed[epoch] == pytest.approx(whole[epoch], abs=1e-3, rel=0), (key, epoch)
