"""Sweep specs: every shipped spec loads; a bad one fails with one line naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from zsar.errors import ConfigError
from zsar.tune.spec import load_spec, shipped_specs

REPO = Path(__file__).resolve().parents[2]
SPECS = shipped_specs(REPO / "sweeps")


def test_every_method_has_a_demo_spec_and_sc_clip_the_paper_datasets():
    from zsar.registry import METHODS

    names = {(p.parent.name, p.stem) for p in SPECS}
    for method in METHODS.names():
        demo = "demo_skeleton" if METHODS.get(method).modality == "skeleton" else "demo"
        assert (method, demo) in names, f"no sweeps/{method}/{demo}.yaml"
    for dataset in ("ucf101", "hmdb51", "ssv2", "kinetics400"):
        assert ("sc_clip", dataset) in names


@pytest.mark.parametrize("path", SPECS, ids=[f"{p.parent.name}/{p.stem}" for p in SPECS])
def test_shipped_spec_is_valid(path, session_home):
    spec = load_spec(path)
    assert spec.method == path.parent.name and spec.dataset == path.stem
    assert spec.points, "the preset is trial 0"
    base = spec.base_config()
    for name, value in spec.points[0].items():  # trial 0 is the preset's own values
        node = base.to_dict()
        for part in spec.space[name].key.split("."):
            node = node[part]
        assert node == value
    if spec.selection == "val":
        assert spec.metric.startswith("val_")


def test_sc_clip_hmdb51_trial0_is_table1(session_home):
    spec = load_spec(REPO / "sweeps" / "sc_clip" / "hmdb51.yaml")
    assert spec.points[0] == {"delta": 0.85, "tau": 40.0, "alpha": 0.3, "beta": 0.3, "optim.lr": 1e-3}
    cfg = spec.trial_config({"delta": 0.7, "optim.lr": 2e-4})
    assert cfg.hparams["delta"] == 0.7 and cfg.optim.lr == 2e-4 and cfg.hparams["tau"] == 40.0
    assert cfg.selection == "val" and cfg.optim.eval_every == 1


def _spec(tmp_path, **change) -> Path:
    data = {"method": "sc_clip", "dataset": "demo", "protocol": "base2novel",
            "space": {"tau": {"uniform": [20.0, 80.0]}, "optim.lr": {"loguniform": [1e-4, 1e-2]}}}
    for key, value in change.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("change, message", [
    ({"space": {"tua": {"uniform": [1.0, 2.0]}}}, "unknown parameter 'tua'.*did you mean 'tau'"),
    ({"space": {"optim.lrr": {"uniform": [1.0, 2.0]}}}, "unknown parameter 'optim.lrr'.*did you mean 'optim.lr'"),
    ({"space": {"tau": {"uniform": [80.0, 20.0]}}}, "inverted range"),
    ({"space": {"tau": {"uniform": [50.0, 50.0]}}}, "empty range"),
    ({"space": {"tau": {"choice": []}}}, "non-empty list"),
    ({"space": {"tau": {"loguniform": [0.0, 1.0]}}}, "low > 0"),
    ({"space": {"tau": {"normal": [0.0, 1.0]}}}, "must be one of"),
    ({"metric": "val_top1"}, "metric 'val_top1' is not produced"),
    ({"metric": "hm"}, "selection=val selects on the held-out"),
    ({"space": {"tau": {"uniform": [60.0, 80.0]}}}, "preset's tau=50.0 lies outside"),
    ({"space": {"delta": {"uniform": [0.5, 1.5]}}}, "delta.*1.5.*out of range"),
    ({"asha": {"grace": 1}}, "unknown key 'asha.grace'.*grace_period"),
    ({"samples": 3}, "unknown key 'samples'.*num_samples"),
])
def test_bad_spec_is_one_clear_error(tmp_path, session_home, change, message):
    with pytest.raises(ConfigError, match=message):
        load_spec(_spec(tmp_path, **change))


def test_selection_test_selects_on_hm(tmp_path, session_home):
    spec = load_spec(_spec(tmp_path, selection="test"))
    assert spec.metric == "hm"
    assert spec.trial_config({"tau": 30.0}).selection == "test"


def test_optuna_space_matches_kinds(tmp_path, session_home):
    import optuna.distributions as d

    spec = load_spec(_spec(tmp_path, space={"tau": {"int": [10, 90]}, "adapter_a": {"choice": ["tf", "mlp"]},
                                            "optim.lr": {"loguniform": ["1e-4", 1e-2]}}))
    space = spec.optuna_space()
    assert isinstance(space["tau"], d.IntDistribution) and (space["tau"].low, space["tau"].high) == (10, 90)
    assert space["adapter_a"].choices == ("tf", "mlp")
    assert space["optim.lr"].log and space["optim.lr"].low == 1e-4  # "1e-4": YAML's string, read as the number
