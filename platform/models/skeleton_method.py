"""The base of skeleton methods: decoded skeletons in, an ST-GCN encoder, a frozen text space.

Batches carry `skeleton` float [B, T, M, 25, 3] (evaluation views are flattened into the batch by
the loop, as for videos). A method whose Config has `text_space` ("clip" or "minilm") gets
`self.text_space` and cached class embeddings from it; only "clip" makes the platform build a
(text-only) CLIP backbone. `load_encoder` reads the ST-GCN of a stage-1 checkpoint
(`stgcn_pretrain`, or any checkpoint whose state holds `encoder.*`). `StageTwoSkeletonMethod` is
the base of methods trained on top of such an encoder (`skeleton_proj`, `scople`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from zsar.config import from_dict
from zsar.errors import ConfigError, ZsarError
from zsar.home import cache_dir
from zsar.models.method import Method
from zsar.models.stgcn import STGCN, STGCNConfig, STGCNOutput
from zsar.models.text import ClassEmbeddingCache
from zsar.models.text_space import text_space


class SkeletonMethod(Method):
    modality = "skeleton"
    input_key = "skeleton"

    @classmethod
    def backbone_towers(cls, cfg) -> tuple[str, ...]:
        return ("text",) if getattr(cfg, "text_space", None) == "clip" else ()

    def __init__(self, cfg, backbone, exp):
        super().__init__(cfg, backbone, exp)
        self.text_space = None
        if getattr(cfg, "text_space", None):
            if self.clip is not None:
                self.freeze(self.clip)
            self.text_space = text_space(cfg.text_space, backbone)
            self._text_cache = ClassEmbeddingCache(self.text_space.identity, self.text_space.encode, cache_dir("text"))

    def _encode_sentences(self, sentences: list[str]) -> torch.Tensor:
        if self.text_space is None:
            raise NotImplementedError(f"method '{self.name}' has no text space")
        return self.text_space.encode(sentences).to(self.device)

    def to_input(self, array, device) -> torch.Tensor:
        """Decoded float32 [B, V, T, M, 25, 3] -> a tensor on `device`."""
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device, non_blocking=True)


def load_encoder(path: str) -> tuple[STGCNConfig, dict]:
    """(the ST-GCN config, its weights) from a checkpoint directory of a skeleton method."""
    from zsar.models import checkpoint_files as ckpt

    if not (Path(path) / ckpt.STATE).is_file():
        raise ZsarError(f"not a zsar checkpoint (no {ckpt.STATE}): {path}")
    hparams = (ckpt.read_config(path) or {}).get("hparams") or {}
    if "encoder" not in hparams:
        raise ZsarError(f"checkpoint {path} has no ST-GCN encoder (hparams.encoder); train one with --method stgcn_pretrain")
    state = ckpt.load_state(path)["model"]
    weights = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    if not weights:
        raise ZsarError(f"checkpoint {path} holds no encoder weights")
    return from_dict(STGCNConfig, hparams["encoder"], "hparams.encoder"), weights


class StageTwoSkeletonMethod(SkeletonMethod):
    """Stage two: the ST-GCN of a stage-one checkpoint (`encoder_checkpoint`), frozen unless
    `freeze_encoder` is false (then a fresh `encoder` may be trained from scratch), and a learnable
    logit scale 1 / `temperature`, capped at 100. The Config needs those fields."""

    def __init__(self, cfg, backbone, exp):
        super().__init__(cfg, backbone, exp)
        self.pretrained_checkpoints(cfg)
        if cfg.encoder_checkpoint:
            enc_cfg, weights = load_encoder(cfg.encoder_checkpoint)
            self.encoder = STGCN(enc_cfg)
            self.encoder.load_state_dict(weights)
        else:
            self.encoder = STGCN(cfg.encoder)
        if cfg.freeze_encoder:
            self.freeze(self.encoder)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / cfg.temperature)), requires_grad=cfg.learn_temperature)

    @classmethod
    def pretrained_checkpoints(cls, cfg) -> list[str]:
        if cfg.encoder_checkpoint is None and cfg.freeze_encoder:
            raise ConfigError(f"{cls.name}: a frozen encoder needs hparams.encoder_checkpoint=DIR (a checkpoint of "
                              "`zsar train --method stgcn_pretrain` under the same split), or hparams.freeze_encoder=false")
        return [cfg.encoder_checkpoint] if cfg.encoder_checkpoint else []

    def train(self, mode: bool = True):
        super().train(mode)
        if self.cfg.freeze_encoder:
            self.encoder.eval()  # frozen: batch-norm statistics and dropout stay as trained
        return self

    def encode_joints(self, skeleton: torch.Tensor) -> STGCNOutput:
        """The encoder's output (per-joint features, pooled feature, valid-frame mask), without
        gradients when the encoder is frozen."""
        if self.cfg.freeze_encoder:
            with torch.no_grad():
                return self.encoder(skeleton)
        return self.encoder(skeleton)

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100)
