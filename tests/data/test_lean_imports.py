"""Code that runs in many Ray tasks imports no torch/open_clip/mlflow (seconds and hundreds of MB
per worker process): the pre-flight probe, even while probing a file; the decode module
(zsar.data.pipeline), when a task imports it. (Making a clip's pixels still imports torch, for
the resize in zsar.data.views.)"""

import subprocess
import sys

from conftest import REAL_CLIPS

CODE = """
import sys
from zsar.data.probe import probe_file
result = probe_file(sys.argv[1])
assert result["status"] == "ok", result
heavy = sorted(m for m in ("torch", "open_clip", "mlflow") if m in sys.modules)
assert not heavy, heavy
print("lean")
"""


def test_probing_a_video_imports_no_torch():
    proc = subprocess.run([sys.executable, "-c", CODE, str(REAL_CLIPS[0])], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "lean", proc.stderr[-2000:]


def test_importing_the_decode_module_imports_no_torch():
    code = ("import sys, zsar.data.pipeline, zsar.data.video; "
            "heavy = sorted(m for m in ('torch', 'open_clip', 'mlflow') if m in sys.modules); "
            "assert not heavy, heavy; print('lean')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "lean", proc.stderr[-2000:]
