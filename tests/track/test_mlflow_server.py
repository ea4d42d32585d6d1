"""A real `mlflow server` on 127.0.0.1: a run trains through it and is read back."""

import pytest
from mlflow.tracking import MlflowClient

from local_processes import start_mlflow, stop_group, wait_mlflow
from zsar.config import resolve
from zsar.train.runner import run

pytestmark = pytest.mark.integration


@pytest.fixture
def mlflow_server(tmp_path):
    url, proc = start_mlflow(tmp_path)
    try:
        wait_mlflow(url, proc, tmp_path, timeout=120)
        yield url
    finally:
        stop_group(proc, timeout=30)  # the server and its gunicorn/uvicorn workers


def test_training_logs_through_a_real_server(small_demo_root, zsar_home, ray_session, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    cfg = resolve(method="vificlip", dataset="demo", protocol="base2novel",
                  overrides={"root": str(small_demo_root), "optim": {"epochs": 2}, "resources": {"workers": 0},
                             "run": {"name": "via-server"}, "tracking": {"experiment": "server"}})
    result = run(cfg)
    assert result.tracking_uri == mlflow_server
    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("server").experiment_id])
    assert [r.info.run_id for r in runs] == [result.run_id]
    logged = runs[0]
    assert logged.info.status == "FINISHED"
    assert {"base_top1", "novel_top1", "hm", "train/loss"} <= set(logged.data.metrics)
    assert [m.step for m in client.get_metric_history(result.run_id, "train/loss")] == [1, 2]
    assert logged.data.params["method"] == "vificlip" and logged.data.params["optim.epochs"] == "2"
    assert "config.yaml" in {a.path for a in client.list_artifacts(result.run_id)}
