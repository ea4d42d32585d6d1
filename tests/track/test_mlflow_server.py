"""A real `mlflow server` on 127.0.0.1: a run trains through it and is read back."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from zsar.config import resolve
from zsar.train.runner import run

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    exe = str(Path(sys.executable).with_name("mlflow"))
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [exe, "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError((tmp_path / "server.log").read_text()[-2000:])
                time.sleep(0.5)
        else:
            raise RuntimeError("mlflow server did not start: " + (tmp_path / "server.log").read_text()[-2000:])
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its gunicorn/uvicorn workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_training_logs_through_a_real_server(demo_root, zsar_home, ray_session, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    cfg = resolve(method="vificlip", dataset="demo", protocol="base2novel",
                  overrides={"optim": {"epochs": 2}, "run": {"name": "via-server"}, "tracking": {"experiment": "server"}})
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
