"""A frozen method's runs through the feature cache: the second run decodes and encodes nothing and
scores exactly as a run without the cache."""

import shutil

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from zsar.config import resolve
from zsar.train.runner import run

pytestmark = pytest.mark.integration

SHOWN = ("base_top1", "base_top5", "novel_top1", "novel_top5", "hm")


def _run(root, name, **data):
    cfg = resolve(method="frozen_clip", dataset="demo", protocol="base2novel", overrides={
        "root": str(root), "resources": {"workers": 0}, "data": data,
        "run": {"name": name}, "tracking": {"experiment": "features"},
    })
    result = run(cfg)
    return result, MlflowClient(result.tracking_uri).get_run(result.run_id).data.metrics


def test_a_warm_run_reads_features_only_and_scores_as_without_the_cache(small_demo_root, zsar_home, ray_session, tmp_path,
                                                                       capsys):
    root = tmp_path / "demo"
    shutil.copytree(small_demo_root, root)

    _, plain = _run(root, "no-cache", feature_cache=False)
    assert not any(k.startswith("features/") for k in plain)

    capsys.readouterr()
    cold_result, cold = _run(root, "cold")
    assert "2 parts (eval/base, eval/novel) encoded in one pass" in capsys.readouterr().err  # one actor pool
    assert cold["features/eval/base/hit"] == 0 and cold["features/eval/base/encoded"] == cold["base_count"] > 0
    assert cold["features/eval/novel/encoded"] == cold["novel_count"] > 0
    assert {k: cold[k] for k in SHOWN} == {k: plain[k] for k in SHOWN}

    # Break every video in place (the manifest stays the same): only a run that decodes nothing can
    # still score every one of them.
    videos = [p for p in root.rglob("*") if p.suffix in (".mp4", ".avi", ".webm")]
    assert videos
    for p in videos:
        p.write_bytes(b"")
    _, warm = _run(root, "warm")
    assert warm["features/eval/base/hit"] == warm["features/eval/novel/hit"] == 1
    assert warm["features/eval/base/encoded"] == warm["features/eval/novel/encoded"] == 0
    assert warm["data/failures"] == 0 and warm["base_count"] == cold["base_count"]
    assert {k: warm[k] for k in SHOWN} == {k: plain[k] for k in SHOWN}
    assert warm["time/features_s"] < cold["time/features_s"]

    with pytest.raises(Exception, match="48 videos cannot be read"):
        _run(root, "no-cache-broken", feature_cache=False)  # what the warm run would have met (the pre-flight probe)


def test_cached_features_equal_the_method_computing_them_inline(small_demo_root, zsar_home, ray_session):
    import torch

    import pyarrow as pa
    import pyarrow.parquet as pq

    from zsar.data.features import FeatureCache, entry_files
    from zsar.data.pipeline import clip_spec
    from zsar.data.video import load_clip
    from zsar.home import cache_dir
    from zsar.models.backbone import create_backbone
    from zsar.registry import DATASETS, METHODS

    _run(small_demo_root, "fill")
    cfg = resolve(method="frozen_clip", dataset="demo", protocol="base2novel", overrides={"root": str(small_demo_root)})
    # the session's cache holds other tests' entries too: read each from its shards as a run does
    # (a Ray Data read costs ~2-3 s an entry here), and keep this demo's rows
    ours = [pa.concat_tables([pq.read_table(f) for f in entry_files(cache_dir("features") / e["key"])])
            for e in FeatureCache(cache_dir("features")).entries()]
    rows = [r for table in ours for r in table.slice(0, 3).to_pylist() if r["path"].startswith(str(small_demo_root) + "/")]
    assert rows
    # each entry's rows keep their own part's manifest indices (the parts were encoded in one pass)
    demo = DATASETS.get("demo")
    evals = demo(str(small_demo_root)).plan("base2novel", demo.check_protocol("base2novel", cfg.split)).evals
    by_part = {frozenset(part.manifest["path"].to_pylist()): part.manifest["path"].to_pylist() for part in evals}
    for e in FeatureCache(cache_dir("features")).entries():
        got = pa.concat_tables([pq.read_table(f, columns=["index", "path"])
                                for f in entry_files(cache_dir("features") / e["key"])]).to_pylist()
        if got and got[0]["path"].startswith(str(small_demo_root) + "/"):
            paths = by_part[frozenset(r["path"] for r in got)]
            assert sorted(r["index"] for r in got) == list(range(len(paths)))
            assert all(paths[r["index"]] == r["path"] for r in got)
    method = METHODS.get("frozen_clip")(cfg.method_config(), create_backbone(cfg.backbone), cfg).eval()
    spec = clip_spec(cfg.data, 32, train=False)
    for row in rows:
        clip, _ = load_clip(row["path"], spec)
        with torch.no_grad():
            inline = method.compute_frozen("frame_features", method.to_input(clip[None], "cpu")[0]).numpy()
        np.testing.assert_allclose(row["frame_features"], inline, rtol=1e-5, atol=1e-6)


def test_augmented_training_clips_bypass_the_cache_and_fixed_ones_use_it(small_demo_root, zsar_home, ray_session, capsys):
    from zsar.train.inputs import build_feeds
    from zsar.train.plan import build_plan

    def parts(**data):
        cfg = resolve(method="cezsar", dataset="demo", protocol="base2novel",
                      overrides={"root": str(small_demo_root), "optim": {"epochs": 1}, "data": data})
        return build_feeds(cfg, build_plan(cfg, "s1"))[1]

    augmented = parts(augment=True)
    assert [name for name, _ in augmented] == ["eval/base", "eval/novel"]  # the training part decodes every epoch
    assert "feature cache bypassed for train" in capsys.readouterr().err
    fixed = parts(augment=False)
    assert [name for name, _ in fixed] == ["train", "eval/base", "eval/novel"]
    assert not fixed[0][1].hit and fixed[0][1].encoded > 0
    assert fixed[1][1].hit and fixed[2][1].hit  # evaluation views do not depend on train-time augmentation
    assert "bypassed" not in capsys.readouterr().err
