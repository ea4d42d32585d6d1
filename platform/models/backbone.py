"""CLIP backbones from open_clip: a small factory over declarative model configs.

`create_backbone(cfg)` accepts (a) an open_clip model name + pretrained tag (`ViT-B-16` +
`openai` in the paper presets), (b) a local weights file (`checkpoint`, or a path given as
`pretrained`) in any layout of `zsar.models.checkpoint_layouts` (open_clip, OpenAI TorchScript,
ViFi-CLIP, PySlowFast, zsar), (c) a zsar tiny config (`zsar-tiny`, `zsar-tiny-64`) with seeded
random weights for CPU tests and the demo.

Activation: OpenAI's CLIP was trained with QuickGELU, and open_clip 3.3 builds `ViT-B-16` with
GELU even for the `openai` tag (it only warns). Here the weights decide: a tag whose open_clip
pretrained config says `quick_gelu`, or a checkpoint from an OpenAI-CLIP code base, builds the
QuickGELU model whatever name was given; `backbone.activation` (or a `-quickgelu` name) that
contradicts the weights is an error naming both. The activation is logged and is part of
`Backbone.name` (`ViT-B-16-quickgelu`), so caches never mix the two.

Tagged weights are read from the local cache first (`zsar.models.pretrained`); weights that cannot
be reached fail fast with a message that says how to fetch them or pass a local file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from zsar.errors import ConfigError, ZsarError
from zsar.models.checkpoint_layouts import Imported, fit, misfit_message, read_checkpoint
from zsar.models.pretrained import tag_activation, weights_file

_configs_added = False


def add_model_configs() -> None:
    """Register zsar's own model configs (`zsar-tiny`, ...) with open_clip, once."""
    global _configs_added
    if not _configs_added:
        import open_clip

        open_clip.add_model_config(Path(str(resources.files("zsar.resources") / "model_configs")))
        _configs_added = True


_add_zsar_configs = add_model_configs  # the name other modules import


@dataclass
class Backbone:
    """A CLIP model plus what the data and text sides need to use it."""

    model: torch.nn.Module
    tokenizer: object
    name: str  # the model built: the config name, `-quickgelu` when the weights asked for QuickGELU
    source: str  # "random:<seed>", a file path, or "<tag>"
    fingerprint: str  # sha256 of the weights, short
    image_size: int
    mean: tuple
    std: tuple
    activation: str = "gelu"
    extras: dict = field(default_factory=dict)  # checkpoint weights for the method (Method.load_extras)

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") else int(
            self.model.visual.output_dim
        )

    @property
    def identity(self) -> str:
        """What produced these weights: used in cache keys."""
        return f"{self.name}@{self.fingerprint}"


def weights_fingerprint(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous()
        h.update(str(t.dtype).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def image_size(name: str) -> int:
    """The input resolution of an open_clip model config (no weights built)."""
    import open_clip

    _add_zsar_configs()
    model_cfg = open_clip.get_model_config(name)
    if model_cfg is None:
        raise ConfigError(f"backbone.name: unknown backbone '{name}'")
    size = model_cfg["vision_cfg"]["image_size"]
    return size[0] if isinstance(size, (list, tuple)) else int(size)


def list_backbones() -> list[str]:
    import open_clip

    _add_zsar_configs()
    return open_clip.list_models()


def log(msg: str) -> None:
    """One line on stderr (rank 0 only when a process group runs)."""
    if not torch.distributed.is_available() or not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        sys.stderr.write(f"[zsar] {msg}\n")
        sys.stderr.flush()


def model_activation(name: str) -> str:
    """The activation open_clip's config of `name` builds."""
    import open_clip

    return "quick_gelu" if (open_clip.get_model_config(name) or {}).get("quick_gelu") else "gelu"


def resolve_activation(cfg, trained_with: str | None, weights: str) -> str:
    """The activation to build: what the weights were `trained_with` unless the user forces it
    (`backbone.activation`, or a `-quickgelu` model name); a contradiction is an error."""
    own = model_activation(cfg.name)
    if cfg.activation == "gelu" and own == "quick_gelu":
        raise ZsarError(f"backbone.activation=gelu, but backbone.name={cfg.name} builds quick_gelu; "
                        f"use the model name without -quickgelu")
    forced, by = (cfg.activation, f"backbone.activation={cfg.activation}") if cfg.activation else (
        ("quick_gelu", f"backbone.name={cfg.name}") if own == "quick_gelu" else (None, None))
    if forced and trained_with and forced != trained_with:
        fix = "drop backbone.activation" if cfg.activation else f"use backbone.name={cfg.name.removesuffix('-quickgelu')}"
        raise ZsarError(f"{by} builds {forced}, but {weights} were trained with {trained_with}; {fix}")
    return forced or trained_with or own


def _built_name(name: str, activation: str) -> str:
    import open_clip

    if activation == model_activation(name):
        return name
    quick = f"{name}-quickgelu"
    return quick if open_clip.get_model_config(quick) is not None else f"{name}+{activation}"


def _build(name: str, activation: str, device, seed: int = 0) -> torch.nn.Module:
    """The architecture with seeded random weights (filled from a weights source afterwards);
    on the meta device, only its shapes (nothing allocated)."""
    import open_clip

    quick = activation == "quick_gelu" and model_activation(name) != "quick_gelu"
    if str(device) == "meta":
        with torch.device("meta"):
            return open_clip.create_model(name, pretrained=None, device="meta", force_quick_gelu=quick)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        logging.disable(logging.WARNING)  # open_clip warns that no weights were loaded: intended here
        try:
            return open_clip.create_model(name, pretrained=None, device=device, force_quick_gelu=quick)
        finally:
            logging.disable(logging.NOTSET)


def _load_tag(cfg, device) -> tuple[torch.nn.Module, str]:
    import open_clip

    activation = resolve_activation(cfg, tag_activation(cfg.name, cfg.pretrained), f"the {cfg.pretrained} weights")
    path = weights_file(cfg.name, cfg.pretrained)
    model = _build(cfg.name, activation, device)
    try:
        open_clip.load_checkpoint(model, str(path))
    except Exception as e:
        raise ZsarError(f"could not load the cached {cfg.name}/{cfg.pretrained} weights {path}: {str(e).splitlines()[0]}") from None
    return model, activation


def _zsar_base(imported: Imported, device) -> Backbone:
    """The backbone a zsar checkpoint's run was configured with (its frozen weights), checked by
    fingerprint."""
    from zsar.config import BackboneConfig, from_dict

    base = create_backbone(from_dict(BackboneConfig, imported.base), device=device)
    if imported.base_fingerprint and base.fingerprint != imported.base_fingerprint:
        raise ZsarError(f"{imported.path} was trained on backbone weights {imported.base_fingerprint}, but its config "
                        f"rebuilds {base.fingerprint} ({base.source}); make those weights available as they were")
    return base


def _pretrained_state(cfg, imported: Imported, keys: list[str]) -> dict:
    """`backbone.pretrained` (a tag or a file), read as weights: the weights a checkpoint that
    lacks `keys` was fine-tuned from."""
    if not cfg.pretrained:
        raise ZsarError(f"{imported.path} ({imported.format}) does not hold {', '.join(keys[:3])} (the layout does not "
                        f"save it): set backbone.pretrained to the weights it was trained from (e.g. openai, or a file)")
    is_file = os.path.sep in cfg.pretrained or Path(cfg.pretrained).is_file()
    path = cfg.pretrained if is_file else weights_file(cfg.name, cfg.pretrained)
    return read_checkpoint(path).weights


def _load_file(cfg, path: str, device) -> tuple[torch.nn.Module, str, dict]:
    imported = read_checkpoint(path, cfg.checkpoint_format)
    base = _zsar_base(imported, device) if imported.base is not None else None
    trained_with = base.activation if base is not None else imported.activation
    activation = resolve_activation(cfg, trained_with, f"the weights of {path} ({imported.format})")
    shapes = _build(cfg.name, activation, "meta").state_dict()
    result = fit(imported, shapes)  # checked before anything is allocated
    if not result.ok:
        raise ZsarError(misfit_message(imported, result, cfg.name))
    state = dict(result.load)
    if result.from_base:
        base_state = base.model.state_dict() if base is not None else _pretrained_state(cfg, imported, result.from_base)
        bad = [k for k in result.from_base if k not in base_state or base_state[k].shape != shapes[k].shape]
        if bad:
            raise ZsarError(f"the base weights ({base.source if base is not None else cfg.pretrained}) of {path} lack {', '.join(bad[:3])} in the shape "
                            f"{cfg.name} needs; set backbone.pretrained to the weights it was trained from")
        state.update({k: base_state[k] for k in result.from_base})
        shown = ", ".join(result.from_base[:3]) + (" ..." if len(result.from_base) > 3 else "")
        log(f"{len(result.from_base)} weight(s) not in {path} ({imported.format}) come from the base weights: {shown}")
    model = _build(cfg.name, activation, device)
    model.load_state_dict(state, strict=True)
    return model, activation, result.extras


NO_BACKBONE = Backbone(model=None, tokenizer=None, name="none", source="none", fingerprint="none", image_size=0, mean=(), std=())


def create_backbone(cfg, device: str | torch.device = "cpu", towers: tuple[str, ...] = ("visual", "text")) -> Backbone:
    """Build the CLIP backbone described by a `BackboneConfig`. `towers` says which towers the
    method uses: without "visual" the image tower is dropped (skeleton methods with a CLIP text
    space); with no tower at all nothing is built."""
    import open_clip

    if not towers:
        return NO_BACKBONE
    _add_zsar_configs()
    name = cfg.name
    if open_clip.get_model_config(name) is None:
        raise ZsarError(f"unknown backbone '{name}'; see `python -c \"import open_clip; print(open_clip.list_models())\"` or use zsar-tiny")
    weights = cfg.checkpoint or (cfg.pretrained if cfg.pretrained and os.path.sep in cfg.pretrained else None)
    if weights is None and cfg.pretrained and Path(cfg.pretrained).is_file():
        weights = cfg.pretrained
    extras: dict = {}
    if weights is not None:
        model, activation, extras = _load_file(cfg, str(weights), device)
        source = str(weights)
    elif cfg.pretrained:
        model, activation = _load_tag(cfg, device)
        source = cfg.pretrained
    else:
        activation = resolve_activation(cfg, None, "random weights")
        model = _build(name, activation, device, seed=cfg.seed)
        source = f"random:{cfg.seed}"
    model.eval()
    built = _built_name(name, activation)
    log(f"backbone {built}: {activation} activation, weights {source}")
    pp = model.visual.preprocess_cfg
    size = pp["size"][0] if isinstance(pp["size"], (tuple, list)) else pp["size"]
    if "visual" not in towers:
        model.visual = None
    return Backbone(
        model=model,
        tokenizer=open_clip.get_tokenizer(name),
        name=built,
        source=source,
        fingerprint=weights_fingerprint(model),
        image_size=int(size),
        mean=tuple(pp["mean"]),
        std=tuple(pp["std"]),
        activation=activation,
        extras=extras,
    )


def save_weights(backbone: Backbone, path: str | Path) -> Path:
    """Save a backbone's weights as a file `create_backbone` loads back (backbone.checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(backbone.model.state_dict(), path)
    return path
