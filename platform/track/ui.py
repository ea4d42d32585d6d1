"""`zsar ui`: the MLflow UI on the store in use.

`mlflow ui` starts a server process that starts its own workers (uvicorn). It runs here in a
process group of its own, so that stopping `zsar ui` stops all of them: SIGTERM and SIGINT sent to
`zsar ui` are forwarded to the whole group, and whatever is left of the group a few seconds later
is killed. A port in use is found before the server starts (MLflow would print `Address already in
use` and exit 0); a server that stops without being asked is an error too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from zsar.errors import ZsarError
from zsar.track.mlflow_log import resolve_uri

GRACE_S = 10.0


def ui_command(uri: str, host: str, port: int) -> list[str]:
    # the mlflow beside this interpreter, not whichever one PATH finds first
    beside = Path(sys.executable).with_name("mlflow")
    base = [str(beside)] if beside.is_file() else [sys.executable, "-m", "mlflow"]
    return base + ["ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]


def check_port_free(host: str, port: int) -> None:
    """A one-line error when something listens on (host, port) already."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ZsarError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a TIME_WAIT port is free
        try:
            s.bind(address)
        except OSError as e:
            raise ZsarError(f"port {port} on {host} is in use ({e.strerror}); try --port {port + 1}") from None


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace_s: float = GRACE_S) -> None:
    """Send `sig` to the server's process group; kill what is left of it after `grace_s`."""
    pgid = proc.pid  # the group leader (start_new_session)
    if group_alive(pgid):
        os.killpg(pgid, sig)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        proc.poll()
        if not group_alive(pgid):
            return
        time.sleep(0.1)
    if group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait()


def serve(host: str = "127.0.0.1", port: int = 5000, announce=print) -> None:
    uri = resolve_uri()
    if uri.startswith(("http://", "https://")):
        announce(f"the tracking store is a server already: open {uri}")
        return
    check_port_free(host, port)
    proc = subprocess.Popen(ui_command(uri, host, port), start_new_session=True)
    asked: list[int] = []

    def forward(signum, _frame):
        asked.append(signum)
        if group_alive(proc.pid):
            os.killpg(proc.pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        announce(f"MLflow UI for {uri} at http://{host}:{port} (Ctrl-C to stop)")
        status = proc.wait()
    finally:
        stop_group(proc, signal.SIGTERM)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not asked:
        raise ZsarError(f"the MLflow UI stopped by itself (status {status}); if port {port} is taken, try --port {port + 1}")
