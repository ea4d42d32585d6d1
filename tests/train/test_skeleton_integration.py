"""The skeleton track end to end on `demo_skeleton`: real Ray (Train + Data), real MLflow, real
`.skeleton` files (some of them broken on purpose)."""

from __future__ import annotations

import shutil

import pytest
from mlflow.tracking import MlflowClient

from zsar.config import deep_merge, resolve
from zsar.data.skeleton_synth import class_names, unseen_classes
from zsar.errors import DataError
from zsar.train.runner import run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broken_demo_root(session_home, tmp_path_factory):
    """The skeleton demo with one training and one held-out file broken (truncated / emptied)."""
    from zsar.data.sources.demo_skeleton import ensure_demo_skeleton

    root = tmp_path_factory.mktemp("skel") / "demo_skeleton"
    shutil.copytree(ensure_demo_skeleton(quiet=True), root)
    train_file = root / "skeletons" / "S001C001P001R001A003.skeleton"  # "raise right arm slowly": seen
    test_file = root / "skeletons" / "S001C001P009R001A004.skeleton"  # "raise right arm quickly": seen
    text = train_file.read_text()
    train_file.write_text(text[: len(text) // 2])
    test_file.write_text("")
    return root


def _cfg(method, protocol, **overrides):
    # one broken file in 90 held-out ones is over the default 1% that stops a run (evaluation too)
    base = {"tracking": {"experiment": "skeleton"}, "data": {"max_failure_fraction": 0.05}, "resources": {"workers": 0}}
    return resolve(method=method, dataset="demo_skeleton", protocol=protocol, overrides=deep_merge(base, overrides))


def test_stgcn_pretrain_then_skeleton_proj(broken_demo_root, zsar_home, ray_session):
    root = str(broken_demo_root)
    pre = run(_cfg("stgcn_pretrain", "gzsl", root=root, run={"name": "stage1"}, optim={"epochs": 10, "eval_every": 10}))
    seen = len(class_names()) - len(unseen_classes())
    assert pre.metrics["seen_top1"] >= 3 * 100 / seen, pre.metrics
    assert "zsl_top1" not in pre.metrics  # a classifier is not scored on classes it cannot name
    # the broken files were skipped and counted, the others kept
    assert pre.metrics["data/failures"] == 2  # each distinct bad file once, whatever the epochs and parts
    assert pre.metrics["seen_count"] == seen * 3 * 2 - 1

    proj = run(_cfg("skeleton_proj", "gzsl", root=root, run={"name": "stage2"}, gzsl_gamma=0.5,
                    hparams={"encoder_checkpoint": pre.checkpoint}, optim={"epochs": 6, "eval_every": 6}))
    logged = MlflowClient(proj.tracking_uri).get_run(proj.run_id).data
    for key in ("zsl_top1", "seen", "unseen", "h", "top1", "seen_top1"):
        assert key in logged.metrics, key
    s, u = logged.metrics["seen"], logged.metrics["unseen"]
    assert logged.metrics["h"] == pytest.approx(2 * s * u / (s + u) if s + u else 0.0)
    assert logged.params["gzsl_gamma"] == "0.5"


def test_a_stage1_encoder_from_another_split_is_refused(broken_demo_root, zsar_home, tmp_path):
    from zsar.train import checkpoint as ckpt

    fake = tmp_path / "stage1"
    fake.mkdir()
    (fake / ckpt.TRAINED_CLASSES).write_text('["%s"]' % unseen_classes()[0])
    with pytest.raises(DataError, match="holds out"):
        run(_cfg("skeleton_proj", "zsl", root=str(broken_demo_root), hparams={"encoder_checkpoint": str(fake)}))
