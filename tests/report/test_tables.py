"""Tables from a real SQLite MLflow store holding runs with known metrics and tags, checked against
values computed by hand."""

import csv

import pytest

from conftest import fresh_store
from mlflow.tracking import MlflowClient

from zsar.report.collect import collect_runs
from zsar.report.published import add_published
from zsar.report.tables import MEAN, build_tables, to_markdown, write_csv

B2N = {  # split: (base, novel) for vificlip on hmdb51
    "s1": (60.0, 40.0),
    "s2": (70.0, 50.0),
    "s3": (80.0, 30.0),
}


def _run(client, exp, tags, metrics, status="FINISHED", final=False):
    run = client.create_run(exp, tags=tags, run_name=f"{tags.get('method')}-{tags.get('split')}")
    for k, v in metrics.items():
        client.log_metric(run.info.run_id, f"final/{k}" if final else k, v)
    client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory, empty_store):
    uri = fresh_store(empty_store, tmp_path_factory.mktemp("report_store"))
    client = MlflowClient(uri)
    exp = client.create_experiment("paper")
    ids = {}
    for split, (b, n) in B2N.items():
        # an older run of the same cell, superseded by the newer one below
        _run(client, exp, {"method": "vificlip", "dataset": "hmdb51", "protocol": "base2novel", "split": split, "selection": "test"},
             {"base_top1": 1.0, "novel_top1": 1.0, "hm": 1.0})
        hm = 2 * b * n / (b + n)
        ids[split] = _run(client, exp, {"method": "vificlip", "dataset": "hmdb51", "protocol": "base2novel", "split": split, "selection": "test"},
                          {"base_top1": b, "novel_top1": n, "hm": hm}, final=(split == "s2"))
    # frozen_clip has only s1 (s2, s3 missing) and a failed s2 run that must not count
    ids["frozen_s1"] = _run(client, exp, {"method": "frozen_clip", "dataset": "hmdb51", "protocol": "base2novel", "split": "s1", "selection": "val"},
                            {"base_top1": 50.0, "novel_top1": 45.0, "hm": 2 * 50 * 45 / 95})
    _run(client, exp, {"method": "frozen_clip", "dataset": "hmdb51", "protocol": "base2novel", "split": "s2", "selection": "val"},
         {"base_top1": 99.0, "novel_top1": 99.0, "hm": 99.0}, status="FAILED")
    # zero-shot: one run trained on kinetics400, three ucf101 splits and two of three hmdb51 splits
    ids["zs"] = _run(client, exp, {"method": "vificlip", "dataset": "kinetics400", "protocol": "zeroshot", "split": "full", "selection": "val"},
                     {"ucf101/split1/top1": 70.0, "ucf101/split2/top1": 74.0, "ucf101/split3/top1": 72.0,
                      "hmdb51/split1/top1": 40.0, "hmdb51/split2/top1": 46.0, "ucf101/top1_mean": 72.0})
    ids["zs_other"] = _run(client, exp, {"method": "frozen_clip", "dataset": "kinetics400", "protocol": "zeroshot", "split": "full", "selection": "test"},
                           {"ucf101/split1/top1": 60.0, "ucf101/split2/top1": 61.0, "ucf101/split3/top1": 62.0,
                            "hmdb51/split1/top1": 30.0, "hmdb51/split2/top1": 31.0, "hmdb51/split3/top1": 35.0})
    # skeleton: ZSL on three random splits, GZSL on one of them
    for r, v in zip((1, 2, 3), (60.0, 66.0, 72.0)):
        ids[f"zsl_r{r}"] = _run(client, exp, {"method": "smie", "dataset": "ntu60", "protocol": "zsl", "split": f"ntu60_55_5_r{r}", "selection": "test"},
                                {"zsl_top1": v})
    _run(client, exp, {"method": "synse", "dataset": "ntu60", "protocol": "zsl", "split": "ntu60_55_5_r1", "selection": "test"},
         {"zsl_top1": 50.0})
    ids["gzsl"] = _run(client, exp, {"method": "smie", "dataset": "ntu60", "protocol": "gzsl", "split": "ntu60_55_5_r1", "selection": "test"},
                       {"seen": 80.0, "unseen": 20.0, "h": 32.0})
    # another experiment, filtered out by --experiment
    other = client.create_experiment("scratch")
    _run(client, other, {"method": "vificlip", "dataset": "ucf101", "protocol": "base2novel", "split": "s1", "selection": "test"},
         {"base_top1": 1.0, "novel_top1": 1.0, "hm": 1.0})
    return uri, ids


def _tables(uri, **kw):
    return {t.key: t for t in build_tables(collect_runs(uri, "paper", **kw))}


def test_base_to_novel_per_split_and_mean(store):
    uri, ids = store
    t = _tables(uri)["base2novel"]
    row = {"dataset": "hmdb51", "method": "vificlip", "selection": "test"}
    for split, (b, n) in B2N.items():
        assert t.cell(row, (split, "Base")).value == b
        assert t.cell(row, (split, "Novel")).value == n
        assert t.cell(row, (split, "HM")).value == pytest.approx(2 * b * n / (b + n))
        assert t.cell(row, (split, "HM")).runs == (ids[split],)  # the newer run of the cell
    # by hand: Base 70 ± sqrt(200/3), Novel 40 ± sqrt(200/3), HM of the means 2*70*40/110
    base, novel = t.cell(row, (MEAN, "Base")), t.cell(row, (MEAN, "Novel"))
    assert (base.value, novel.value) == pytest.approx((70.0, 40.0))
    assert base.std == pytest.approx((200 / 3) ** 0.5) and novel.std == pytest.approx((200 / 3) ** 0.5)
    assert t.cell(row, (MEAN, "HM")).value == pytest.approx(2 * 70 * 40 / 110)
    assert set(t.cell(row, (MEAN, "HM")).runs) == {ids["s1"], ids["s2"], ids["s3"]}
    assert {r.labels["dataset"] for r in t.rows} == {"hmdb51"}  # the other experiment is not here


def test_missing_cells_are_marked_not_dropped(store):
    uri, ids = store
    t = _tables(uri)["base2novel"]
    row = {"dataset": "hmdb51", "method": "frozen_clip", "selection": "val"}
    assert t.cell(row, ("s1", "Base")).value == 50.0
    s2 = t.cell(row, ("s2", "Base"))
    assert s2.missing and s2.note == "no run"  # the FAILED run does not count
    mean = t.cell(row, (MEAN, "HM"))
    assert mean.missing and mean.note == "1/3 splits"
    md = to_markdown(t)
    assert "— (no run)" in md and "— (1/3 splits)" in md and "| val |" in md


def test_zero_shot_mean_std_per_target(store):
    uri, ids = store
    t = _tables(uri)["zeroshot"]
    row = {"method": "vificlip", "selection": "val"}
    ucf = t.cell(row, ("ucf101", MEAN))
    assert ucf.value == pytest.approx(72.0) and ucf.std == pytest.approx((8 / 3) ** 0.5)
    assert t.cell(row, ("ucf101", "split2")).value == 74.0 and t.cell(row, ("ucf101", "split2")).runs == (ids["zs"],)
    assert t.cell(row, ("hmdb51", "split3")).missing
    assert t.cell(row, ("hmdb51", MEAN)).note == "2/3 splits"
    other = t.cell({"method": "frozen_clip"}, ("hmdb51", MEAN))
    assert other.value == pytest.approx(32.0) and other.std == pytest.approx((14 / 3) ** 0.5)


def test_skeleton_zsl_gzsl_and_random_split_mean(store):
    uri, ids = store
    t = _tables(uri)["skeleton"]
    row = {"dataset": "ntu60", "method": "smie"}
    assert t.cell(row, ("ntu60_55_5_r2", "ZSL")).value == 66.0
    zsl_mean = t.cell(row, ("ntu60_55_5_r* mean", "ZSL"))
    assert zsl_mean.value == pytest.approx(66.0) and zsl_mean.std == pytest.approx(24 ** 0.5)
    assert (t.cell(row, ("ntu60_55_5_r1", "S")).value, t.cell(row, ("ntu60_55_5_r1", "H")).value) == (80.0, 32.0)
    assert t.cell(row, ("ntu60_55_5_r1", "H")).runs == (ids["gzsl"],)
    # GZSL ran on one random split only: no GZSL columns for the others, and no GZSL mean
    assert ("ntu60_55_5_r3", "U") not in t.columns
    assert ("ntu60_55_5_r* mean", "H") not in t.columns
    # a method that ran one split keeps its row; the rest is marked missing
    assert t.cell({"method": "synse"}, ("ntu60_55_5_r1", "ZSL")).value == 50.0
    assert t.cell({"method": "synse"}, ("ntu60_55_5_r2", "ZSL")).note == "no run"
    assert t.cell({"method": "synse"}, ("ntu60_55_5_r* mean", "ZSL")).note == "1/3 splits"


def test_run_filter_and_csv_traceability(store, tmp_path):
    uri, ids = store
    t = _tables(uri, run_filter="tags.method = 'vificlip'")["base2novel"]
    assert [r.labels["method"] for r in t.rows] == ["vificlip"]
    wide, cells = write_csv(t, tmp_path)
    rows = list(csv.DictReader(cells.open()))
    hm = next(r for r in rows if r["column"] == "s3 HM")
    assert hm["run_ids"] == ids["s3"] and float(hm["value"]) == pytest.approx(2 * 80 * 30 / 110, abs=1e-4)
    wide_row = next(csv.DictReader(wide.open()))
    assert float(wide_row["mean Base std"]) == pytest.approx((200 / 3) ** 0.5, abs=1e-4)
    assert set(wide_row["run_ids"].split()) == {ids["s1"], ids["s2"], ids["s3"]}


def test_published_rows_join_matching_protocols_only(store):
    uri, _ = store
    tables = build_tables(collect_runs(uri, "paper"))
    add_published(tables)
    by = {t.key: t for t in tables}
    b2n = by["base2novel"]
    pub = b2n.cell({"dataset": "hmdb51", "method": "SC-CLIP [published, Pattern Recognition 2025]"}, (MEAN, "HM"))
    assert pub.value == 63.8 and pub.note == "published" and not pub.runs
    assert b2n.cell({"method": "SC-CLIP [published, Pattern Recognition 2025]"}, ("s1", "HM")).note == "not reported"
    assert {r.labels["dataset"] for r in b2n.rows} == {"hmdb51"}  # no UCF/SSv2 rows: we ran neither
    zs = by["zeroshot"].cell({"method": "SC-CLIP [published, Pattern Recognition 2025]"}, ("hmdb51", MEAN))
    assert (zs.value, zs.std) == (52.0, 0.3)
    assert not [r for r in by["skeleton"].rows if r.published]
    assert "published" in to_markdown(b2n)


def test_unknown_experiment_and_bad_filter_are_one_line_errors(store):
    from zsar.errors import ZsarError

    uri, _ = store
    with pytest.raises(ZsarError, match="no MLflow experiment 'nope'.*paper"):
        collect_runs(uri, "nope")
    with pytest.raises(ZsarError, match="--runs"):
        collect_runs(uri, "paper", run_filter="tags.method ==== x")
