"""The zero-shot protocol end to end up to the plan: Kinetics-400 trains, the default eval targets
(UCF-101 and HMDB-51 test splits 1-3, Kinetics-600's three splits) evaluate, the cross-dataset
class overlap is reported in the plan's notes, descriptions attach to every label set."""

import re

import pytest

from zsar.config import resolve
from zsar.data import protocols
from zsar.data.files import Issues
from zsar.errors import ConfigError
from zsar.train.metrics import derived_metrics
from zsar.train.plan import build_plan, primary_metric
from zsar.train.runner import run
from video_trees import folder_of, list_names, make_hmdb, make_kinetics, make_ucf, official


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("zeroshot")
    b2n = protocols.base2novel("kinetics400", "s1", Issues())
    k400 = make_kinetics(base / "k400", [(folder_of("kinetics400", e.cls), e.name.split("/")[-1], "train") for e in b2n.train.entries[::200]])
    ucf_names = sorted({n for s in (1, 2, 3) for n in list_names(f"ucf_splits/val{s}.txt", every=600)})
    ucf = make_ucf(base / "ucf", ucf_names)
    hmdb_names = sorted({n for s in (1, 2, 3) for n in list_names(f"hmdb_splits/val{s}.txt", every=300)})
    hmdb = make_hmdb(base / "hmdb", hmdb_names)
    rows = []
    for split in protocols.TEST_SPLITS:
        for e in protocols.zeroshot("kinetics600", split, Issues()).evals[0].entries[::3000]:
            rows.append((folder_of("kinetics600", e.cls), e.name.split("/")[-1], e.name.split("/")[0]))
    k600 = make_kinetics(base / "k600", rows)
    return {"kinetics400": k400, "ucf101": ucf, "hmdb51": hmdb, "kinetics600": k600}


def _cfg(trees, **overrides):
    roots = {k: str(v) for k, v in trees.items() if k != "kinetics400"}
    return resolve(method="frozen_clip", dataset="kinetics400", protocol="zeroshot",
                   overrides={"root": str(trees["kinetics400"]), "roots": roots, **overrides})


def test_default_eval_targets_come_with_the_protocol():
    targets = resolve(method="frozen_clip", dataset="kinetics400", protocol="zeroshot").eval_targets
    assert [(t.dataset, t.protocol, t.splits) for t in targets] == [
        ("ucf101", "zeroshot", ["split1", "split2", "split3"]),
        ("hmdb51", "zeroshot", ["split1", "split2", "split3"]),
        ("kinetics600", "zeroshot", ["split1", "split2", "split3"]),
    ]
    assert resolve(method="frozen_clip", dataset="kinetics400", protocol="base2novel").eval_targets == []


def test_zeroshot_plan_trains_on_k400_and_evaluates_every_target(trees, capsys):
    plan = build_plan(_cfg(trees), "full")
    assert len(plan.train.labels) == 400 and len(plan.train) == 16
    prefixes = [p.prefix for p in plan.evals]
    assert prefixes == [f"{d}/split{s}/" for d in ("ucf101", "hmdb51", "kinetics600") for s in (1, 2, 3)]
    sizes = {p.prefix: (len(p), len(p.labels)) for p in plan.evals}
    assert all(v > 0 for v, _ in sizes.values())
    assert {c for p, (_, c) in sizes.items() if p.startswith("ucf101")} == {101}
    assert {c for p, (_, c) in sizes.items() if p.startswith("hmdb51")} == {51}
    assert {c for p, (_, c) in sizes.items() if p.startswith("kinetics600")} == {160}
    assert primary_metric(plan) == "ucf101/top1_mean"
    metrics = {"ucf101/split1/top1": 50.0, "ucf101/split2/top1": 60.0, "ucf101/split3/top1": 70.0}
    assert derived_metrics(plan.kind, [p.prefix for p in plan.evals], metrics)["ucf101/top1_mean"] == pytest.approx(60.0)

    # the cross-dataset overlap is computed from the shipped lists and reported, not removed
    def keys(dataset):
        return {re.sub(r"[^a-z0-9]", "", n.lower()) for n in official(dataset)}

    overlap = plan.notes["cross_dataset_overlap"]
    ucf = overlap["ucf101/split1/test"]
    assert ucf["count"] == len(keys("kinetics400") & keys("ucf101")) and ucf["of"] == 101
    assert {re.sub(r"[^a-z0-9]", "", c) for c in ucf["classes"]} == keys("kinetics400") & keys("ucf101")
    assert "situp" in overlap["hmdb51/split1/test"]["classes"]
    assert all(overlap[f"kinetics600/split{s}/test"]["count"] == 0 for s in (1, 2, 3))
    assert plan.notes["target_notes"]["ucf101/split1"]["missing"]["test"]["listed"] == 3783
    assert [t["root"] for t in plan.notes["eval_targets"]] == [str(trees[d]) for d in ("ucf101", "hmdb51", "kinetics600")]


def test_descriptions_attach_to_every_label_set(trees, capsys):
    plan = build_plan(_cfg(trees, text={"descriptions": "kinetics400-gemini,ucf101-gemini"}), "full")
    assert all(plan.train.labels.descriptions)
    ucf = next(p for p in plan.evals if p.prefix.startswith("ucf101"))
    assert all(ucf.labels.descriptions)
    without = plan.notes["descriptions"]["classes_without"]
    assert "train" not in without and not any(k.startswith("ucf101") for k in without)
    hmdb = next(k for k in without if k.startswith("hmdb51"))
    assert "situp" not in without[hmdb]  # a Kinetics class: its Kinetics description serves
    assert "classes have no description" in capsys.readouterr().err


def test_missing_target_root_and_no_targets_are_one_line_errors(trees, session_home, capsys):
    from zsar.cli import main

    cfg = _cfg(trees, roots={"ucf101": str(trees["ucf101"])})
    with pytest.raises(ConfigError, match=r"eval target 'hmdb51' has no root: --set roots.hmdb51=DIR"):
        build_plan(cfg, "full")
    with pytest.raises(ConfigError, match="evaluates on eval_targets, and none are set"):
        build_plan(_cfg(trees, eval_targets=[]), "full")
    capsys.readouterr()  # the warnings of the plans above
    code = main(["train", "--method", "frozen_clip", "--dataset", "kinetics400", "--root", str(trees["kinetics400"]),
                 "--protocol", "zeroshot", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "eval target 'ucf101' has no root" in err


def test_split_all_runs_the_three_test_splits_not_the_full_variant(trees, capsys):
    cfg = resolve(method="frozen_clip", dataset="ucf101", protocol="zeroshot", overrides={"root": str(trees["ucf101"]), "split": "all"})
    summary = run(cfg, dry_run=True)
    assert [s["split"] for s in summary["splits"]] == ["split1", "split2", "split3"]
    full = run(resolve(method="frozen_clip", dataset="ucf101", protocol="zeroshot", overrides={"root": str(trees["ucf101"]), "split": "full"}), dry_run=True)
    assert full["eval"]["test"] == {"videos": len(list((trees["ucf101"] / "UCF-101").rglob("*.avi"))), "classes": 101}
