"""CEZSAR's published regime end to end on a small synthetic ActivityNet Captions tree: `zsar
train` with dataset `activitynet_captions`, protocol `cezsar_captions`: every caption segment a
training row with its own caption as positive, then zero-shot on a tiny UCF-101 tree (all 101
classes) and a tiny Kinetics-400 tree (all 400 classes), both made of demo-generator videos."""

import json

import pytest
from mlflow.tracking import MlflowClient

from zsar.cli import main
from zsar.config import resolve
from zsar.data.synth import draw_params, encode_video, render
from video_trees import folder_of, make_activitynet, make_kinetics, make_ucf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VIDEOS = {"v_a1": ["moving left slowly", "growing quickly", "moving up slowly"],
          "v_b2": ["shrinking slowly", "moving right quickly"],
          "v_c3": ["moving down quickly", "rotating clockwise slowly", "moving left quickly"],
          "v_d4": ["rotating counterclockwise slowly", "growing slowly"]}
ABSENT = ("v_d4",)
UCF = ["v_ApplyEyeMakeup_g01_c01.mp4", "v_Archery_g01_c01.mp4", "v_Basketball_g01_c01.mp4"]
K400 = [("archery", "k1aaaaaaaaa_000001_000011.mp4"), ("arm wrestling", "k2bbbbbbbbb_000002_000012.mp4")]


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    import numpy as np

    tmp = tmp_path_factory.mktemp("captions_regime")
    clip = tmp / "demo_clip.mp4"
    encode_video(render(draw_params(np.random.default_rng(7), "moving left quickly"), 8, 32), clip, 8)
    anet = make_activitynet(tmp / "anet", VIDEOS, absent=ABSENT)
    ucf = make_ucf(tmp / "ucf", UCF, clip=clip)
    k400 = make_kinetics(tmp / "k400", [(folder_of("kinetics400", c), n, "val") for c, n in K400], layout="class", clip=clip)
    return {"anet": anet, "ucf101": ucf, "kinetics400": k400}


def overrides(roots) -> list[str]:
    return ["--set", f"roots.ucf101={roots['ucf101']}", f"roots.kinetics400={roots['kinetics400']}",
            "backbone.name=zsar-tiny", "backbone.pretrained=null", "data.sampler=segment", "data.num_frames=4",
            "text.templates=shape", "optim.epochs=2", "optim.batch_size=4", "optim.eval_every=2",
            "hparams.visual_hidden=32", "hparams.visual_ff=48", "hparams.negatives=3",
            "tracking.experiment=cezsar-captions"]


def test_the_captions_regime_trains_on_segments_and_logs_both_zero_shot_tests(roots, zsar_home, ray_session, capsys):
    assert main(["train", "--method", "cezsar", "--dataset", "activitynet_captions", "--root", str(roots["anet"]),
                 "--protocol", "cezsar_captions", "--workers", "0", "--name", "captions", *overrides(roots)]) == 0
    client = MlflowClient()
    exp = client.get_experiment_by_name("cezsar-captions")
    run = client.search_runs([exp.experiment_id])[0]
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    segments = sum(len(c) for v, c in VIDEOS.items() if v not in ABSENT)
    assert m["train/samples"] == segments  # the last epoch's rows: the segments (8), not the videos (3)
    assert m["ucf101/full/count"] == len(UCF) and m["kinetics400/val/count"] == len(K400)
    for key in ("ucf101/full/top1", "ucf101/full/top5", "kinetics400/val/top1", "kinetics400/val/top5", "train/triplet"):
        assert key in m, key
    plan = json.loads(open(client.download_artifacts(run.info.run_id, "plan.json")).read())
    assert plan["segments"] == segments and plan["training_classes"] == 0
    assert plan["missing"]["train"] == {"missing": 1, "listed": 4, "segments_left_out": 2}
    assert plan["cross_dataset_overlap"]["kinetics400/val/test"]["of"] == 400
    assert plan["cross_dataset_overlap"]["ucf101/full/test"]["of"] == 101
    assert "training captions (each its own positive)" in capsys.readouterr().err


def test_the_preset_is_the_papers_regime(roots):
    cfg = resolve(method="cezsar", dataset="activitynet_captions", protocol="cezsar_captions",
                  overrides={"root": str(roots["anet"])})
    assert cfg.hparams["public_projections"] is True
    assert [(t.dataset, t.protocol, t.splits) for t in cfg.eval_targets] == [
        ("ucf101", "zeroshot", ["full"]), ("kinetics400", "zeroshot", ["val"])]
    assert cfg.text.descriptions == "ucf101-gemini,kinetics400-gemini"
    ucf = resolve(method="cezsar", dataset="ucf101", protocol="cezsar")  # the class-split protocols keep theirs
    assert ucf.hparams["public_projections"] is False and ucf.eval_targets == []
