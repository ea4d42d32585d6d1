"""Typed experiment config: dataclasses <- YAML file + `--set key=value`.

Resolution order (later wins): field defaults < the dataset's defaults (then those of its
protocol: kinetics400 `zeroshot` brings its default `eval_targets`) < the method's presets
("default", then the protocol, the dataset, "dataset/protocol") < the YAML file < `--set`.
Every key is checked: an unknown key names the nearest valid ones; a wrong type or a value out
of range names the field.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from zsar.errors import ConfigError
from zsar.typed import F, field_paths, from_dict, unknown_key_error  # noqa: F401  (F: methods declare hparams with it)


@dataclass
class SkeletonDataConfig:
    bodies: int = F(2, ge=1, le=4, help="bodies kept per sequence (the main one by motion energy first)")
    temporal: Literal["resample", "pad"] = F("resample", help="resample: one frame per uniform segment; pad: T consecutive frames, zero-padded")
    align: bool = F(False, help="rotate each sequence so that its first frame's spine is vertical and its shoulders horizontal")
    spread_ratio: float = F(0.8, gt=0.0, help="drop bodies whose mean width/height exceeds this (not body-like)")


@dataclass
class DataConfig:
    num_frames: int = F(8, ge=1, help="frames per clip (T)")
    sampler: Literal["segment", "dense"] = F("segment", help="segment: one frame per uniform segment; dense: T frames at `stride`")
    stride: int = F(4, ge=1, help="frame stride of the dense sampler")
    views: int = F(1, ge=1, help="temporal views at evaluation (logits averaged)")
    crops: int = F(1, ge=1, help="spatial crops at evaluation (1: centre; 3: left/centre/right)")
    size: Optional[int] = F(None, ge=8, help="input size; default: the backbone's image size")
    short_side: Optional[int] = F(None, ge=8, help="resize the short side to this before cropping; default `size` (CLIP's own preprocessing)")
    augment: bool = F(True, help="train-time random temporal offsets and random-resized crops; off: fixed clips, decoded once and kept in memory when small")
    crop_scale: list[float] = F(factory=lambda: [0.5, 1.0], help="area range of train-time random-resized crops")
    flip: bool = F(True, help="train-time random horizontal flips (off for direction-sensitive classes)")
    view_fusion: Literal["mean_logits", "mean_probs"] = F("mean_logits", help="how evaluation views are combined")
    max_failure_fraction: float = F(0.01, ge=0.0, le=1.0, help="fail the run when more files than this fraction are unreadable")
    decode_tasks: int = F(2, ge=1, help="concurrent Ray Data decode tasks")
    decode_batch: int = F(4, ge=1, help="videos per decode task batch")
    decoder_threads: int = F(1, ge=0, help="PyAV decoder threads per video (0: FFmpeg's choice)")
    feature_cache: bool = F(True, help="feed a method's frozen inputs from the feature cache (ZSAR_HOME/cache/features) for clips that are the same every epoch")
    feature_actors: int = F(1, ge=1, help="actors (each with the frozen encoder; one GPU each on GPU runs) that fill the feature cache")
    use_prepared: bool = F(True, help="read clips from the prepared-clip cache (zsar prepare) when an entry with exactly these settings exists")
    prepared_clips: int = F(4, ge=1, help="random training clips stored per video by zsar prepare (one is picked per epoch)")
    prepared_cache: Optional[str] = F(None, help="prepared-clip cache folder or URI; default ZSAR_HOME/cache/clips")
    skeleton: SkeletonDataConfig = F(factory=SkeletonDataConfig, help="skeleton datasets only")


@dataclass
class OptimConfig:
    epochs: int = F(10, ge=0, help="training epochs (0: evaluate only)")
    batch_size: int = F(32, ge=1, help="global batch size, split evenly across workers")
    eval_batch_size: int = F(32, ge=1, help="per-worker evaluation batch size")
    lr: float = F(1e-4, gt=0.0, help="peak learning rate")
    optimizer: Literal["adamw", "sgd"] = F("adamw", help="adamw (the papers'); sgd (momentum 0.9): updates proportional to the gradient, e.g. to check DDP exactly")
    weight_decay: float = F(0.01, ge=0.0)
    betas: list[float] = F(factory=lambda: [0.9, 0.999])
    warmup_epochs: float = F(0.0, ge=0.0, help="linear warm-up before the cosine decay")
    min_lr_ratio: float = F(0.0, ge=0.0, le=1.0, help="cosine floor as a fraction of lr")
    grad_clip: Optional[float] = F(1.0, gt=0.0, help="max gradient norm; null disables clipping")
    amp: bool = F(True, help="bf16 autocast on GPU (ignored on CPU)")
    eval_every: int = F(1, ge=1, help="evaluate every N epochs (and always after the last)")


@dataclass
class BackboneConfig:
    name: str = F("ViT-B-16", help="open_clip model name, or a zsar tiny config (zsar-tiny, zsar-tiny-64)")
    pretrained: Optional[str] = F("openai", help="open_clip pretrained tag, or a local weights file")
    checkpoint: Optional[str] = F(None, help="a local weights file (wins over `pretrained`): open_clip, OpenAI TorchScript, ViFi-CLIP, PySlowFast (FROSTER, Open-VCLIP, SC-CLIP) or a zsar checkpoint; keys it lacks come from `pretrained`")
    checkpoint_format: Literal["auto", "open_clip", "openai", "vificlip", "pyslowfast", "zsar"] = F("auto", help="layout of `checkpoint`; auto: detected from its keys")
    activation: Optional[Literal["gelu", "quick_gelu"]] = F(None, help="MLP activation; null: what the weights were trained with (the pretrained tag's config, the checkpoint's layout, else the model config)")
    seed: int = F(0, help="init seed for random-weight backbones")


@dataclass
class TextConfig:
    templates: Any = F("video", help="a template set name (see zsar.models.text.TEMPLATES) or a list of '{}' templates")
    descriptions: Optional[str] = F(None, help="class descriptions: a JSON file or a folder of <class>.txt")
    use: Literal["names", "descriptions", "both"] = F("names", help="what class texts are built from")


@dataclass
class TrackingConfig:
    experiment: str = F("zsar", help="MLflow experiment")
    uri: Optional[str] = F(None, help="MLflow tracking URI; default MLFLOW_TRACKING_URI or SQLite in ZSAR_HOME")


@dataclass
class RunConfig:
    name: Optional[str] = F(None, help="run name; relaunching the same name resumes it")
    storage: Optional[str] = F(None, help="checkpoint storage (local path or URI); default ZSAR_HOME/runs")
    checkpoints_to_keep: int = F(2, ge=1)
    init_from: Optional[str] = F(None, help="start from the weights of this checkpoint directory (zsar eval --checkpoint)")
    max_failures: int = F(0, ge=-1, help="restart the workers from the last checkpoint after this many failures (-1: always)")
    deterministic: bool = F(False, help="torch.use_deterministic_algorithms(True): GPU kernels without atomic-add "
                                        "races (slower; CPU training is reproducible without it)")


@dataclass
class ResourcesConfig:
    workers: int = F(1, ge=0, help="Ray Train workers (0: run in the driver, for quick checks)")
    gpu: bool = F(False, help="one GPU per worker")
    cpus_per_worker: float = F(1.0, gt=0.0)
    address: Optional[str] = F(None, help="Ray address; default RAY_ADDRESS or a local Ray")
    torch_threads: Optional[int] = F(None, ge=1, help="torch threads per worker; default: cores / workers")
    min_workers: Optional[int] = F(None, ge=1, help="elastic training: start with as few as this many workers, grow to `workers`")
    placement: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = F("PACK", help="how workers are placed over nodes")


@dataclass
class EvalTarget:
    dataset: str = F(help="a registered dataset")
    root: Optional[str] = F(None)
    protocol: str = F("zeroshot")
    splits: list[str] = F(factory=list)


@dataclass
class ExperimentConfig:
    method: str = F("frozen_clip", help="a registered method (zsar methods)")
    dataset: str = F("demo", help="a registered dataset (zsar datasets)")
    root: Optional[str] = F(None, help="dataset root (local path or URI)")
    protocol: str = F("base2novel")
    split: Optional[str] = F(None, help="protocol split; default the protocol's first; `all` runs every split")
    seed: int = F(0)
    selection: Literal["val", "test"] = F("test", help="what selected this run's hyperparameters")
    gzsl_gamma: float = F(0.0, help="GZSL calibrated stacking: subtracted from seen-class scores before the argmax (in the method's logit units)")
    hparams: dict = F(factory=dict, help="the method's hyperparameters (its Config dataclass)")
    data: DataConfig = F(factory=DataConfig)
    optim: OptimConfig = F(factory=OptimConfig)
    backbone: BackboneConfig = F(factory=BackboneConfig)
    text: TextConfig = F(factory=TextConfig)
    tracking: TrackingConfig = F(factory=TrackingConfig)
    run: RunConfig = F(factory=RunConfig)
    resources: ResourcesConfig = F(factory=ResourcesConfig)
    eval_targets: list[EvalTarget] = F(factory=list)
    roots: dict = F(factory=dict, help="dataset roots by name, for eval targets given without a root: roots.ucf101=/data/UCF101")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def method_config(self):
        """The method's own Config dataclass, built (and checked) from `hparams`."""
        from zsar.registry import METHODS

        method_cls = METHODS.get(self.method)
        return from_dict(method_cls.Config, self.hparams, "hparams")


# ---------------------------------------------------------------- merging and overrides


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "eval_targets":
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_set(items: list[str]) -> dict:
    """`["optim.lr=1e-3", "hparams.delta=0.8"]` -> nested dict; values parsed as YAML."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: '{part}' is not a section")
        node[parts[-1]] = value
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def preset_layers(method_cls, dataset: str, protocol: str) -> list[dict]:
    presets = getattr(method_cls, "presets", {}) or {}
    keys = ["default", protocol, dataset, f"{dataset}/{protocol}"]
    return [presets[k] for k in keys if k in presets]


def resolve(
    *,
    file: str | Path | None = None,
    overrides: dict | None = None,
    method: str | None = None,
    dataset: str | None = None,
    protocol: str | None = None,
) -> ExperimentConfig:
    """The fully resolved config for a run (see the module docstring for the order)."""
    from zsar.registry import DATASETS, METHODS

    file_data = load_yaml(file) if file else {}
    cli = {k: v for k, v in (("method", method), ("dataset", dataset), ("protocol", protocol)) if v is not None}
    user = deep_merge(file_data, deep_merge(cli, overrides or {}))
    # Check the user's keys first, so a typo is reported as such and not as a preset problem.
    from_dict(ExperimentConfig, {k: v for k, v in user.items() if k != "hparams"})

    probe = from_dict(ExperimentConfig, {k: user[k] for k in ("method", "dataset", "protocol") if k in user})
    method_cls = METHODS.get(probe.method)
    dataset_cls = DATASETS.get(probe.dataset)

    merged: dict = {}
    merged = deep_merge(merged, getattr(dataset_cls, "config_defaults", {}) or {})
    merged = deep_merge(merged, (getattr(dataset_cls, "protocol_defaults", {}) or {}).get(probe.protocol, {}))
    for layer in preset_layers(method_cls, probe.dataset, probe.protocol):
        merged = deep_merge(merged, layer)
    merged = deep_merge(merged, user)
    cfg = from_dict(ExperimentConfig, merged)
    cfg.hparams = dataclasses.asdict(cfg.method_config())  # checked, with the method's defaults filled in
    return cfg
