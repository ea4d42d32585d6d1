"""Processes that tests start on 127.0.0.1 and stop by process group: free ports, and a real
`mlflow server` (the one next to this interpreter) with a SQLite store and an artifact folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def stop_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM the process's group (a server and its workers), SIGKILL what outlives it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
    try:  # daemons that outlived their parent but kept its group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process's group at once and reap the process."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def start_mlflow(folder: Path) -> tuple[str, subprocess.Popen]:
    """Start `mlflow server` on a free port (not waiting for it: see `wait_mlflow`)."""
    port = free_ports(1)[0]
    with open(folder / "mlflow.log", "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
             "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    return f"http://127.0.0.1:{port}", proc


def wait_mlflow(url: str, proc: subprocess.Popen, folder: Path, timeout: float = 600) -> None:
    """Return once the server answers /health; stop it and raise with its log if it never does."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    stop_group(proc)
    raise RuntimeError("mlflow server did not start: " + (folder / "mlflow.log").read_text()[-2000:])
