"""`zsar report` on a real SQLite MLflow store holding runs of every protocol family, tagged and
named the way the training pipeline logs them: a `folder`/`full` run under its `--split all`
parent, base-to-novel splits, a dataset's own zero-shot splits and skeleton ZSL runs; some runs
could not decode a few videos. The report is built by the CLI, in process."""

import csv
import re

import pytest
from conftest import fresh_store
from mlflow.tracking import MlflowClient

from zsar.cli import main
from zsar.report.plots import shown_groups
from zsar.report.tables import build_tables
from zsar.report.collect import collect_runs


def _run(client, exp, tags, metrics, parent=None, failures_csv=None, tmp=None):
    """A finished run as zsar's runner leaves it: per-epoch and `final/` metrics."""
    tags = {"selection": "test", "zsar.kind": "eval", **tags}
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(exp, tags=tags, run_name=f"{tags['method']}-{tags['dataset']}-{tags['protocol']}-{tags['split']}")
    rid = run.info.run_id
    for k, v in metrics.items():
        client.log_metric(rid, k, v)
        client.log_metric(rid, f"final/{k}", v)
    if failures_csv:
        (tmp / rid).mkdir()
        path = tmp / rid / "failures.csv"
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["path", "error"])
            w.writeheader()
            w.writerows(failures_csv)
        client.log_artifact(rid, str(path), "eval")
    client.set_terminated(rid)
    return rid


@pytest.fixture(scope="module")
def lab(empty_store, tmp_path_factory):
    """The store, made once: the tests only read it."""
    tmp_path = tmp_path_factory.mktemp("lab")
    uri = fresh_store(empty_store, tmp_path)
    client = MlflowClient(uri)
    exp = client.create_experiment("lab", artifact_location=(tmp_path / "artifacts").as_uri())
    ids = {}
    # folder/full as runs made before a one-split `--split all` became a plain run: a parent (split
    # all, means only) and one child; the only split of `folder` is itself called `all`
    parent = _run(client, exp, {"method": "vificlip", "dataset": "folder", "protocol": "full", "split": "all"},
                  {"top1_mean": 55.0, "top1_std": 0.0, "data/failures_mean": 2.0})
    ids["folder"] = _run(client, exp, {"method": "vificlip", "dataset": "folder", "protocol": "full", "split": "all"},
                         {"top1": 55.0, "top5": 90.0, "data/failures": 2.0}, parent=parent, tmp=tmp_path,
                         failures_csv=[{"path": "/videos/test/jump/broken.mp4", "error": "InvalidDataError: [Errno 1094995529]"},
                                       {"path": "/videos/test/run/empty.mp4", "error": "empty file"}])
    ids["folder_frozen"] = _run(client, exp, {"method": "frozen_clip", "dataset": "folder", "protocol": "full", "split": "all"},
                                {"top1": 12.5, "top5": 40.0, "data/failures": 0.0})
    for split, (b, n) in {"s1": (60.0, 40.0), "s2": (70.0, 50.0), "s3": (80.0, 30.0)}.items():
        ids[split] = _run(client, exp, {"method": "vificlip", "dataset": "demo", "protocol": "base2novel", "split": split},
                          {"base_top1": b, "novel_top1": n, "hm": 2 * b * n / (b + n), "data/failures": 1.0})
    for split, v in {"split1": 61.0, "split2": 63.0, "split3": 65.0}.items():
        ids[f"zs_{split}"] = _run(client, exp, {"method": "frozen_clip", "dataset": "ucf101", "protocol": "zeroshot", "split": split},
                                  {"top1": v, "top5": v + 20, "data/failures": 0.0})
    for r, v in ((1, 40.0), (2, 44.0), (3, 48.0)):
        ids[f"zsl_r{r}"] = _run(client, exp, {"method": "skeleton_proj", "dataset": "ntu60", "protocol": "zsl", "split": f"ntu60_55_5_r{r}"},
                                {"zsl_top1": v})
    ids["parent"] = parent
    return uri, ids


@pytest.fixture
def store(lab, zsar_home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", lab[0])
    return lab


def _md_table(md: str, title_start: str) -> list[str]:
    """The body rows of the Markdown table whose title starts with `title_start`."""
    block = md.split(f"### {title_start}", 1)[1].split("\n\n", 2)[1]
    return [line for line in block.splitlines()[2:] if line.startswith("|")]


def test_report_has_a_table_for_every_protocol_with_runs(store, tmp_path, capsys):
    uri, ids = store
    out = tmp_path / "out"
    assert main(["report", "--experiment", "lab", "--out", str(out), "--tsne-videos", "0"]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(out / "index.html")  # stdout: the result alone
    md = (out / "report.md").read_text()
    full = _md_table(md, "Protocol full")
    b2n = _md_table(md, "Base-to-novel")
    zs = _md_table(md, "Zero-shot")
    skel = _md_table(md, "Skeleton")
    assert len(full) == 2 and len(b2n) == 1 and len(zs) == 1 and len(skel) == 1
    # folder/full: the child's numbers once (the parent only aggregates), with its 2 failed videos
    vifi = next(line for line in full if "| vificlip |" in line)
    assert "| 55.00 | 90.00 | 2 |" in vifi and ids["folder"][:8] in vifi and ids["parent"][:8] not in md
    assert "| 12.50 | 40.00 | 0 |" in next(line for line in full if "| frozen_clip |" in line)
    # base-to-novel: three runs of 1 failed video each; means by hand (70 ± 8.16, 40 ± 8.16)
    assert "| 3 |" in b2n[0] and "70.00 ± 8.16" in b2n[0] and "40.00 ± 8.16" in b2n[0]
    # the dataset's own zero-shot splits: mean 63 ± 1.63 over split1..3
    assert "| — | zeroshot | frozen_clip |" in zs[0] and "63.00 ± 1.63" in zs[0]
    assert "44.00 ± 3.27" in skel[0]
    # no published rows: nothing we ran matches a published table; no dump of them either
    assert "[published" not in md and "Published numbers" not in md
    page = (out / "index.html").read_text()
    assert page.count("<th>failed videos</th>") == 4
    # the per-run section is the best run of each table, with the folder run's undecodable videos
    headings = re.findall(r'<h2 id="s\d+">Run [^<]*</h2>', page)
    assert any(ids["folder"] in h and "best of full" in h for h in headings), headings
    assert any(ids["s3"] in h or ids["s2"] in h or ids["s1"] in h for h in headings)
    assert "/videos/test/jump/broken.mp4" in page and "2 videos could not be decoded" in page


def test_bar_groups_draw_base_novel_and_hm_without_missing_clutter(store):
    uri, _ = store
    tables = {t.key: t for t in build_tables(collect_runs(uri, "lab"))}
    b2n = tables["base2novel"]
    (row,) = b2n.rows
    groups = shown_groups(b2n, row)
    # every split is there, so the mean (Base, Novel, HM) stands for them
    assert [g.label for g in groups] == ["mean"]
    assert [b2n.columns[c][1] for c in groups[0].columns] == ["Base", "Novel", "HM"]
    # s3's Base not logged: the mean Base and HM are missing, so the splits are drawn, and the mean's Novel
    for column in (("s3", "Base"), ("mean", "Base"), ("mean", "HM")):
        row.cells[b2n.columns.index(column)].value = None
    assert [g.label for g in shown_groups(b2n, row)] == ["s1", "s2", "s3", "mean"]
    full = tables["full"]
    assert all([g.label for g in shown_groups(full, r)] == ["all"] for r in full.rows)
