import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_zsar_ui_serves_the_store_in_use(zsar_home, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = str(Path(sys.executable).with_name("zsar"))
    log = open(tmp_path / "ui.log", "w+")
    proc = subprocess.Popen([exe, "ui", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline, status = time.time() + 300, None  # slow to start on a loaded 2-core machine
        while time.time() < deadline and status != 200:
            assert proc.poll() is None, (tmp_path / "ui.log").read_text()
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    status = r.status
            except OSError:
                time.sleep(0.5)
        assert status == 200
        printed = (tmp_path / "ui.log").read_text()
        assert url in printed and os.environ["MLFLOW_TRACKING_URI"] in printed
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
