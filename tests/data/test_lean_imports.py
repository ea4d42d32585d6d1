"""Code that runs in many Ray tasks imports no torch/open_clip/mlflow (seconds and hundreds of MB
per worker process): the pre-flight probe, even while probing a file; the decode module
(zsar.data.pipeline), when a task imports it; and the decode task itself (`decode_batch`, the
function Ray Data runs), while it decodes, resizes, crops and flips clips (zsar.data.views), for
evaluation and training specs, seeking and reading sequentially."""

import subprocess
import sys

import pytest

from conftest import REAL_CLIPS

pytestmark = pytest.mark.integration  # each test is a fresh interpreter by design (what it imports)

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


DECODE = """
import dataclasses, sys
import numpy as np
from zsar.data.order import seed_key
from zsar.data.pipeline import decode_batch
from zsar.data.video import ClipSpec
paths = sys.argv[1:]
batch = {"path": np.array(paths, dtype=object), "label": np.arange(len(paths)), "index": np.arange(len(paths))}
specs = [ClipSpec(num_frames=8, sampler="dense", stride=4, views=2, crops=3, size=32, decode="seek"),
         ClipSpec(num_frames=4, sampler="segment", size=32, short_side=40, train=True, flip=True),
         ClipSpec(num_frames=4, size=32)]
for spec in specs:
    out = decode_batch(batch, dataclasses.asdict(spec), seed_key(0, 1))
    assert out["ok"].all() and out["video"].any(), out["error"]
heavy = sorted(m for m in ("torch", "torchvision", "open_clip", "mlflow") if m in sys.modules)
assert not heavy, heavy
print("lean")
"""


def test_decoding_clips_in_the_decode_task_imports_no_torch():
    paths = [str(p) for p in REAL_CLIPS]
    proc = subprocess.run([sys.executable, "-c", DECODE, *paths], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "lean", proc.stderr[-2000:]
