"""`zsar ui`: the MLflow UI on the store in use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from zsar.errors import ZsarError
from zsar.track.mlflow_log import resolve_uri


def ui_command(uri: str, host: str, port: int) -> list[str]:
    # the mlflow beside this interpreter, not whichever one PATH finds first
    beside = Path(sys.executable).with_name("mlflow")
    base = [str(beside)] if beside.is_file() else [sys.executable, "-m", "mlflow"]
    return base + ["ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]


def serve(host: str = "127.0.0.1", port: int = 5000) -> None:
    uri = resolve_uri()
    if uri.startswith(("http://", "https://")):
        print(f"the tracking store is a server already: open {uri}")
        return
    print(f"MLflow UI for {uri} at http://{host}:{port} (Ctrl-C to stop)", flush=True)
    try:
        subprocess.run(ui_command(uri, host, port), check=True)
    except subprocess.CalledProcessError as e:
        raise ZsarError(f"the MLflow UI exited with status {e.returncode} (is port {port} free? try --port)") from None
    except KeyboardInterrupt:
        pass
