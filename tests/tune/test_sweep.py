"""Sweeps end to end on a small rendering of the demo data with the 32-pixel random CLIP: real Ray
Tune + Optuna + ASHA, real MLflow (SQLite), real decoded videos.

One 4-trial SC-CLIP sweep (module fixture, 2 decode tasks, both cores loaded by another process)
serves several checks; trial 1 is forced to NaN with a learning rate of 1e30. Reproduction
tolerance: `zsar train --config best.yaml` with the same seed gives the best trial's `val_hm` and
`hm` within 1e-3 points, whether its clips are decoded live, read from the prepared-clip cache or
its frozen inputs from the feature cache; the same spec in a fresh ZSAR_HOME gives every trial's
metrics again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import cli_env, fresh_store, run_cli
from zsar.track.sweep_runs import read_state

pytestmark = pytest.mark.integration
TOLERANCE = 1e-3  # points of val_hm


def _write_spec(path: Path, root: Path, name: str, **change) -> Path:
    spec = {
        "name": name, "method": "sc_clip", "dataset": "demo", "root": str(root), "protocol": "base2novel", "split": "s1",
        "overrides": {"data": {"augment": False, "num_frames": 2, "decode_tasks": 2, "decode_batch": 2},
                      "optim": {"epochs": 3, "batch_size": 8, "eval_batch_size": 32},
                      "tracking": {"experiment": "sweeps-it"}},
        "space": {"tau": {"uniform": [20.0, 80.0]}, "optim.lr": {"choice": [0.003, 0.01, 1.0e30]}},
        "points_to_evaluate": [{"optim.lr": 1.0e30}],
        "metric": "val_hm", "mode": "max", "num_samples": 4,
        "asha": {"grace_period": 1, "reduction_factor": 2},
        "resources": {"cpus": 1}, "max_concurrent": 2, "seed": 0,
    }
    spec.update(change)
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def sweep_env(tmp_path_factory, session_home, empty_store):
    tmp = tmp_path_factory.mktemp("sweep")
    mp = pytest.MonkeyPatch()
    mp.setenv("ZSAR_HOME", str(session_home))
    mp.setenv("MLFLOW_TRACKING_URI", fresh_store(empty_store, tmp))
    yield tmp
    mp.undo()


@pytest.fixture(scope="module")
def sweep(sweep_env, small_demo_root, ray_session):
    from zsar.tune.sweep import run_sweep

    spec = _write_spec(sweep_env / "spec.yaml", small_demo_root, "it-sweep")
    # a busy machine: both cores always have work to switch to (at a lower priority, so that the
    # sweep's own tasks are delayed and reordered but the test does not take twice as long)
    load = [subprocess.Popen(["nice", "-n", "10", sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        result = run_sweep(spec, storage=str(sweep_env / "tune"), verbose=0)
    finally:
        for p in load:
            p.kill()
            p.wait()
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("sweeps-it")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    return {"result": result, "client": client, "runs": runs, "state": read_state(result.path), "spec": spec,
            "dir": sweep_env}


def _children(runs, parent):
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]


def test_sweep_has_one_parent_and_four_children_with_metrics(sweep):
    runs, result, client = sweep["runs"], sweep["result"], sweep["client"]
    parents = [r for r in runs if r.data.tags.get("zsar.kind") == "sweep"]
    assert [p.info.run_id for p in parents] == [result.parent_run_id]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.seed"] == "0" and "space.tau" in parent.data.params
    assert parent.data.tags["git_commit"] and parent.data.tags["selection"] == "val"
    children = _children(runs, parent.info.run_id)
    assert len(children) == 4 and len({c.data.tags["zsar.trial_id"] for c in children}) == 4
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert finished
    for child in finished:
        history = client.get_metric_history(child.info.run_id, "val_hm")
        epochs = int(child.data.metrics["epoch"])
        assert [m.step for m in history] == list(range(1, epochs + 1))  # every epoch reached MLflow (and ASHA)
        assert {"hm", "base_top1", "novel_top1", "val_base_top1", "val_novel_top1"} <= set(child.data.metrics)
        assert child.data.params["selection"] == "val" and child.data.tags["selection"] == "val"
    files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert "best_config.yaml" in files
    plots = {f.path for f in client.list_artifacts(parent.info.run_id, "sweep/plots")}
    assert {"sweep/plots/optimization_history.png", "sweep/plots/optimization_history.html"} <= plots
    assert {"sweep/plots/param_importances.png", "sweep/plots/parallel_coordinate.png"} & plots or len(finished) < 2
    html = Path(client.download_artifacts(parent.info.run_id, "sweep/plots/optimization_history.html",
                                          str(sweep["dir"]))).read_text()
    assert "data:image/png;base64," in html and "http" not in html.replace("http-equiv", "")


def test_nan_trial_fails_alone(sweep):
    children = _children(sweep["runs"], sweep["result"].parent_run_id)
    failed = {c.data.tags["zsar.trial_id"] for c in children if c.info.status == "FAILED"}
    nan_trials = {c.data.tags["zsar.trial_id"] for c in children if float(c.data.params["optim.lr"]) == 1e30}
    assert nan_trials and failed == nan_trials  # exactly the trials with lr=1e30, the sweep went on
    for c in children:
        if c.info.status == "FAILED":
            assert "non-finite" in c.data.tags["zsar.error"] and "train/loss=nan" in c.data.tags["zsar.error"]
    assert sweep["result"].trials == {"finished": 4 - len(failed), "failed": len(failed), "unfinished": 0}
    assert not sweep["result"].interrupted


def test_trial0_is_the_preset(sweep):
    state = sweep["state"]
    first = min(state["trials"].values(), key=lambda e: e["index"])
    assert first["params"] == {"tau": 50.0, "optim.lr": 0.003}  # the demo preset's tau and lr


def test_best_names_the_best_child_and_its_config_reproduces(sweep, tmp_path, figures):
    from zsar.cli import main

    runs = _children(sweep["runs"], sweep["result"].parent_run_id)
    complete = [r for r in runs if r.info.status == "FINISHED" and r.data.tags.get("zsar.stopped_early") == "false"]
    top = max(r.data.metrics["val_hm"] for r in complete)
    tied = {r.info.run_id: r for r in complete if r.data.metrics["val_hm"] == top}  # a small val set can tie
    out = tmp_path / "best.yaml"
    cli = run_cli("best", "--method", "sc_clip", "--dataset", "demo", "--out", str(out))
    assert cli.returncode == 0, cli.stderr
    first_row = next(line for line in cli.stdout.splitlines() if line.strip().startswith("1 "))
    assert any(run_id in first_row for run_id in tied) and "val" in first_row and "val_hm" in first_row
    best = next(r for run_id, r in tied.items() if run_id in first_row)  # what best.yaml holds
    assert sweep["state"]["best"]["run_id"] in tied  # the parent's best_config.yaml is a trial with the best score
    state_trials = sweep["state"]["trials"].values()
    earliest = min((e for e in state_trials if e.get("run_id") in tied), key=lambda e: e["index"])
    assert sweep["state"]["best"]["run_id"] == earliest["run_id"]  # ties go to the earliest trial
    config = yaml.safe_load(out.read_text())
    assert config["seed"] == 0 and config["run"]["name"] is None and config["selection"] == "val"

    assert "# zsar.record manifest_hash=" in out.read_text() and "# zsar.record config_hash=" in out.read_text()

    client = sweep["client"]
    prepared = tmp_path / "clips"
    assert main(["prepare", "--config", str(out), "--set", f"data.prepared_cache={prepared}"]) == 0
    ways = {"live": ["data.feature_cache=false", "data.use_prepared=false"],
            "prepared": ["data.feature_cache=false", f"data.prepared_cache={prepared}"],
            "features": ["data.feature_cache=true", "data.use_prepared=false"]}
    for way, sets in ways.items():
        assert main(["train", "--config", str(out), "--name", f"reproduce-{way}", "--set", f"run.storage={tmp_path}",
                     *sets]) == 0
        again = client.search_runs([best.info.experiment_id], f"tags.mlflow.runName = 'reproduce-{way}'")[0]
        assert again.data.tags["selection"] == "val"
        for key in ("val_hm", "hm"):
            figures[f"repro/best_yaml_{way}_vs_trial_{key}_abs_diff"] = abs(again.data.metrics[key] - best.data.metrics[key])
            assert again.data.metrics[key] == pytest.approx(best.data.metrics[key], abs=TOLERANCE), (way, key)
        record = {k: v for k, v in again.data.tags.items() if k.startswith("zsar.record.")}
        assert record["zsar.record.manifest_hash"] == best.data.tags["zsar.record.manifest_hash"]
        assert record["zsar.record.config_hash"] == best.data.tags["zsar.record.config_hash"]  # how data is read is not in it


def test_the_same_spec_in_a_fresh_zsar_home_gives_every_trial_again(sweep, small_demo_root, tmp_path, empty_store,
                                                                     monkeypatch, figures):
    from zsar.tune.sweep import run_sweep

    monkeypatch.setenv("ZSAR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fresh_store(empty_store, tmp_path))
    again = run_sweep(sweep["spec"], storage=str(tmp_path / "tune"), verbose=0)

    def by_params(state) -> dict:
        return {json.dumps(e["params"], sort_keys=True): e for e in state["trials"].values()}

    first, second = by_params(sweep["state"]), by_params(read_state(again.path))
    assert first.keys() == second.keys() and len(first) == 4
    client, other = sweep["client"], MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    for params, entry in first.items():
        a, b = client.get_run(entry["run_id"]), other.get_run(second[params]["run_id"])
        assert a.info.status == b.info.status, params
        for key in ("val_hm", "hm", "train/loss"):
            if key in a.data.metrics:
                diff = abs(b.data.metrics[key] - a.data.metrics[key])
                figures["repro/fresh_home_trials_max_abs_diff"] = max(diff, figures.get("repro/fresh_home_trials_max_abs_diff", 0))
                assert b.data.metrics[key] == a.data.metrics[key], (params, key)


def test_misspelt_parameter_fails_before_launch(sweep_env, small_demo_root, capsys):
    from zsar.cli import main

    spec = _write_spec(sweep_env / "typo.yaml", small_demo_root, "it-typo",
                       space={"tua": {"uniform": [20.0, 80.0]}})
    assert main(["sweep", str(spec), "--storage", str(sweep_env / "tune-typo")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown parameter 'tua'" in err[0] and "did you mean 'tau'" in err[0]
    assert not (sweep_env / "tune-typo").exists()  # nothing launched


def _resume_spec(path: Path, root: Path, name: str, experiment: str) -> Path:
    return _write_spec(path, root, name, max_concurrent=1, space={"tau": {"uniform": [20.0, 80.0]}}, points_to_evaluate=[],
                       overrides={"data": {"augment": False, "num_frames": 2, "decode_tasks": 1},
                                  "optim": {"epochs": 2, "batch_size": 8}, "tracking": {"experiment": experiment}},
                       asha={"grace_period": 2, "reduction_factor": 2})


def _trial_metrics(experiment: str) -> dict[str, dict]:
    """Each finished child of an experiment's sweep, by its trial parameter: its final metrics."""
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=100)
    return {r.data.params["hparams.tau"]: r.data.metrics
            for r in runs if r.data.tags.get("zsar.kind") != "sweep" and r.info.status == "FINISHED"}


@pytest.fixture(scope="module")
def resume_twin(sweep_env, small_demo_root, ray_session) -> dict[str, dict]:
    """The interrupted sweep's spec run without interruption: its trials' metrics by parameter."""
    from zsar.tune.sweep import run_sweep

    spec = _resume_spec(sweep_env / "twin.yaml", small_demo_root, "it-twin", "sweeps-twin")
    run_sweep(spec, storage=str(sweep_env / "tune-twin"), verbose=0)
    return _trial_metrics("sweeps-twin")


def test_interrupted_sweep_resumes_without_rerunning_or_duplicates(sweep_env, small_demo_root, resume_twin, figures):
    """SIGTERM (what `zsar jobs stop` and a preempted node send; SIGINT takes the same path) after
    the first trial: exit 130 with the counts, nothing left RUNNING; the resume gives exactly one
    child per trial, rewrites the parent's tags, and every trial, the interrupted one included,
    scores as in the uninterrupted twin."""
    spec = _resume_spec(sweep_env / "resume.yaml", small_demo_root, "it-resume", "sweeps-resume")
    storage = sweep_env / "tune-resume"
    path = storage / "it-resume"
    exe = str(Path(sys.executable).with_name("zsar"))
    # a fresh `zsar` process on the session's cluster (its trial actors end with the process)
    proc = subprocess.Popen([exe, "sweep", str(spec), "--storage", str(storage)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env())
    deadline = time.time() + 400
    while time.time() < deadline:
        done = [e for e in read_state(str(path)).get("trials", {}).values() if e.get("status") == "FINISHED"]
        if len(done) >= 1 or proc.poll() is not None:
            break
        time.sleep(1)
    assert proc.poll() is None, f"the sweep ended before it was interrupted:\n{proc.stderr.read()[-3000:]}"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err[-3000:]
    assert "sweep interrupted" in err and "unfinished" in err
    counts = json.loads(out)["trials"]
    assert counts["finished"] >= 1 and counts["finished"] + counts["failed"] < 4
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("sweeps-resume")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    assert not [r for r in runs if r.info.status == "RUNNING"]  # parent KILLED, the trial in flight KILLED
    assert [r.info.status for r in runs if r.data.tags.get("zsar.kind") == "sweep"] == ["KILLED"]
    before = read_state(str(path))["trials"]
    finished_before = {tid for tid, e in before.items() if e.get("status") == "FINISHED"}
    assert 1 <= len(finished_before) < 4

    again = run_cli("sweep", str(spec), "--storage", str(storage), "--resume", timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["trials"] == {"finished": 4, "failed": 0, "unfinished": 0}
    after = read_state(str(path))
    for tid in finished_before:  # not started again, same MLflow run
        assert after["trials"][tid]["starts"] == 1 and after["trials"][tid]["run_id"] == before[tid]["run_id"]
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("zsar.kind") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    tags = parents[0].data.tags
    assert tags["zsar.trials_finished"] == "4" and "zsar.trials_unfinished" not in tags and "zsar.error" not in tags
    best_steps = [m.step for m in client.get_metric_history(parents[0].info.run_id, "best/val_hm")]
    assert len(best_steps) == len(set(best_steps))  # never logged twice at one step
    children = _children(runs, parents[0].info.run_id)
    assert not [c for c in children if c.info.status == "RUNNING"]
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert len(finished) == 4 and len({c.data.tags["zsar.trial_id"] for c in finished}) == 4  # one child per trial
    for c in children:  # any other child is one Tune lost: KILLED, and says so
        assert c.info.run_id in {f.info.run_id for f in finished} or (c.info.status == "KILLED" and c.data.tags["zsar.trial_status"].startswith("lost"))
    for c in finished:  # no epoch logged twice
        steps = [m.step for m in client.get_metric_history(c.info.run_id, "epoch")]
        assert len(steps) == len(set(steps))
    json.dumps(after)
    resumed = _trial_metrics("sweeps-resume")
    shared = resumed.keys() & resume_twin.keys()
    assert len(shared) >= len(finished_before) + 1, (sorted(resumed), sorted(resume_twin))
    diffs = [abs(resumed[p][k] - resume_twin[p][k]) for p in shared for k in ("val_hm", "hm", "train/loss")]
    figures["repro/sweep_resumed_after_sigterm_vs_twin_max_abs_diff"] = max(diffs)
    assert max(diffs) < 1e-3, diffs


@pytest.mark.parametrize("resources, message", [({"cpus": 64}, "needs 64 CPU"), ({"cpus": 1, "gpus": 0.5}, "0.5 GPU"),
                                                ({"cpus": 2, "workers": 4}, "needs 4 workers")])
def test_resources_no_node_can_hold_fail_before_launch(sweep_env, small_demo_root, ray_session, resources, message):
    from zsar.errors import ConfigError
    from zsar.tune.sweep import run_sweep

    spec = _write_spec(sweep_env / "big.yaml", small_demo_root, "it-big", resources=resources)
    with pytest.raises(ConfigError, match=message):
        run_sweep(spec, storage=str(sweep_env / "tune-big"), verbose=0)
    assert not (sweep_env / "tune-big").exists()
