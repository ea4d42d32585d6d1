"""`skeleton_proj`: a frozen skeleton encoder projected linearly into a frozen text space.

The baseline skeleton zero-shot papers start from (SynSE, Gupta et al. ICIP 2021; SMIE, Zhou et al.
ACM MM 2023, compare against projection methods of this kind), in the form of DeViSE (Frome et al.,
"DeViSE: A Deep Visual-Semantic Embedding Model", NeurIPS 2013, Sec. 3): a visual feature is
mapped by one linear transformation into a fixed semantic space, and a sample is labelled with the
nearest class embedding, so any class with a text gets a score.
- Skeleton side: the pooled feature of an ST-GCN trained on the seen classes (`stgcn_pretrain`,
  loaded from `hparams.encoder_checkpoint`, frozen unless `freeze_encoder: false`).
- Text side: a frozen text space, all-MiniLM-L6-v2 (the sentence encoder SMIE and PURLS-era work
  use as a light option) or the CLIP text tower (`text_space: clip`, built from `backbone`).
- Score: cosine similarity between the projected skeleton feature and each class text embedding,
  times a logit scale; loss: cross-entropy over the seen classes' texts.

Our choices where DeViSE differs or is silent: cross-entropy over cosine similarities instead of
DeViSE's hinge rank loss (the form CLIP-era work uses); a learnable logit scale initialised at
1 / 0.1 and capped at 100; class texts are the class names (`text.use: descriptions` swaps in the
shipped one-sentence descriptions). GZSL uses the platform's calibrated stacking (`gzsl_gamma`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import torch
import torch.nn as nn
import torch.nn.functional as nnf

from zsar.models.skeleton_method import StageTwoSkeletonMethod
from zsar.models.stgcn import STGCNConfig
from zsar.registry import register_method


@dataclass
class SkeletonProjConfig:
    encoder_checkpoint: Optional[str] = None  # a stgcn_pretrain checkpoint directory (stage 1)
    freeze_encoder: bool = True
    encoder: STGCNConfig = field(default_factory=STGCNConfig)  # used when no checkpoint is given
    text_space: Literal["clip", "minilm"] = "minilm"
    temperature: float = 0.1  # initial; the logit scale is 1 / temperature
    learn_temperature: bool = True
    label_smoothing: float = 0.0


@register_method("skeleton_proj")
class SkeletonProj(StageTwoSkeletonMethod):
    Config = SkeletonProjConfig
    text_frozen = True
    presets = {
        "default": {"optim": {"epochs": 30, "lr": 1e-3, "weight_decay": 1e-4, "grad_clip": None},
                    "text": {"templates": "name", "use": "names"}},
        "demo_skeleton": {"optim": {"epochs": 15, "batch_size": 16, "lr": 2e-3, "eval_every": 5}},
    }

    def __init__(self, cfg: SkeletonProjConfig, backbone, exp):
        super().__init__(cfg, backbone, exp)
        self.proj = nn.Linear(self.encoder.out_dim, self.text_space.dim)

    def encode_skeleton(self, skeleton: torch.Tensor) -> torch.Tensor:
        return nnf.normalize(self.proj(self.encode_joints(skeleton).pooled.float()), dim=-1)

    def logits(self, batch, class_emb) -> torch.Tensor:
        return self.logit_scale() * self.encode_skeleton(batch["skeleton"]) @ class_emb.t()

    def training_step(self, batch, labels):
        logits = self.logits(batch, self.class_embeddings(labels))
        loss = nnf.cross_entropy(logits, batch["label"], label_smoothing=self.cfg.label_smoothing)
        return {"loss": loss, "ce": loss.detach(), "scale": self.logit_scale().detach()}
