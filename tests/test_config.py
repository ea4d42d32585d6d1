import pytest
import yaml

from zsar.config import ExperimentConfig, from_dict, parse_set, resolve
from zsar.errors import ConfigError


def test_unknown_key_names_nearest_valid_keys():
    with pytest.raises(ConfigError) as e:
        resolve(method="frozen_clip", dataset="demo", overrides={"optim": {"lrr": 0.1}})
    msg = str(e.value)
    assert "optim.lrr" in msg and "lr" in msg


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match="unknown config key 'protocl'.*protocol"):
        resolve(overrides={"protocl": "full"})


def test_unknown_method_hyperparameter_names_the_field():
    with pytest.raises(ConfigError, match=r"hparams\.label_smooth.*label_smoothing"):
        resolve(method="vificlip", dataset="demo", overrides={"hparams": {"label_smooth": 0.1}})


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"optim": {"lr": "fast"}}, "optim.lr"),
        ({"optim": {"epochs": 1.5}}, "optim.epochs"),
        ({"data": {"augment": "maybe"}}, "data.augment"),
        ({"data": {"sampler": "sparse"}}, "data.sampler"),
        ({"resources": {"workers": [1]}}, "resources.workers"),
    ],
)
def test_wrong_type_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        resolve(method="frozen_clip", dataset="demo", overrides=overrides)


@pytest.mark.parametrize(
    "overrides, field",
    [({"optim": {"lr": 0}}, "optim.lr"), ({"data": {"max_failure_fraction": 1.5}}, "data.max_failure_fraction"), ({"optim": {"epochs": -1}}, "optim.epochs")],
)
def test_out_of_range_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.") + ".*out of range"):
        resolve(method="frozen_clip", dataset="demo", overrides=overrides)


def test_set_parsing_types_and_nesting():
    out = parse_set(["optim.lr=1e-3", "data.num_frames=16", "hparams.x=[3, 7]", "run.name=abc", "backbone.pretrained=null"])
    assert out == {"optim": {"lr": "1e-3"}, "data": {"num_frames": 16}, "hparams": {"x": [3, 7]}, "run": {"name": "abc"}, "backbone": {"pretrained": None}}
    cfg = from_dict(ExperimentConfig, out | {"hparams": {}})
    assert cfg.optim.lr == pytest.approx(1e-3) and cfg.data.num_frames == 16
    with pytest.raises(ConfigError, match="key=value"):
        parse_set(["optim.lr"])


def test_resolution_order_dataset_defaults_presets_file_and_set(tmp_path):
    # demo dataset default: tiny backbone; vificlip's base2novel preset: 32 frames, overridden by its demo preset
    cfg = resolve(method="vificlip", dataset="demo", protocol="base2novel")
    assert cfg.backbone.name == "zsar-tiny" and cfg.data.num_frames == 8 and cfg.text.templates == "shape"
    cfg = resolve(method="vificlip", dataset="demo", protocol="base2novel", overrides={"optim": {"lr": 0.5}})
    assert cfg.optim.lr == 0.5
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump({"method": "vificlip", "dataset": "demo", "optim": {"epochs": 3}}))
    cfg = resolve(file=f, overrides={"optim": {"batch_size": 4}})
    assert (cfg.optim.epochs, cfg.optim.batch_size, cfg.method) == (3, 4, "vificlip")
    assert cfg.hparams == {"train_text": True, "label_smoothing": 0.0}  # the method's defaults, filled in


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = resolve(method="vificlip", dataset="demo", protocol="base2novel", overrides={"optim": {"lr": 0.01}})
    f = tmp_path / "c.yaml"
    f.write_text(cfg.to_yaml())
    assert resolve(file=f) == cfg


def test_bad_yaml_file_is_a_config_error(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("method: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve(file=f)
    with pytest.raises(ConfigError, match="not found"):
        resolve(file=tmp_path / "missing.yaml")


def test_a_bare_off_from_set_selects_the_off_choice():
    # YAML reads `--set hparams.msm=off` as False; a choice field that has "off" takes it as "off"
    cfg = resolve(method="mgsa", dataset="demo", protocol="base2novel", overrides=parse_set(["hparams.msm=off"]))
    assert cfg.method_config().msm == "off"
    with pytest.raises(ConfigError, match=r"data\.sampler"):
        resolve(method="frozen_clip", dataset="demo", overrides=parse_set(["data.sampler=off"]))
