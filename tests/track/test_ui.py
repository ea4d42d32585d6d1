"""`zsar ui` as a user runs it: a real `mlflow ui` server on a free port, stopped with SIGTERM to
the `zsar` process; a busy port is an error with a hint."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ZSAR = str(Path(sys.executable).with_name("zsar"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every process, from /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z":
            out[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return out


def _descendants(pid: int) -> set[int]:
    procs, found, todo = _processes(), set(), [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _) in procs.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _wait_healthy(proc, url: str, log: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout  # slow to start on a loaded 2-core machine
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the UI never answered: " + log.read_text())


@pytest.mark.integration
def test_zsar_ui_serves_the_store_and_sigterm_stops_every_process(zsar_home, tmp_path):
    port = _free_port()
    log = tmp_path / "ui.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([ZSAR, "ui", "--port", str(port)], stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(proc, url, log)
        printed = log.read_text()
        assert url in printed and os.environ["MLFLOW_TRACKING_URI"] in printed
        server = _descendants(proc.pid)
        groups = {_processes()[p][1] for p in server if p in _processes()}
        assert server and proc.pid not in groups  # the server runs in a process group of its own
        assert len(server) >= 2, "expected mlflow and its workers"
        proc.send_signal(signal.SIGTERM)  # to zsar only, as `kill PID` does
        assert proc.wait(timeout=60) == 0, log.read_text()
        left = {pid for pid, (_, pgid) in _processes().items() if pgid in groups} | (server & set(_processes()))
        assert not left, f"processes of the server's group still running: {left}"
        assert not _port_taken(port), "the port is still in use"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_busy_port_is_an_error_with_a_hint(zsar_home, capsys):
    from zsar.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status = main(["ui", "--port", str(port)])
    out = capsys.readouterr()
    assert status == 2 and not out.out
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"port {port}" in lines[0] and f"try --port {port + 1}" in lines[0], out.err
