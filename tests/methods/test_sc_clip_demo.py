"""`sc_clip` end to end on the demo: Ray Data decoding, MLflow, trained in the driver (`workers=0`: what
it learns does not depend on the launch; Ray Train's own path is proven by tests/train and the cezsar demo)."""

import pytest
from mlflow.tracking import MlflowClient

from zsar.config import resolve
from zsar.train.runner import run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# README: demo base top-1 65-77 over two seeds (the preset's note: 65 and 77). The threshold is the
# lower seed's figure minus half the spread between the seeds: 65 - (77 - 65) / 2 = 59.
SEED_FIGURES = (65.0, 77.0)
THRESHOLD = min(SEED_FIGURES) - (max(SEED_FIGURES) - min(SEED_FIGURES)) / 2


def test_sc_clip_trains_on_the_demo_and_logs_each_loss(demo_root, zsar_home, ray_session):
    # The demo preset as a user runs it (the 32-pixel backbone, 10 epochs), in the driver.
    cfg = resolve(method="sc_clip", dataset="demo", protocol="base2novel",
                  overrides={"resources": {"workers": 0}, "run": {"name": "sc-clip-demo"}, "tracking": {"experiment": "sc_clip"}})
    assert cfg.hparams["use_sqg_scca"]
    result = run(cfg)
    logged = MlflowClient(result.tracking_uri).get_run(result.run_id).data
    m, h = logged.metrics, cfg.hparams
    for key in ("train/L_sc", "train/L_a", "train/L_q", "train/loss", "base_top1", "novel_top1", "hm"):
        assert key in m, key
    # epoch means of Eq. 7's parts add up like the per-step losses
    assert m["train/loss"] == pytest.approx(m["train/L_sc"] + h["alpha"] * m["train/L_a"] + h["beta"] * m["train/L_q"], rel=1e-4)
    assert m["hm"] == pytest.approx(2 * m["base_top1"] * m["novel_top1"] / (m["base_top1"] + m["novel_top1"]))
    assert int(logged.params["cost.params_tunable"]) == 3 * (12 * 64 * 64 + 13 * 64)
    assert int(logged.params["cost.macs_per_clip"]) > 0
    assert m["base_top1"] >= THRESHOLD, m  # chance: 12.5
