"""The field's checkpoint layouts, mapped onto the open_clip CLIP model's keys.

OpenAI's CLIP code names its weights as open_clip does (`visual.conv1.weight`,
`visual.transformer.resblocks.N.attn.in_proj_weight`, `token_embedding.weight`,
`positional_embedding`, `transformer.resblocks.N...`, `ln_final`, `text_projection`,
`logit_scale`), so every layout below is that key set behind some wrapping. Layouts, detected from
the keys (or forced with `backbone.checkpoint_format`):

- `open_clip`: the model's own state dict (optionally under `state_dict`, keys optionally
  `module.`-prefixed by DDP), e.g. `zsar.models.backbone.save_weights`.
- `openai`: OpenAI's released file, a TorchScript archive (or its state dict); its extra entries
  `input_resolution`, `context_length`, `vocab_size` are metadata.
- `vificlip`: ViFi-CLIP's `{'model': ...}` (DDP-wrapped, `module.`): `image_encoder.*` is CLIP's
  visual tower; `text_encoder.{transformer, positional_embedding, ln_final, text_projection}` and
  `logit_scale` the rest. It does not save `token_embedding` (its prompt learner embeds the class
  names once, from the weights it started from), so that key comes from `backbone.pretrained`;
  the prompt learner's per-class embeddings are dropped, learnt prompts (`ctx`, VPT) are extras.
- `pyslowfast`: PySlowFast's `{'model_state': ...}` (FROSTER, Open-VCLIP, SC-CLIP): `model.` +
  OpenAI's keys; `raw_model.*` (the frozen copy of the original CLIP kept for distillation) is
  dropped; heads, projectors, prompts and adapters are extras.
- `zsar`: a zsar run checkpoint (its folder, or its `state.pt`): `clip.*` are the backbone weights
  the run trained; the frozen ones come from the backbone in the run's `config.yaml` (checked by
  fingerprint); the method's own weights are extras.

Extras are offered to the method, which takes those it has (`Method.load_extras`). Code bases built
on OpenAI's CLIP use QuickGELU, so `openai`, `vificlip` and `pyslowfast` files say `quick_gelu`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from zsar.errors import ZsarError
from zsar.models.checkpoint_io import load_weights_object

FORMATS = ("open_clip", "openai", "vificlip", "pyslowfast", "zsar")
OPENAI_META = ("input_resolution", "context_length", "vocab_size")
VIFI_TEXT = {"text_encoder.transformer.": "transformer.", "text_encoder.ln_final.": "ln_final.",
             "text_encoder.positional_embedding": "positional_embedding", "text_encoder.text_projection": "text_projection"}
VIFI_CLASS_SPECIFIC = ("prompt_learner.complete_text_embeddings", "prompt_learner.token_prefix", "prompt_learner.token_suffix")
ZSAR_STATE, ZSAR_CONFIG = "state.pt", "config.yaml"


@dataclass
class Imported:
    """A checkpoint read and renamed: `weights` in open_clip's names, what the layout cannot hold."""

    path: str
    format: str
    weights: dict
    extras: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)
    from_base: frozenset = frozenset()  # open_clip keys the layout does not save
    base_fills_rest: bool = False  # zsar: every key it lacks is a frozen one, from its base backbone
    activation: str | None = None
    base: dict | None = None  # zsar: the run's backbone config
    base_fingerprint: str | None = None
    method: str | None = None
    meta: dict = field(default_factory=dict)


def _tensors(d) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, torch.Tensor)} if isinstance(d, dict) else {}


def _unwrap(state: dict) -> dict:
    """Drop DDP's `module.` prefix when every key has it."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _looks_like_clip(keys) -> bool:
    return any(k.startswith(("visual.", "transformer.resblocks.")) or k == "token_embedding.weight" for k in keys)


def detect(obj) -> str | None:
    """The layout of a loaded checkpoint object, or None."""
    if isinstance(obj, torch.jit.ScriptModule):
        return "openai"
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("model_state"), dict):
        return "pyslowfast"
    if isinstance(obj.get("model"), dict) and "backbone_fingerprint" in obj:
        return "zsar"
    if isinstance(obj.get("model"), dict):
        keys = _unwrap(_tensors(obj["model"]))
        if any(k.startswith("image_encoder.") for k in keys) and any(k.startswith("text_encoder.") for k in keys):
            return "vificlip"
    state = _unwrap(_tensors(obj.get("state_dict", obj)))
    if any(k in state for k in OPENAI_META) and _looks_like_clip(state):
        return "openai"
    if _looks_like_clip(state):
        return "open_clip"
    return None


def _describe(obj) -> str:
    if isinstance(obj, dict):
        keys = list(obj)
        return f"top-level keys: {', '.join(map(str, keys[:6]))}{', ...' if len(keys) > 6 else ''}"
    return f"a {type(obj).__name__}"


def _need(obj, key: str, fmt: str, path) -> dict:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), dict):
        raise ZsarError(f"{path} is not a {fmt} checkpoint: it has no '{key}' entry ({_describe(obj)})")
    return _unwrap(_tensors(obj[key]))


def _open_clip(obj, path) -> Imported:
    if not isinstance(obj, dict):
        raise ZsarError(f"{path} is not an open_clip state dict ({_describe(obj)})")
    return Imported(str(path), "open_clip", _unwrap(_tensors(obj.get("state_dict", obj))))


def _openai(obj, path) -> Imported:
    state = dict(obj.state_dict()) if isinstance(obj, torch.jit.ScriptModule) else _unwrap(_tensors(obj))
    meta = {k: int(state.pop(k)) for k in OPENAI_META if k in state}
    return Imported(str(path), "openai", state, meta=meta, activation="quick_gelu")


def _vificlip(obj, path) -> Imported:
    out = Imported(str(path), "vificlip", {}, from_base=frozenset({"token_embedding.weight"}), activation="quick_gelu")
    for k, v in _need(obj, "model", "vificlip", path).items():
        text = next((p for p in VIFI_TEXT if k.startswith(p)), None)
        if k.startswith("image_encoder."):
            out.weights["visual." + k[len("image_encoder."):]] = v
        elif text is not None:
            out.weights[VIFI_TEXT[text] + k[len(text):]] = v
        elif k == "logit_scale":
            out.weights[k] = v
        elif k.startswith(VIFI_CLASS_SPECIFIC):
            out.dropped.append(k)
        else:
            out.extras[k] = v
    return out


def _pyslowfast(obj, path) -> Imported:
    out = Imported(str(path), "pyslowfast", {}, activation="quick_gelu")
    for k, v in _need(obj, "model_state", "pyslowfast", path).items():
        if k.startswith("model."):
            out.weights[k[len("model."):]] = v
        elif k.startswith("raw_model."):
            out.dropped.append(k)
        else:
            out.extras[k] = v
    return out


def _zsar(obj, path) -> Imported:
    import yaml

    state = _need(obj, "model", "zsar", path)
    config = Path(path).parent / ZSAR_CONFIG
    if not config.is_file():
        raise ZsarError(f"{path}: a zsar checkpoint needs its {ZSAR_CONFIG} alongside (the backbone it was trained on)")
    base = (yaml.safe_load(config.read_text()) or {}).get("backbone") or {}
    out = Imported(str(path), "zsar", {}, base_fills_rest=True, base=base,
                   base_fingerprint=obj.get("backbone_fingerprint"), method=obj.get("method"))
    for k, v in state.items():
        (out.weights if k.startswith("clip.") else out.extras)[k[len("clip."):] if k.startswith("clip.") else k] = v
    return out


READERS = {"open_clip": _open_clip, "openai": _openai, "vificlip": _vificlip, "pyslowfast": _pyslowfast, "zsar": _zsar}


def read_checkpoint(path: str | Path, fmt: str = "auto") -> Imported:
    """Read `path` (a file, or a zsar checkpoint folder) and rename its weights (module docstring)."""
    path = Path(path)
    if path.is_dir():
        if not (path / ZSAR_STATE).is_file():
            raise ZsarError(f"{path} is a folder without {ZSAR_STATE}: not a zsar checkpoint (pass a weights file)")
        path = path / ZSAR_STATE
    obj = load_weights_object(path)
    found = detect(obj) if fmt == "auto" else fmt
    if found is None:
        raise ZsarError(f"{path}: unknown checkpoint layout ({_describe(obj)}); force one with "
                        f"--set backbone.checkpoint_format={'|'.join(FORMATS)}")
    if found not in READERS:
        raise ZsarError(f"backbone.checkpoint_format={fmt}: one of auto, {', '.join(FORMATS)}")
    return READERS[found](obj, path)


# ---------------------------------------------------------------------------- fitting onto a model
def _shape_key(key: str) -> str:
    return re.sub(r"\.\d+\.", ".#.", key)


@dataclass
class Fit:
    load: dict  # open_clip key -> tensor, reshaped where only the rank differs (logit_scale)
    extras: dict  # weights the model has no place for, offered to the method
    from_base: list  # keys the model needs that must come from the base weights
    missing: list  # keys the model needs that neither the file nor the layout's base provides
    unexpected: list  # keys shaped like the model's own that it does not have (another architecture)
    mismatched: list  # (key, file shape, model shape)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)


def fit(imported: Imported, model_state: dict) -> Fit:
    """Which of the file's weights the model takes, and what is missing or does not fit."""
    layout = {_shape_key(k) for k in model_state}
    out = Fit({}, {**imported.extras}, [], [], [], [])
    for key, value in imported.weights.items():
        if key in model_state:
            target = model_state[key]
            if value.shape != target.shape and value.numel() == target.numel() and value.dim() != target.dim():
                value = value.reshape(target.shape)
            if value.shape != target.shape:
                out.mismatched.append((key, tuple(value.shape), tuple(target.shape)))
            else:
                out.load[key] = value
        elif _shape_key(key) in layout:
            out.unexpected.append(key)
        else:
            out.extras["clip." + key] = value  # a module the method adds inside a tower (adapter, prompt)
    for key in model_state:
        if key not in imported.weights:
            (out.from_base if imported.base_fills_rest or key in imported.from_base else out.missing).append(key)
    return out


def misfit_message(imported: Imported, result: Fit, model_name: str) -> str:
    def few(keys):
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    parts = []
    if result.missing:
        parts.append(f"missing {few(result.missing)}")
    if result.unexpected:
        parts.append(f"unexpected {few(result.unexpected)}")
    if result.mismatched:
        parts.append("shapes differ: " + few([f"{k} {list(a)} vs {list(b)}" for k, a, b in result.mismatched]))
    fits = fitting_models(imported.weights, imported.activation)
    hint = f"; it fits {', '.join(fits[:3])}" if fits and model_name not in fits else ""
    return f"{imported.path} ({imported.format}) does not fit {model_name}: {'; '.join(parts)}{hint}"


def _count_blocks(weights: dict, prefix: str) -> int:
    found = {k[len(prefix):].split(".")[0] for k in weights if k.startswith(prefix)}
    return len([n for n in found if n.isdigit()])


def architecture(weights: dict) -> dict:
    """The ViT CLIP architecture the weights describe (what the shapes say; {} if not a ViT CLIP)."""
    try:
        conv, vis_pos = weights["visual.conv1.weight"], weights["visual.positional_embedding"]
        grid = round((vis_pos.shape[0] - 1) ** 0.5)
        arch = {"vision.width": conv.shape[0], "vision.patch_size": conv.shape[-1], "vision.image_size": conv.shape[-1] * grid,
                "vision.layers": _count_blocks(weights, "visual.transformer.resblocks."),
                "text.width": weights["ln_final.weight"].shape[0], "text.context_length": weights["positional_embedding"].shape[0],
                "text.layers": _count_blocks(weights, "transformer.resblocks."), "embed_dim": weights["text_projection"].shape[1]}
    except KeyError:
        return {}
    if "token_embedding.weight" in weights:
        arch["text.vocab_size"] = weights["token_embedding.weight"].shape[0]
    return arch


def _config_architecture(cfg: dict) -> dict:
    v, t = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    size = v.get("image_size")
    return {"vision.width": v.get("width"), "vision.patch_size": v.get("patch_size"),
            "vision.image_size": size[0] if isinstance(size, (list, tuple)) else size, "vision.layers": v.get("layers"),
            "text.width": t.get("width"), "text.context_length": t.get("context_length", 77), "text.layers": t.get("layers"),
            "embed_dim": cfg.get("embed_dim"), "text.vocab_size": t.get("vocab_size", 49408)}


def fitting_models(weights: dict, activation: str | None = None) -> list[str]:
    """open_clip model names whose architecture the weights fill; with a known `activation`, the
    names that build it by themselves come first."""
    import open_clip

    arch = architecture(weights)
    if not arch:
        return []
    names = []
    for name in open_clip.list_models():
        cfg = open_clip.get_model_config(name) or {}
        if "timm_model_name" in cfg.get("vision_cfg", {}) or "hf_model_name" in cfg.get("text_cfg", {}):
            continue
        have = _config_architecture(cfg)
        if all(have.get(k) == v for k, v in arch.items()):
            names.append(name)
    if activation:
        names.sort(key=lambda n: bool((open_clip.get_model_config(n) or {}).get("quick_gelu")) != (activation == "quick_gelu"))
    return names


def _meta_model(name: str, activation: str | None):
    import logging

    import open_clip

    logging.disable(logging.WARNING)  # open_clip warns that no weights were loaded: intended here
    try:
        with torch.device("meta"):  # shapes only: nothing allocated
            return open_clip.create_model(name, pretrained=None, device="meta", force_quick_gelu=activation == "quick_gelu")
    finally:
        logging.disable(logging.NOTSET)


def _with_activation(name: str, activation: str | None) -> str:
    import open_clip

    own = "quick_gelu" if (open_clip.get_model_config(name) or {}).get("quick_gelu") else "gelu"
    return name if activation in (None, own) else f"{name} (built with {activation})"


def inspect_checkpoint(path: str | Path, fmt: str = "auto") -> list[tuple[str, str]]:
    """What `zsar weights inspect` prints: (field, value) lines."""
    imported = read_checkpoint(path, fmt)
    fits = [imported.base["name"]] if (imported.base or {}).get("name") else fitting_models(imported.weights, imported.activation)
    trained = {"quick_gelu": "quick_gelu (code bases built on OpenAI's CLIP train with QuickGELU)",
               None: "from the run's backbone" if imported.base is not None else "the model config's (the layout does not say)"}
    lines = [("file", str(imported.path)), ("format", imported.format),
             ("fits", ", ".join(_with_activation(n, imported.activation) for n in fits) if fits
              else "no open_clip model config (not a ViT CLIP of a known shape)"),
             ("activation", trained.get(imported.activation, imported.activation))]
    if imported.meta:
        lines.append(("metadata", ", ".join(f"{k}={v}" for k, v in imported.meta.items())))
    extras, dropped = dict(imported.extras), list(imported.dropped)
    if fits:
        result = fit(imported, _meta_model(fits[0], imported.activation).state_dict())
        extras = result.extras
        lines.append(("weights", f"{len(result.load)} of the {len(result.load) + len(result.from_base) + len(result.missing)} "
                                 f"weights of {fits[0]}"))
        if result.from_base:
            source = "the run's backbone (config.yaml)" if imported.base_fills_rest else "backbone.pretrained"
            shown = ", ".join(result.from_base[:4]) + (f" and {len(result.from_base) - 4} more" if len(result.from_base) > 4 else "")
            lines.append((f"from {source}", shown))
        if not result.ok:
            lines.append(("does not fit", misfit_message(imported, result, fits[0])))
    if extras:
        lines.append(("extras", f"{len(extras)} weight(s) a method may take, else dropped: {', '.join(sorted(extras)[:6])}"
                                f"{' ...' if len(extras) > 6 else ''}"))
    if dropped:
        lines.append(("drops", ", ".join(sorted(dropped)[:6]) + (f" and {len(dropped) - 6} more" if len(dropped) > 6 else "")))
    return lines
