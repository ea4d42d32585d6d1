"""`zsar submit` pieces that need no cluster: the job's command line, id, env and token, the
shipped package, and how the config becomes Ray Train's scaling arguments."""

from __future__ import annotations

import zipfile

import pytest

from zsar.cluster import submit
from zsar.train.workers import attempts, read_records, scaling_kwargs, write_record
from zsar.config import resolve
from zsar.errors import ConfigError


def test_entrypoint_runs_the_command_through_the_shipped_package():
    cmd = ["train", "--method", "vificlip", "--set", "optim.lr=1e-4", "run.name=a b"]
    assert submit.entrypoint(cmd) == "python -m zsar.cli train --method vificlip --set optim.lr=1e-4 'run.name=a b'"
    assert submit.entrypoint(["zsar", "eval", "--run", "x"]) == "python -m zsar.cli eval --run x"
    with pytest.raises(ConfigError, match="needs a zsar command"):
        submit.entrypoint([])
    with pytest.raises(ConfigError, match="cannot run as a job"):
        submit.entrypoint(["submit", "--", "train"])


def test_submission_id_is_readable_and_unique():
    a = submit.submission_id(["train", "--name", "k400/vifi", "--method", "vificlip"])
    b = submit.submission_id(["train", "--name", "k400/vifi"])
    assert a.startswith("zsar-train-k400-vifi-") and a != b


def test_env_forwarding(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("HF_HOME", "/cache/hf")
    env = submit.parse_env(["HF_HOME", "ZSAR_HOME=/mnt/zsar"])
    assert env == {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "HF_HOME": "/cache/hf", "ZSAR_HOME": "/mnt/zsar"}
    monkeypatch.delenv("HF_HOME")
    with pytest.raises(ConfigError, match="HF_HOME: not set here"):
        submit.parse_env(["HF_HOME"])
    with pytest.raises(ConfigError, match="KEY or KEY=VALUE"):
        submit.parse_env(["1BAD=x"])


def test_auth_token_from_env_then_file(monkeypatch, tmp_path):
    token_file = tmp_path / "auth_token"
    token_file.write_text("from-file\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    assert submit.auth_headers() == {"Authorization": "Bearer from-file"}
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert submit.auth_headers() == {"Authorization": "Bearer from-env"}
    monkeypatch.setenv("RAY_AUTH_TOKEN", "")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert submit.auth_headers() == {}


def test_runtime_env_file_may_not_set_a_working_dir(tmp_path):
    f = tmp_path / "env.yaml"
    f.write_text("working_dir: .\n")
    with pytest.raises(ConfigError, match="drop working_dir"):
        submit.load_runtime_env(str(f))


def test_package_dir_takes_the_zsar_package_out_of_a_wheel(tmp_path):
    wheel = tmp_path / "zsar-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("zsar/cli.py", "")
        zf.writestr("zsar/cluster/submit.py", "")
        zf.writestr("zsar-0.1.0.dist-info/METADATA", "")
    pkg = submit.package_dir(wheel, tmp_path / "out")
    assert pkg.name == "zsar" and (pkg / "cluster" / "submit.py").is_file()


def _resources(**kw):
    return resolve(method="vificlip", dataset="demo", protocol="base2novel", overrides={"resources": kw}).resources


def test_scaling_is_fixed_or_elastic():
    assert scaling_kwargs(_resources(workers=4)) == {"num_workers": 4, "placement_strategy": "PACK"}
    assert scaling_kwargs(_resources(workers=8, min_workers=2, placement="SPREAD")) == {"num_workers": (2, 8), "placement_strategy": "SPREAD"}
    assert scaling_kwargs(_resources(workers=2, min_workers=2))["num_workers"] == 2
    with pytest.raises(ConfigError, match="min_workers=3 is larger than resources.workers=2"):
        scaling_kwargs(_resources(workers=2, min_workers=3))


def test_worker_records_count_attempts(tmp_path):
    for rank in (0, 1):
        write_record(tmp_path, rank, 2, "node-a")
    assert attempts(read_records(tmp_path)) == 1
    write_record(tmp_path, 0, 2, "node-b")
    records = read_records(tmp_path)
    assert attempts(records) == 2 and [r["rank"] for r in records] == [0, 1, 0]
    assert records[-1]["node_id"] == "node-b"


def _git(root, *args):
    import subprocess

    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True, capture_output=True)


@pytest.mark.integration
@pytest.mark.slow
def test_wheel_ships_exactly_the_checkout_not_build_leftovers(tmp_path):
    """A module deleted after an earlier in-tree build (which left it in setuptools' build/lib) is
    not in the shipped wheel; a module added and not yet committed is."""
    import shutil
    import subprocess
    import sys

    source = submit.source_root()
    project = tmp_path / "project"
    for rel in submit.checkout_files(source):
        if rel.split("/")[0] in ("platform", "methods") or rel in ("pyproject.toml", "README.md"):
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, project / rel)
    (project / "platform" / "ghost_module.py").write_text("GHOST = 1\n")
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "with a ghost module")
    # the old way: a wheel built inside the checkout leaves build/lib/zsar/ghost_module.py behind
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "in_tree"), str(project)], check=True, capture_output=True)
    assert (project / "build" / "lib" / "zsar" / "ghost_module.py").is_file()
    _git(project, "rm", "-q", "platform/ghost_module.py")
    (project / "platform" / "new_module.py").write_text("NEW = 1\n")  # untracked, not ignored: the user's code

    wheel = submit.build_wheel(tmp_path / "wheel", root=project)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "zsar/cli.py" in names and "zsar/methods/__init__.py" in names
    assert "zsar/ghost_module.py" not in names
    assert "zsar/new_module.py" in names
