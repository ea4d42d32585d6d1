"""`mgsa`: motion-guided semantic alignment with negative prompts.

"Motion-Guided Semantic Alignment with Negative Prompts for Zero-Shot Video Action Recognition"
(ICASSP 2026). No public code; what we have is the abstract, a machine-written review and excerpts
(`shared/papers/motion-guided-negative-prompts_icassp-2026_review-and-excerpts.txt`). The review's
simulated author reply is not a source for anything here.

From the paper (the sentence each part implements; tests/methods/test_mgsa_equations.py checks each):

- Sec. 2.1, "we first extract visual representations using a frozen CLIP visual encoder ... we
  introduce a lightweight Dual Adapter (DA), which is shared across both" branches: both CLIP
  towers stay frozen, adapters follow their transformer blocks and are shared between them
  (`adapter_sharing="shared"`).
- Abstract, "A Motion Separation Module (MSM) separates motion-sensitive and global-static
  features": MSM on the per-frame embeddings X [T, D] gives a static and a motion part.
- Abstract, "a Motion Aggregation Block (MAB) employs gated cross-attention to refine motion
  representation without re-coupling redundant information": motion tokens query a context by
  cross-attention, gated, added to the motion stream.
- Abstract, "aligning projected embeddings with positive textual prompts": projected video
  embedding, cross-entropy over the positive class embeddings.
- Abstract, "leveraging negative prompts to explicitly model 'non-class' semantics": a
  negative-prompt term in the loss and an optional negative term in the score.
- Sec. 3.1: Kinetics-400 is the training set; HMDB-51, UCF-101, SSv2 and K-600 (without the K400
  overlap) are zero-shot targets (the `zeroshot` protocol); base-to-novel on K400/HMDB-51 (tables).

Ours (the excerpts are silent), each with its reason:

- Adapters: bottleneck (down, GELU, zero-initialised up, residual) after every block
  (`adapter_layers`, `adapter_bottleneck`): the common lightweight adapter, identity at step 0.
- Unequal tower widths (ViT-B/16: text 512, vision 768): the text side uses the visual adapter of
  the same depth through a fixed seeded orthonormal projection P (x -> P^T adapter(P x)): the only
  way one adapter can be "shared" across widths without new trained weights; "separate" is the
  ablation.
- MSM default: one level of the temporal Haar lifting split (pair mean = static, difference =
  motion), as in the deep adaptive wavelet networks the paper cites; `learned_lifting`,
  `difference` and `off` (mean pooling) are alternatives to test that choice.
- Decorrelation loss (`lambda_sep`): mean squared cosine between each motion token and the video's
  frame-weighted static token -- one simple way to keep the parts apart.
- MAB: one attention layer, no feed-forward; gate tanh(g) with g starting at 0 (identity at step
  0); context = the frame tokens (`mab_context="frames"`, or "static"): the abstract does not say.
- Projections: static path identity-initialised, motion path zero-initialised, summed and
  L2-normalised, so step 0 is frozen CLIP's mean-pooled frame embedding.
- Positive prompts: the template ensemble over the class name (or descriptions, `text.use`).
- Negative prompts: `neg_templates` over the class's own name only, default "not {}." -- our guess
  (the excerpts do not say how negatives are built); using no other class's words keeps the
  zero-shot protocol clean. Loss term (`lambda_neg`): a two-way softmax over {pos_y, neg_y} at the
  CLIP logit scale, target pos_y (each video closer to its positive than to its own negative).
  Score: sim(v, pos_c) - `gamma_neg` x sim(v, neg_c) (default 0), so `class_embeddings` returns
  pos_c - gamma_neg x neg_c.
- Temperature: CLIP's frozen logit scale (no new scale to tune).
- Every Config value and every preset number (backbone ViT-B/16, 8 frames, AdamW, cosine schedule
  with warm-up, learning rates, epochs, batch sizes): the platform's defaults or our picks, none
  stated in the excerpts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn as nn
import torch.nn.functional as nnf

from zsar.config import F
from zsar.models.method import Method
from zsar.models.text import LabelSet, encode_text, pool_prompts
from zsar.registry import register_method

from zsar.methods.mgsa_modules import MotionAggregation, MotionSeparation, add_dual_adapters, decorrelation


@dataclass
class MGSAConfig:
    adapter_bottleneck: int = F(64, ge=1, help="Dual Adapter bottleneck width")
    adapter_layers: Optional[list[int]] = F(None, help="blocks (of each tower) that get an adapter; null: all")
    adapter_sharing: Literal["shared", "separate"] = F("shared", help="tie the visual and text adapters of the same depth, or not")
    msm: Literal["haar", "learned_lifting", "difference", "off"] = F("haar", help="Motion Separation Module; off: mean pooling")
    lambda_sep: float = F(0.01, ge=0.0, help="weight of the static/motion decorrelation loss")
    mab_blocks: int = F(1, ge=0, help="Motion Aggregation Blocks (0: off)")
    mab_context: Literal["frames", "static"] = F("frames", help="what the motion tokens attend to")
    mab_heads: Optional[int] = F(None, ge=1, help="MAB attention heads; default width // 64 (at least 1)")
    neg_templates: list[str] = F(factory=lambda: ["not {}."], help="negative prompt templates over the class's own name; the default 'not {}.' is our guess (the paper's excerpts do not give the construction)")
    lambda_neg: float = F(0.5, ge=0.0, help="weight of the positive-vs-own-negative term (0: negative prompts off)")
    gamma_neg: float = F(0.0, ge=0.0, help="inference score: sim(v, pos) - gamma_neg * sim(v, neg)")


_VIT_B16 = {"data": {"num_frames": 8, "sampler": "segment", "views": 1, "crops": 1},
            "text": {"templates": "video"}}


@register_method("mgsa")
class MGSA(Method):
    Config = MGSAConfig
    text_frozen = False  # the text tower carries adapters
    # The paper trains on K400 (Sec. 3.1); every value below is ours (backbone, frames, optimiser,
    # schedule, learning rates, epochs, warm-up, batch, bottleneck): the excerpts state none.
    presets = {
        "zeroshot": {**_VIT_B16, "optim": {"epochs": 10, "batch_size": 64, "lr": 1e-4, "warmup_epochs": 2, "weight_decay": 0.01}},
        "base2novel": {**_VIT_B16, "optim": {"epochs": 12, "batch_size": 32, "lr": 1e-4, "warmup_epochs": 2, "weight_decay": 0.01}},
        # Ours: the synthetic demo on CPU with the 32-pixel random-weight CLIP.
        "demo": {
            "backbone": {"name": "zsar-tiny", "pretrained": None},
            "data": {"num_frames": 8, "views": 1, "crops": 1},
            "text": {"templates": "shape"},
            "optim": {"epochs": 10, "batch_size": 16, "lr": 1e-2, "warmup_epochs": 1, "eval_every": 5},
            "hparams": {"adapter_bottleneck": 16},
        },
    }

    def __init__(self, cfg: MGSAConfig, backbone, exp):
        super().__init__(cfg, backbone, exp)
        self.freeze(self.clip)
        visual_blocks = self.clip.visual.transformer.resblocks
        text_blocks = self.clip.transformer.resblocks
        self.adapters = add_dual_adapters(visual_blocks, text_blocks, cfg.adapter_bottleneck, cfg.adapter_layers,
                                          cfg.adapter_sharing, seed=exp.backbone.seed)
        d = backbone.model.visual.output_dim
        self.msm = MotionSeparation(cfg.msm, d) if cfg.msm != "off" else None
        heads = cfg.mab_heads or max(1, d // 64)
        self.mab = nn.ModuleList(MotionAggregation(d, heads) for _ in range(cfg.mab_blocks if self.msm else 0))
        self.static_proj = nn.Linear(d, d)
        nn.init.eye_(self.static_proj.weight)
        nn.init.zeros_(self.static_proj.bias)
        self.motion_proj = nn.Linear(d, d) if self.msm else None
        if self.motion_proj is not None:
            nn.init.zeros_(self.motion_proj.weight)
            nn.init.zeros_(self.motion_proj.bias)

    # ------------------------------------------------------------------ video side
    def video_parts(self, video: torch.Tensor) -> dict:
        """Per-frame features through MSM, MAB and the projections: the embedding and its parts."""
        x = self.encode_frames(video).float()
        if self.msm is None:
            return {"embedding": nnf.normalize(self.static_proj(x.mean(1)), dim=-1)}
        static, motion, weights = self.msm(x)
        context = x if self.cfg.mab_context == "frames" else static
        for block in self.mab:
            motion = block(motion, context)
        s = (static * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)
        v = self.static_proj(s) + self.motion_proj(motion.mean(1))
        return {"embedding": nnf.normalize(v, dim=-1), "static": static, "motion": motion, "weights": weights}

    def encode_video(self, batch: dict) -> torch.Tensor:
        return self.video_parts(batch["video"])["embedding"]

    # ------------------------------------------------------------------ text side
    def negative_prompts(self, labels: LabelSet) -> list[list[str]]:
        """Each class's negative sentences, built from that class's own name only."""
        return [[t.format(name) for t in self.cfg.neg_templates] for name in labels.names]

    def _pooled(self, prompts: list[list[str]]) -> torch.Tensor:
        flat = [s for p in prompts for s in p]
        return pool_prompts(encode_text(self.clip, self.tokenizer, flat), [len(p) for p in prompts])

    def prompt_embeddings(self, labels: LabelSet) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(positive [C, D], negative [C, D] or None when no part of the run uses them)."""
        pos = self._pooled(self.prompts(labels))
        needs_neg = self.cfg.gamma_neg > 0 or (self.training and self.cfg.lambda_neg > 0)
        return pos, (self._pooled(self.negative_prompts(labels)) if needs_neg else None)

    def class_embeddings(self, labels: LabelSet) -> torch.Tensor:
        pos, neg = self.prompt_embeddings(labels)
        return pos if neg is None or self.cfg.gamma_neg == 0 else pos - self.cfg.gamma_neg * neg

    # ------------------------------------------------------------------ training
    def training_step(self, batch, labels):
        pos, neg = self.prompt_embeddings(labels)
        parts = self.video_parts(batch["video"])
        v, y, scale = parts["embedding"], batch["label"], self.logit_scale()
        ce = nnf.cross_entropy(scale * v @ pos.t(), y)
        out = {"ce": ce.detach()}
        loss = ce
        if neg is not None and self.cfg.lambda_neg > 0:
            pair = scale * torch.stack([(v * pos[y]).sum(-1), (v * neg[y]).sum(-1)], 1)
            neg_loss = nnf.cross_entropy(pair, torch.zeros_like(y))
            loss = loss + self.cfg.lambda_neg * neg_loss
            out["neg"] = neg_loss.detach()
        if self.msm is not None and self.cfg.lambda_sep > 0:
            sep = decorrelation(parts["static"], parts["motion"], parts["weights"])
            loss = loss + self.cfg.lambda_sep * sep
            out["sep"] = sep.detach()
        out["loss"] = loss
        return out

    @classmethod
    def cost_params(cls, exp) -> dict:
        from zsar.models.cost import cached_cost, prediction_cost

        return cached_cost(cls, exp, prediction_cost)
