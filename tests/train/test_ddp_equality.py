"""DDP is exact: one optimiser step on a global batch split over 2 Ray Train workers leaves the
same parameters as the same step in one process (each worker reads its own Data shard; the
one-process step runs in the driver, `workers=0`: the same loop without Ray Train's start).

SGD, not AdamW: Adam's first step is lr * g / (|g| + eps), blind to the gradient's scale (a sum
instead of a mean over workers would pass), and it turns float noise in gradients that are zero in
exact arithmetic (attention key biases) into +-lr. An SGD step is lr * g: any error in the averaged
gradient shows."""

from __future__ import annotations

import pytest
import torch

from zsar.config import resolve
from zsar.data.dataset import Dataset, Part, Plan, make_manifest
from zsar.models.backbone import create_backbone
from zsar.registry import DATASETS, METHODS
from zsar.train import checkpoint as ckpt
from zsar.train.runner import run

pytestmark = pytest.mark.integration


@pytest.fixture
def one_batch_dataset(demo_root):
    """16 demo training videos (2 per base class): exactly one global batch of 16."""

    class OneBatch(Dataset):
        name = "demo_one_batch"
        modality = "video"
        protocols = {"full": ("one",)}
        needs_root = False
        config_defaults = DATASETS.get("demo").config_defaults

        def plan(self, protocol, split):
            demo = DATASETS.get("demo")().plan("base2novel", "s1")
            rows = demo.train.manifest.to_pylist()
            per_class: dict = {}
            for r in rows:
                per_class.setdefault(r["class_name"], []).append(r)
            picked = [r for name in demo.train.labels.names for r in per_class[name][:2]]
            train = make_manifest([r["path"] for r in picked], [r["class_name"] for r in picked], demo.train.labels)
            test_rows = demo.evals[0].manifest.to_pylist()[:8]
            test = make_manifest([r["path"] for r in test_rows], [r["class_name"] for r in test_rows], demo.train.labels)
            return Plan(self.name, protocol, split, Part("train", train, demo.train.labels),
                        [Part("test", test, demo.train.labels, prefix="")], kind="full")

    DATASETS._items[OneBatch.name] = OneBatch
    yield OneBatch
    del DATASETS._items[OneBatch.name]


def _cfg(workers: int, storage):
    return resolve(method="vificlip", dataset="demo_one_batch", protocol="full", overrides={
        "optim": {"epochs": 1, "batch_size": 16, "lr": 0.1, "warmup_epochs": 0.0, "optimizer": "sgd"},
        "resources": {"workers": workers}, "run": {"name": f"ddp{workers}", "storage": str(storage)},
        "tracking": {"experiment": "ddp"},
    })


def test_two_workers_take_the_same_step_as_one(one_batch_dataset, zsar_home, ray_session, tmp_path):
    one, two = run(_cfg(0, tmp_path)), run(_cfg(2, tmp_path))
    assert one.metrics["train/steps"] == 1.0 and two.metrics["train/steps"] == 1.0  # per worker: one step each
    assert one.metrics["train/samples"] == two.metrics["train/samples"] == 16.0

    cfg = _cfg(0, tmp_path)
    torch.manual_seed(cfg.seed)
    backbone = create_backbone(cfg.backbone, device="cpu")
    initial = METHODS.get(cfg.method)(cfg.method_config(), backbone, cfg).checkpoint_state()
    after_one, after_two = ckpt.load_state(one.checkpoint)["model"], ckpt.load_state(two.checkpoint)["model"]
    assert after_one.keys() == after_two.keys() == initial.keys()
    moved = max(float((after_one[k].float() - initial[k].float()).abs().max()) for k in initial)
    assert moved > 1e-4  # the step changed the weights
    for key in initial:
        torch.testing.assert_close(after_two[key], after_one[key], atol=1e-5, rtol=0, msg=key)
