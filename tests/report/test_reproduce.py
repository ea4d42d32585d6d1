"""`zsar reproduce`: shipped recipes resolve to the papers' settings, ours sit beside the published
numbers, and a recipe on the demo data runs end to end through the training runner."""

import pytest
import yaml

from zsar.cli import main
from zsar.report.reproduce import collect, compare, format_table, list_recipes, load_recipe
from zsar.train.metrics import derived_metrics
from zsar.train.runner import RunResult

# SC-CLIP, Table 1 (HMDB-51 row: delta, tau, alpha, beta) and Sec. 4.3 (lr, epochs, warm-up, batch,
# 8 frames, 3 x 1 test views); Table 2 (SC-CLIP row, HMDB-51: base, novel, HM).
TABLE1_HMDB51 = {"delta": 0.85, "tau": 40.0, "alpha": 0.3, "beta": 0.3}
TABLE2_HMDB51 = {"base_top1": 72.2, "novel_top1": 57.2, "hm": 63.8}


def dry_run(capsys, *args):
    assert main(["reproduce", *args, "--dry-run"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_sc_clip_hmdb51_dry_run_is_table_1_for_each_split_and_the_published_row(capsys):
    out = dry_run(capsys, "sc_clip-b2n-hmdb51", "--root", "hmdb51=/data/hmdb51")
    assert [r["split"] for r in out["runs"]] == ["s1", "s2", "s3"]
    for run in out["runs"]:
        cfg = run["config"]
        assert (cfg["method"], cfg["dataset"], cfg["protocol"], cfg["root"]) == ("sc_clip", "hmdb51", "base2novel", "/data/hmdb51")
        assert {k: cfg["hparams"][k] for k in TABLE1_HMDB51} == TABLE1_HMDB51
        assert (cfg["optim"]["lr"], cfg["optim"]["epochs"], cfg["optim"]["warmup_epochs"], cfg["optim"]["batch_size"]) == (1e-3, 18, 2, 64)
        assert (cfg["data"]["num_frames"], cfg["data"]["views"], cfg["data"]["crops"]) == (8, 3, 1)
        assert (cfg["backbone"]["name"], cfg["backbone"]["pretrained"], cfg["backbone"]["checkpoint"]) == ("ViT-B-16", "openai", None)
    assert {r["metric"]: r["value"] for r in out["published"]} == TABLE2_HMDB51
    assert {r["split"] for r in out["published"]} == {"mean"}
    assert out["needs"]["roots"] == {"hmdb51": "/data/hmdb51"}
    assert out["needs"]["weights"]["clip"].startswith("optional")


def test_weights_given_to_a_recipe_reach_the_configs_and_required_ones_are_named(capsys, tmp_path):
    out = dry_run(capsys, "vificlip-b2n-hmdb51", "--weights", "s2=/w/vifi_s2.pth", "--weights", "clip=/w/ViT-B-16.pt")
    by_split = {r["split"]: r["config"]["backbone"] for r in out["runs"]}
    assert by_split["s2"]["checkpoint"] == "/w/vifi_s2.pth" and by_split["s2"]["pretrained"] == "/w/ViT-B-16.pt"
    assert by_split["s1"]["checkpoint"] == "<--weights s1=PATH>"
    assert all(r["config"]["optim"]["epochs"] == 0 for r in out["runs"])
    assert out["needs"]["weights"]["s1"].startswith("missing: --weights s1=PATH")
    assert main(["reproduce", "vificlip-b2n-hmdb51", "--root", "hmdb51=/nowhere", "--weights", "s2=/w/x.pth"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs --weights s1=PATH" in err
    assert main(["reproduce", "vificlip-b2n-hmdb51", "--weights", "s9=/w/x.pth", "--dry-run"]) == 2
    assert "takes no weights named s9" in capsys.readouterr().err


def test_zero_shot_recipe_evaluates_full_test_sets_and_splits(capsys):
    out = dry_run(capsys, "sc_clip-zs-k400")
    (run,) = out["runs"]
    targets = {t["dataset"]: t["splits"] for t in run["config"]["eval_targets"]}
    assert targets == {"ucf101": ["split1", "split2", "split3", "full"], "hmdb51": ["split1", "split2", "split3", "full"],
                       "kinetics600": ["split1", "split2", "split3"]}
    assert run["config"]["hparams"]["delta"] == 0.8 and run["config"]["optim"]["lr"] == 4e-4  # the K-600 row, Sec. 4.3
    cells = {(r["dataset"], r["split"]): r["value"] for r in out["published"]}
    assert cells == {("ucf101", "full"): 79.9, ("ucf101", "mean"): 79.9, ("hmdb51", "full"): 51.6,
                     ("hmdb51", "mean"): 52.0, ("kinetics600", "mean"): 65.3}
    assert set(out["needs"]["roots"]) == {"kinetics400", "ucf101", "hmdb51", "kinetics600"}


@pytest.mark.parametrize("table", list_recipes())
def test_every_shipped_recipe_resolves_with_published_rows(capsys, table):
    out = dry_run(capsys, table)
    assert out["runs"] and out["published"]
    recipe = load_recipe(table)
    assert {r["method"] for r in recipe["runs"]} == {r["config"]["method"] for r in out["runs"]}


def test_means_leave_the_full_test_set_out():
    metrics = {"ucf101/split1/top1": 70.0, "ucf101/split2/top1": 80.0, "ucf101/full/top1": 10.0}
    out = derived_metrics("targets", ["ucf101/split1/", "ucf101/split2/", "ucf101/full/"], metrics)
    assert out["ucf101/top1_mean"] == 75.0


def test_ours_beside_published_mean_std_and_difference():
    from zsar.config import resolve

    cfg = resolve(method="frozen_clip", dataset="demo", protocol="base2novel", overrides={"split": "all"})
    children = [RunResult(f"r{i}", f"x-s{i}", {"base_top1": b, "novel_top1": n, "hm": h}, None, "")
                for i, (b, n, h) in enumerate([(60.0, 40.0, 48.0), (70.0, 30.0, 42.0), (80.0, 20.0, 32.0)], 1)]
    parent = RunResult("p", "x", {"base_top1_mean": 70.0}, None, "", children)
    targets = RunResult("t", "y", {"ucf101/split1/top1": 50.0, "ucf101/split2/top1": 54.0, "ucf101/full/top1": 10.0}, None, "")
    ours = collect([(cfg, parent), (cfg, targets)])
    assert ours[("demo", "s2", "novel_top1")] == 30.0 and ours[("ucf101", "full", "top1")] == 10.0
    published = [{"dataset": "demo", "split": "mean", "metric": "base_top1", "value": 65.0, "std": None},
                 {"dataset": "ucf101", "split": "mean", "metric": "top1", "value": 50.0, "std": 1.0},
                 {"dataset": "ucf101", "split": "full", "metric": "top1", "value": 12.5, "std": None},
                 {"dataset": "hmdb51", "split": "mean", "metric": "top1", "value": 40.0, "std": None}]
    rows = compare(published, ours)
    assert (rows[0]["ours"], rows[0]["n"], rows[0]["diff"]) == (70.0, 3, 5.0)
    assert rows[0]["ours_std"] == pytest.approx((200 / 3) ** 0.5)
    assert (rows[1]["ours"], rows[1]["ours_std"], rows[1]["diff"]) == (52.0, 2.0, 2.0)  # full left out of the mean
    assert (rows[2]["ours"], rows[2]["diff"]) == (10.0, -2.5)
    assert rows[3]["ours"] is None
    text = format_table({"title": "t"}, rows)
    assert "| demo | mean | base_top1 | 70.0 ± 8.2 (3 splits) | 65.0 | +5.0 |" in text
    assert "| hmdb51 | mean | top1 | not run | 40.0 |  |" in text


@pytest.mark.integration
def test_a_demo_recipe_runs_end_to_end_and_prints_ours_beside_published(small_demo_root, zsar_home, ray_session, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    from zsar.track.mlflow_log import resolve_uri

    recipe = tmp_path / "demo-frozen.yaml"
    recipe.write_text(yaml.safe_dump({
        "table": "demo-frozen", "title": "frozen CLIP on the demo (made-up published numbers)",
        "published": {"source": "a test", "rows": [{"dataset": "demo", "split": "s1", "metric": m, "value": 20.0}
                                                   for m in ("base_top1", "novel_top1", "hm")]},
        "runs": [{"name": "demo", "method": "frozen_clip", "dataset": "demo", "protocol": "base2novel", "split": "s1",
                  "set": {"run.name": "reproduce-demo", "resources.workers": 0}}],
    }))
    assert main(["reproduce", str(recipe), "--root", f"demo={small_demo_root}"]) == 0
    out = capsys.readouterr().out
    client = MlflowClient(tracking_uri=resolve_uri())
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                "attributes.run_name = 'reproduce-demo'")
    assert run.info.status == "FINISHED"
    for metric in ("base_top1", "novel_top1", "hm"):
        ours = run.data.metrics[metric]
        assert f"| demo | s1 | {metric} | {ours:.1f} | 20.0 | {ours - 20.0:+.1f} |" in out
