"""The plug-in shape every method implements (DESIGN.md, "A method is a plug-in").

A method is an `nn.Module` registered by name with `@register_method("name")`. The training loop
calls only `training_step`, `class_embeddings` and `logits`; `forward` routes to
`training_step` so that DDP's gradient hooks see the training computation.

Batches are dicts: `video` float [B, T, 3, H, W] (CLIP-normalised), `label` long [B] (index into
the label set passed alongside). Evaluation views are flattened into the batch by the loop, so a
method only ever sees single-view clips. The decoded array arrives under `input_key` and
`to_input` turns it into the model's tensor; a method of another modality (skeletons) overrides
both.

Hooks with defaults that most methods leave alone: `backbone_towers(cfg)` names the CLIP towers the
method uses (skeleton methods need none, or only the text tower); `bind_train_labels` is called
once, before weights are restored, with the training label set (a classifier head sizes itself
there); `closed_set` methods are scored only on parts whose classes they were trained on;
`pretrained_checkpoints(cfg)` lists the checkpoints a method loads weights from (the runner
refuses one trained on a class the protocol holds out); `load_extras` takes the weights of an
imported checkpoint (`backbone.checkpoint`) that lie outside the CLIP model (adapters, heads), by
default those whose name and shape match the method's own, right after construction.

Frozen inputs: `frozen_inputs(cfg)` declares tensors that frozen weights compute from the decoded
clip (`zsar.data.features.FrozenInput`); `compute_frozen(name, x)` computes one, and the method
reads it with `frozen_input(batch, name)`, which takes it from the batch when the feature cache
delivered it and computes it inline otherwise: the method's code is the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as nnf

from zsar.data.views import normalize_clips
from zsar.home import cache_dir
from zsar.models.backbone import Backbone, log
from zsar.models.text import ClassEmbeddingCache, LabelSet, class_prompts, encode_text


@dataclass
class NoConfig:
    """A method without hyperparameters of its own."""


def _group(keys: list[str]) -> str:
    """'projector_v.* (4), head (1)': checkpoint keys by module, block numbers folded."""
    counts: dict[str, int] = {}
    for key in keys:
        parts = ["*" if p.isdigit() else p for p in key.split(".")]
        module = ".".join(parts[:-1]) or parts[0]
        counts[module] = counts.get(module, 0) + 1
    return ", ".join(f"{m} ({n})" for m, n in counts.items())


class _OffersExtras(type(nn.Module)):
    """Once a method is built, the checkpoint weights its backbone had no place for are offered to
    it (`Method.load_extras`), wherever the method is constructed (training loop, feature cache,
    report)."""

    def __call__(cls, *args, **kwargs):
        method = super().__call__(*args, **kwargs)
        method.offer_extras()
        return method


class Method(nn.Module, metaclass=_OffersExtras):
    name = ""
    modality = "video"
    Config = NoConfig
    presets: dict = {}
    trains = True  # False: evaluation only (no optimiser, no epochs)
    text_frozen = True  # True: class embeddings may be cached across evaluations
    input_key = "video"  # the decoded array the data pipeline delivers: [B, views, ...]
    closed_set = False  # True: scores only the classes it was trained on (a classifier head)

    @classmethod
    def backbone_towers(cls, cfg) -> tuple[str, ...]:
        """The CLIP towers this method needs: ("visual", "text"), ("text",) or ()."""
        return ("visual", "text")

    @classmethod
    def frozen_inputs(cls, cfg) -> tuple:
        """The frozen tensors this method reads (`FrozenInput`s), which the feature cache may
        deliver in place of decoded clips; none by default."""
        return ()

    @classmethod
    def pretrained_checkpoints(cls, cfg) -> list[str]:
        """Checkpoint directories whose weights this method loads (stage-1 encoders)."""
        return []

    def bind_train_labels(self, labels: LabelSet | None) -> None:
        """Called once after construction with the training label set (None: no training part)."""

    def __init__(self, cfg, backbone: Backbone, exp):
        super().__init__()
        self.cfg = cfg
        self.exp = exp
        self.clip = backbone.model
        self.tokenizer = backbone.tokenizer
        self.backbone_info = {"name": backbone.name, "source": backbone.source, "fingerprint": backbone.fingerprint}
        self.pending_extras = dict(backbone.extras)
        self.pixel_mean, self.pixel_std = backbone.mean, backbone.std
        self._text_cache = (
            ClassEmbeddingCache(f"{backbone.identity}/text", self._encode_sentences, cache_dir("text"))
            if self.text_frozen
            else None
        )

    # ------------------------------------------------------------------ checkpoint extras
    def load_extras(self, extras: dict) -> list[str]:
        """Load checkpoint weights the backbone had no place for (adapters, heads, prompts; named as
        in the file, `clip.<key>` when inside a tower) into this method's weights of the same name
        and shape; returns the names not taken. A method overrides this to map a published
        layout's names onto its own modules."""
        own = self.state_dict()
        take = {k: v for k, v in extras.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
        if take:
            self.load_state_dict(take, strict=False)
        return sorted(set(extras) - set(take))

    def offer_extras(self) -> None:
        extras = self.__dict__.pop("pending_extras", None)
        if not extras:
            return
        left = self.load_extras(extras)
        taken = len(extras) - len(left)
        line = f"{self.name or type(self).__name__}: {taken} of {len(extras)} checkpoint weight(s) outside the CLIP model loaded into the method"
        log(line + (f"; not used: {_group(left)}" if left else ""))

    # ------------------------------------------------------------------ text side
    def prompts(self, labels: LabelSet) -> list[list[str]]:
        return class_prompts(labels, self.exp.text.templates, self.exp.text.use)

    def _encode_sentences(self, sentences: list[str]) -> torch.Tensor:
        return encode_text(self.clip, self.tokenizer, sentences)

    def class_embeddings(self, labels: LabelSet) -> torch.Tensor:
        """[C, D] normalised class embeddings for any label set."""
        prompts = self.prompts(labels)
        device = self.device
        if self._text_cache is not None:
            return self._text_cache(prompts).to(device)
        counts = [len(p) for p in prompts]
        flat = [s for p in prompts for s in p]
        emb = self._encode_sentences(flat)
        parts = torch.split(emb, counts)
        return nnf.normalize(torch.stack([p.mean(0) for p in parts]), dim=-1)

    # ------------------------------------------------------------------ video side
    def to_input(self, array, device) -> torch.Tensor:
        """Decoded uint8 clips [B, V, T, H, W, 3] -> CLIP-normalised float [B, V, T, 3, H, W]."""
        return normalize_clips(array, self.pixel_mean, self.pixel_std, device)

    def batch_inputs(self, batch: dict, device) -> dict[str, torch.Tensor]:
        """A pipeline batch -> the model's inputs, each [B, V, ...]: the cached frozen tensors
        when the batch carries them, else the decoded array through `to_input`."""
        cached = {f.name: torch.from_numpy(np.ascontiguousarray(batch[f.name])).to(device).float()
                  for f in self.frozen_inputs(self.cfg) if f.name in batch}
        return cached or {self.input_key: self.to_input(batch[self.input_key], device)}

    def compute_frozen(self, name: str, inputs: torch.Tensor) -> torch.Tensor:
        """The frozen tensor `name` of single-view inputs [B, ...] (see `frozen_inputs`)."""
        raise NotImplementedError(f"method '{self.name}' declares no frozen input '{name}'")

    def frozen_input(self, batch: dict, name: str) -> torch.Tensor:
        """The frozen tensor `name` for this batch: from the cache when present, else computed."""
        if name in batch:
            return batch[name]
        with torch.no_grad():
            return self.compute_frozen(name, batch[self.input_key])

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] -> [B, T, D] CLIP image embeddings of every frame."""
        b, t = video.shape[:2]
        feats = self.clip.encode_image(video.flatten(0, 1))
        return feats.view(b, t, -1)

    def encode_video(self, batch: dict) -> torch.Tensor:
        """[B, D] normalised video embedding: mean of frame embeddings by default."""
        return nnf.normalize(self.encode_frames(batch["video"]).float().mean(1), dim=-1)

    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp().clamp(max=100)

    def logits(self, batch: dict, class_emb: torch.Tensor) -> torch.Tensor:
        return self.logit_scale() * self.encode_video(batch) @ class_emb.t()

    def training_step(self, batch: dict, labels: LabelSet) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"method '{self.name}' does not train")

    def forward(self, batch: dict, labels: LabelSet) -> dict[str, torch.Tensor]:
        return self.training_step(batch, labels)

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def freeze(self, module: nn.Module) -> None:
        for p in module.parameters():
            p.requires_grad_(False)

    def checkpoint_state(self) -> dict:
        """What a checkpoint must hold: everything except frozen backbone weights, which are
        rebuilt from the backbone source (and checked by fingerprint when loading)."""
        trainable = {n for n, p in self.named_parameters() if p.requires_grad}
        clip = self.clip if isinstance(self.clip, nn.Module) else nn.Module()
        frozen_clip = {f"clip.{n}" for n, p in clip.named_parameters() if not p.requires_grad}
        frozen_clip |= {f"clip.{n}" for n, _ in clip.named_buffers()}
        state = self.state_dict()
        return {k: v for k, v in state.items() if k in trainable or k not in frozen_clip}

    def load_checkpoint_state(self, state: dict) -> None:
        missing, unexpected = self.load_state_dict(state, strict=False)
        frozen = set(self.state_dict()) - set(self.checkpoint_state())
        bad_missing = [k for k in missing if k not in frozen]
        if bad_missing or unexpected:
            raise RuntimeError(f"checkpoint does not fit method '{self.name}': missing {bad_missing[:5]}, unexpected {unexpected[:5]}")

    @classmethod
    def cost_params(cls, exp) -> dict:
        """Cost figures of this method under config `exp` (e.g. tunable parameters, multiply-
        accumulates per clip) that a run logs as MLflow params when it starts; none by default."""
        return {}

    def param_count(self) -> dict[str, int]:
        return {
            "params_total": sum(p.numel() for p in self.parameters()),
            "params_tunable": sum(p.numel() for p in self.parameters() if p.requires_grad),
        }
