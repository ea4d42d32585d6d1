"""A zero-shot run through the real pipeline: Kinetics-400 plan, a UCF-101 target of real encoded
clips decoded by Ray Data, metrics under `ucf101/split1/`, the overlap report logged to MLflow."""

import json
from collections import Counter

import pytest
from mlflow.tracking import MlflowClient

from zsar.config import resolve
from zsar.data import protocols
from zsar.data.files import Issues
from zsar.train.runner import run
from conftest import REAL_CLIPS
from video_trees import folder_of, list_names, make_kinetics, make_ucf, ucf_class

pytestmark = pytest.mark.integration


def test_zeroshot_eval_on_a_ucf_target_logs_metrics_and_overlap(tmp_path, zsar_home, ray_session):
    clip = next(p for p in REAL_CLIPS if p.name == "apply_eye_makeup.avi")
    b2n = protocols.base2novel("kinetics400", "s1", Issues())
    k400 = make_kinetics(tmp_path / "k400", [(folder_of("kinetics400", e.cls), e.name.split("/")[-1], "train") for e in b2n.train.entries[::800]])
    names = list_names("ucf_splits/val1.txt", every=400)
    ucf = make_ucf(tmp_path / "ucf", names, clip=clip)
    cfg = resolve(method="frozen_clip", dataset="kinetics400", protocol="zeroshot", overrides={
        "root": str(k400),
        "eval_targets": [{"dataset": "ucf101", "root": str(ucf), "splits": ["split1"]}],
        "backbone": {"name": "zsar-tiny", "pretrained": None},
        "data": {"num_frames": 2, "augment": False},
        "resources": {"workers": 0},
        "tracking": {"experiment": "zeroshot"},
        "run": {"name": "zs"},
    })
    result = run(cfg)
    m = result.metrics
    assert m["ucf101/split1/count"] == len(names)
    # every UCF video is the same clip, so all get one prediction: top-1 is 0 or that class's share
    shares = Counter(ucf_class(n.split("/")[-1]) for n in names)
    hits = m["ucf101/split1/top1"] * len(names) / 100
    assert round(hits) in {0, *shares.values()} and hits == pytest.approx(round(hits), abs=1e-6), (hits, shares)
    assert m["ucf101/top1_mean"] == m["ucf101/split1/top1"]
    client = MlflowClient(result.tracking_uri)
    notes = json.loads(open(client.download_artifacts(result.run_id, "plan.json")).read())
    overlap = notes["cross_dataset_overlap"]["ucf101/split1/test"]
    assert overlap["of"] == 101 and "archery" in overlap["classes"] and overlap["count"] == len(overlap["classes"])
    assert notes["target_notes"]["ucf101/split1"]["missing"]["test"] == {"missing": 3783 - len(names), "listed": 3783}
    assert client.get_run(result.run_id).data.tags["protocol"] == "zeroshot"
