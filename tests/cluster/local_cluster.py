"""A real two-node Ray cluster on 127.0.0.1, for the cluster tests (the MLflow server beside it
comes from tests/local_processes.py).

Both nodes are `ray start ... --block` processes in their own sessions and process groups, with
free ports, one temp dir of their own, a small object store and token auth on. Teardown kills the
process groups of the processes started here, then any leftover process whose command line names
this cluster's temp dir (Ray's workers carry it), each by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from local_processes import BIN, free_ports, kill_group, stop_group

OBJECT_STORE = 80 * 1024 * 1024


def _node_ports(head: bool) -> list[str]:
    names = ["--object-manager-port", "--node-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]
    if head:
        names += ["--port", "--dashboard-port", "--ray-client-server-port"]
    args = []
    for name, port in zip(names, free_ports(len(names))):
        args += [name, str(port)]
    return args


@dataclass
class LocalCluster:
    temp_dir: Path
    env: dict
    gcs: str = ""
    dashboard: str = ""
    procs: list = field(default_factory=list)
    logs: list = field(default_factory=list)

    def _start(self, args: list[str], name: str) -> subprocess.Popen:
        log = open(self.temp_dir / f"{name}.log", "w")
        self.logs.append(log)
        proc = subprocess.Popen([str(BIN / "ray"), "start", "--block", "--disable-usage-stats", *args],
                                stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self, cpus_per_node: int = 3) -> "LocalCluster":
        head_args = _node_ports(head=True)
        gcs_port = head_args[head_args.index("--port") + 1]
        dash_port = head_args[head_args.index("--dashboard-port") + 1]
        self.gcs = f"127.0.0.1:{gcs_port}"
        self.dashboard = f"http://127.0.0.1:{dash_port}"
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus_per_node), "--num-gpus", "0",
                  "--object-store-memory", str(OBJECT_STORE)]
        self._start(["--head", "--temp-dir", str(self.temp_dir), "--dashboard-host", "127.0.0.1", "--include-dashboard", "true",
                     "--resources", json.dumps({"node_head": 1}), *common, *head_args], "head")
        self.wait_nodes(1, timeout=600)
        # On a loaded machine a raylet can miss `ray start`'s fixed 30 s registration window: retry.
        for attempt in range(3):
            ports = _node_ports(head=False)
            proc = self._start(["--address", self.gcs, "--resources", json.dumps({"node_b": 1}), *common, *ports], f"node_b{attempt}")
            try:
                self.wait_nodes(2, timeout=600)
                return self
            except RuntimeError:
                if proc.poll() is None or attempt == 2:
                    raise
                self.procs.remove(proc)
                stop_group(proc)
                manager_port = ports[ports.index("--node-manager-port") + 1]
                for pid in _pids_mentioning(f"node_manager_port={manager_port}"):
                    _kill(pid)
        return self

    def nodes(self) -> list[dict]:
        req = urllib.request.Request(f"{self.dashboard}/api/v0/nodes?limit=100&detail=true",
                                     headers={"Authorization": f"Bearer {self.env['RAY_AUTH_TOKEN']}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            data = json.loads(r.read())
        return [n for n in data["data"]["result"]["result"] if n["state"] == "ALIVE"]

    def node_named(self, resource: str) -> str:
        return next(n["node_id"] for n in self.nodes() if resource in n["resources_total"])

    def wait_nodes(self, count: int, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"ray start exited {proc.returncode}: {self.log_tail()}")
            try:
                if len(self.nodes()) >= count:
                    return
            except OSError:
                pass
            time.sleep(1)
        raise RuntimeError(f"{count} Ray node(s) did not come up in {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(p.read_text()[-1500:] for p in sorted(self.temp_dir.glob("*.log")))

    def stop(self) -> None:
        # SIGKILL, not `ray start`'s graceful stop (~11 s for two nodes): nothing of this
        # throwaway cluster is kept, and every process it started is found and killed below.
        for proc in reversed(self.procs):
            kill_group(proc)
        # Ray's workers and agents name the cluster's temp dir on their command line.
        for pid in _pids_mentioning(str(self.temp_dir)):
            _kill(pid)
        for log in self.logs:
            log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _pids_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


def start_cluster() -> LocalCluster:
    temp_dir = Path(tempfile.mkdtemp(prefix="zr"))  # short: Ray's socket paths live under it
    token = secrets.token_hex(16)
    # PATH as in a shell with this virtualenv active: a job's `python` is the nodes' Python
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_TRAIN_V2_ENABLED": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    cluster = LocalCluster(temp_dir, env)
    try:
        return cluster.start()
    except BaseException:
        cluster.stop()
        raise


