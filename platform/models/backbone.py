"""CLIP backbones from open_clip: a small factory over declarative model configs.

`create_backbone(cfg)` accepts (a) an open_clip model name + pretrained tag (`ViT-B-16` +
`openai` in the paper presets), (b) a local weights file (`checkpoint`, or a path given as
`pretrained`), (c) a zsar tiny config (`zsar-tiny`, `zsar-tiny-64`) with seeded random weights for
CPU tests and the demo. Weights that cannot be reached fail fast with a message that says how to
pass a local file: we probe the weights host once with a short timeout instead of letting the hub
client retry for a minute.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

import torch

from zsar.errors import ConfigError, ZsarError

_configs_added = False


def _add_zsar_configs() -> None:
    global _configs_added
    if not _configs_added:
        import open_clip

        open_clip.add_model_config(Path(str(resources.files("zsar.resources") / "model_configs")))
        _configs_added = True


@dataclass
class Backbone:
    """A CLIP model plus what the data and text sides need to use it."""

    model: torch.nn.Module
    tokenizer: object
    name: str
    source: str  # "random:<seed>", a file path, or "<tag>"
    fingerprint: str  # sha256 of the weights, short
    image_size: int
    mean: tuple
    std: tuple

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


def _probe(url: str, timeout: float = 5.0) -> str | None:
    """None when `url`'s host answers on its port within `timeout`, else the reason."""
    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    if not host:
        return f"bad URL {url!r}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as e:
        return f"{host} unreachable ({e.strerror or e})"


def _weights_reachable(model_name: str, tag: str) -> str | None:
    """None if the tagged weights are cached or their host answers; else why not."""
    import open_clip

    pcfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not pcfg:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise ZsarError(
            f"backbone '{model_name}' has no pretrained tag '{tag}'; known tags: {', '.join(tags) or 'none'}"
            " (or pass a local weights file with --set backbone.checkpoint=PATH)"
        )
    hub = pcfg.get("hf_hub") or ""
    if hub:
        from huggingface_hub import constants, try_to_load_from_cache

        repo = hub.rstrip("/")
        for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            if isinstance(try_to_load_from_cache(repo, filename), str):
                return None
        if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("ZSAR_OFFLINE"):
            return "offline mode is set (HF_HUB_OFFLINE / ZSAR_OFFLINE)"
        return _probe(constants.ENDPOINT)
    url = pcfg.get("url") or ""
    if url:
        if os.environ.get("ZSAR_OFFLINE"):
            return "offline mode is set (ZSAR_OFFLINE)"
        return _probe(url)
    return "no download location is known for it"


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
    if weights is not None:
        if not Path(weights).is_file():
            raise ZsarError(f"backbone weights file not found: {weights}")
        try:
            model = open_clip.create_model(name, pretrained=str(weights), device=device)
        except Exception as e:  # a wrong file is a user error
            raise ZsarError(f"could not load {weights} into {name}: {str(e).splitlines()[0]}") from None
        source = str(weights)
    elif cfg.pretrained:
        reason = _weights_reachable(name, cfg.pretrained)
        if reason:
            raise ZsarError(
                f"pretrained weights {name}/{cfg.pretrained} are not cached and cannot be downloaded: {reason}; "
                f"pass a local file with --set backbone.checkpoint=PATH (or use --set backbone.name=zsar-tiny "
                f"backbone.pretrained=null for random weights)"
            )
        model = open_clip.create_model(name, pretrained=cfg.pretrained, device=device)
        source = cfg.pretrained
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            logging.disable(logging.WARNING)  # open_clip warns that no weights were loaded: intended here
            try:
                model = open_clip.create_model(name, pretrained=None, device=device)
            finally:
                logging.disable(logging.NOTSET)
        source = f"random:{cfg.seed}"
    model.eval()
    pp = model.visual.preprocess_cfg
    size = pp["size"][0] if isinstance(pp["size"], (tuple, list)) else pp["size"]
    if "visual" not in towers:
        model.visual = None
    return Backbone(
        model=model,
        tokenizer=open_clip.get_tokenizer(name),
        name=name,
        source=source,
        fingerprint=weights_fingerprint(model),
        image_size=int(size),
        mean=tuple(pp["mean"]),
        std=tuple(pp["std"]),
    )


def save_weights(backbone: Backbone, path: str | Path) -> Path:
    """Save a backbone's weights as a file `create_backbone` loads back (backbone.checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(backbone.model.state_dict(), path)
    return path
