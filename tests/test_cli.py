"""User errors: one line naming what is wrong, exit 2, no traceback."""

import pytest

from conftest import run_cli
from zsar.data.sources.demo import TRAIN_SHOTS


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--method", "nope", "--dataset", "demo"], "unknown method 'nope'"),
        (["train", "--method", "vificlip", "--dataset", "ucf"], "unknown dataset 'ucf'"),
        (["config", "show", "--method", "vificlip", "--dataset", "demo", "--set", "optim.lrr=1"], "optim.lrr"),
        (["config", "show", "--method", "vificlip", "--dataset", "demo", "--set", "optim.lr=abc"], "optim.lr"),
        (["config", "show", "--method", "vificlip", "--dataset", "demo", "--set", "nokeyvalue"], "key=value"),
        (["train", "--method", "vificlip", "--dataset", "folder", "--protocol", "full", "--dry-run"], "needs --root"),
        (["train", "--method", "vificlip", "--dataset", "folder", "--root", "/no/such/dir", "--protocol", "full", "--dry-run"], "not found"),
        (["train", "--method", "vificlip", "--dataset", "demo", "--protocol", "zeroshot", "--dry-run"], "no protocol 'zeroshot'"),
        (["train", "--config", "/no/such.yaml"], "config file not found"),
        (["eval", "--dataset", "demo"], "needs --checkpoint"),
        (["trian"], "invalid choice"),
        (["train", "--workers", "many"], "invalid int value"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, needle, zsar_home):
    out = run_cli(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert needle in lines[0]
    assert "Traceback" not in out.stderr


def test_config_show_prints_resolved_yaml(zsar_home):
    import yaml

    out = run_cli("config", "show", "--method", "vificlip", "--dataset", "demo", "--protocol", "base2novel", "--set", "optim.lr=0.002")
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["method"] == "vificlip" and cfg["optim"]["lr"] == 0.002 and cfg["backbone"]["name"] == "zsar-tiny"


def test_train_dry_run_resolves_data_without_training(demo_root, zsar_home):
    import json

    out = run_cli("train", "--method", "vificlip", "--dataset", "demo", "--protocol", "base2novel", "--dry-run")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["train_classes"] == 8 and summary["eval"]["novel"]["classes"] == 8
    assert summary["train_videos"] == 8 * TRAIN_SHOTS
