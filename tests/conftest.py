"""Shared fixtures. Tests never touch the user's ~/.zsar: ZSAR_HOME and MLflow point into
temporary folders. Ray starts once per session (real Ray, 4 logical CPUs so that Train and Data
cannot starve each other on a 2-core machine)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL_CLIPS = sorted(p for p in (FIXTURES / "real_clips").iterdir() if p.suffix in (".mp4", ".avi"))
ARTIFACTS = REPO / "test-artifacts"


def heavy_clip(path) -> bool:
    """The 1080p H.264 AVI: ~5x the other real clips to decode, so its costly cases are slow."""
    return Path(path).name.startswith("ntu")


def real_clip_params() -> list:
    """REAL_CLIPS as parameters, the heavy clip's cases in the slow tier (the fast tier keeps it in
    its own cheaper cases, and the MPEG-4 AVI)."""
    return [pytest.param(p, id=p.name, marks=[pytest.mark.slow] if heavy_clip(p) else []) for p in REAL_CLIPS]


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def session_home(tmp_path_factory) -> Path:
    """One ZSAR_HOME for the session: the demo data is rendered into it once."""
    home = tmp_path_factory.mktemp("zsar_home")
    os.environ["ZSAR_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    return home


@pytest.fixture(scope="session")
def empty_store(request, tmp_path_factory) -> Path:
    """An MLflow SQLite store with its schema made once: creating the tables runs MLflow's ~60
    migrations (~10 s), which every test's fresh store would pay again. The empty schema is kept in
    pytest's cache (.pytest_cache), one file per MLflow and SQLAlchemy version, so that a second
    session does not make it again; tests only ever copy it."""
    import mlflow
    import sqlalchemy
    from mlflow.tracking import MlflowClient

    made = tmp_path_factory.mktemp("store_template") / "mlflow.db"
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    kept = (cache.mkdir("zsar_empty_store") / f"mlflow-{mlflow.__version__}-sqlalchemy-{sqlalchemy.__version__}.db"
            if cache else None)
    if kept is not None and kept.is_file():
        return kept
    MlflowClient(f"sqlite:///{made}").search_experiments()
    if kept is not None:
        staged = kept.with_name(f"{kept.name}.{os.getpid()}")
        shutil.copyfile(made, staged)
        os.replace(staged, kept)
    return made


def fresh_store(template: Path, folder: Path) -> str:
    """The URI of a new, empty MLflow store in `folder` (a copy of the session's template)."""
    shutil.copyfile(template, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture
def zsar_home(session_home, empty_store, tmp_path, monkeypatch) -> Path:
    """A fresh MLflow store per test (in tmp_path), sharing the session's demo data."""
    monkeypatch.setenv("ZSAR_HOME", str(session_home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_store(empty_store, tmp_path))
    return session_home


@pytest.fixture(scope="session")
def demo_root(session_home) -> Path:
    from zsar.data.sources.demo import ensure_demo

    return ensure_demo(quiet=True)


@pytest.fixture(scope="session")
def small_demo_root(session_home) -> Path:
    """The small rendering of the demo dataset (6 training and 3 test videos per class), where
    `zsar demo --quick` finds it (rendered once a session)."""
    from zsar.data.sources.demo import ensure_demo

    return ensure_demo(quiet=True, small=True)


@pytest.fixture(scope="session")
def ray_session(session_home):
    import ray

    from zsar.ray_runtime import init_ray

    # Ray Train's controller polls its workers every 2 s by default: each run's end waited for it
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    init_ray(num_cpus=4)
    # `zsar` subprocesses of the tests join this cluster (run_cli) instead of starting their own
    os.environ["ZSAR_TEST_RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    yield
    os.environ.pop("ZSAR_TEST_RAY_ADDRESS", None)
    ray.shutdown()


@pytest.fixture(scope="session")
def figures():
    """Figures a test measures (largest differences, counts) for the closing notes and the README:
    tests add `figures[name] = value`; they are merged into test-artifacts/figures.json at the end."""
    import json

    found: dict = {}
    yield found
    if found:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / "figures.json"
        old = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps({**old, **found}, indent=1, sort_keys=True) + "\n")


def repro_config(root, name: str, **over):
    """vificlip on the small demo with augmented clips (random offsets, crops and flips every
    epoch), 4 epochs, global batch 8, trained in the driver unless `resources` says otherwise."""
    from zsar.config import deep_merge, resolve

    base = {"root": str(root), "optim": {"epochs": 4, "batch_size": 8, "lr": 1e-4}, "run": {"name": name},
            "data": {"augment": True, "flip": True, "decode_tasks": 1, "decode_batch": 4},
            "resources": {"workers": 0}, "tracking": {"experiment": "repro"}}
    return resolve(method="vificlip", dataset="demo", protocol="base2novel", overrides=deep_merge(base, over))


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def run_cli(*args: str, env: dict | None = None, cwd: str | Path | None = None, timeout: int = 600):
    """Run the installed `zsar` command as a user would."""
    import subprocess

    return subprocess.run(zsar_command(*args), capture_output=True, text=True, env=cli_env(env), cwd=cwd, timeout=timeout)


def zsar_command(*args: str) -> list[str]:
    import sys

    exe = shutil.which("zsar") or str(Path(sys.executable).with_name("zsar"))
    return [exe, *args]


def cli_env(extra: dict | None = None) -> dict:
    """The environment of a `zsar` subprocess: this one's, joined to the session's Ray cluster when
    a test holds `ray_session` (no second cluster to start)."""
    env = dict(os.environ)
    if os.environ.get("ZSAR_TEST_RAY_ADDRESS"):
        env["RAY_ADDRESS"] = os.environ["ZSAR_TEST_RAY_ADDRESS"]
    return {**env, **(extra or {})}
