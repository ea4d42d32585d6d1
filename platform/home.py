"""Where zsar keeps its state: ZSAR_HOME (default ~/.zsar) holds the MLflow store, caches,
demo data and run storage, so results never depend on the current directory."""

import os
from pathlib import Path


def zsar_home() -> Path:
    home = Path(os.environ.get("ZSAR_HOME", "~/.zsar")).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def cache_dir(*parts: str) -> Path:
    path = zsar_home().joinpath("cache", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = zsar_home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite store in ZSAR_HOME (MLflow 3 refuses `file:`)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{zsar_home() / 'mlflow.db'}"
