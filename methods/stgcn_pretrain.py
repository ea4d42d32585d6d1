"""`stgcn_pretrain`: ST-GCN trained by classification on the seen classes (stage 1 of skeleton ZSL).

Yan, Xiong and Lin, "Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action
Recognition" (AAAI 2018); the encoder and its mapping to the paper are in `zsar.models.stgcn`.
- Sec. 4.2: the pooled 256-d feature feeds a SoftMax classifier trained with cross-entropy; here
  over the training part's classes only, so under `zsl`/`gzsl` the encoder never sees an unseen
  class. The checkpoint records those classes (`trained_classes.json`); `skeleton_proj` and later
  skeleton methods load its encoder frozen or fine-tune it (`hparams.encoder_checkpoint`).
- NTU input as in the authors' release: 300 frames, zero-padded (`data.skeleton.temporal: pad`),
  two bodies; 80 epochs, batch 64, weight decay 1e-4 (presets `ntu60`, `ntu120`, `pkummd`).

Our choices: the platform's optimiser is AdamW with a cosine schedule (the paper: SGD, lr 0.1 divided
by 10 at fixed epochs), so the presets use lr 1e-3; the classifier is a closed-set head, so the
platform scores it only on parts made of its training classes (`seen_top1` under zsl/gzsl).
The demo preset uses a small ST-GCN (3 units) so that it trains in a minute on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as nnf

from zsar.errors import ZsarError
from zsar.models.skeleton_method import SkeletonMethod
from zsar.models.stgcn import STGCN, STGCNConfig
from zsar.registry import register_method

TINY_STGCN = {"channels": [32, 32, 64], "strides": [1, 2, 2], "dropout": 0.1}
NTU_DATA = {"num_frames": 300, "skeleton": {"temporal": "pad", "bodies": 2}}


@dataclass
class StgcnPretrainConfig:
    encoder: STGCNConfig = field(default_factory=STGCNConfig)
    label_smoothing: float = 0.0


@register_method("stgcn_pretrain")
class StgcnPretrain(SkeletonMethod):
    Config = StgcnPretrainConfig
    closed_set = True
    text_frozen = False  # no text side
    presets = {
        "default": {"optim": {"lr": 1e-3, "weight_decay": 1e-4, "grad_clip": None}},
        "ntu60": {"data": NTU_DATA, "optim": {"epochs": 80, "batch_size": 64}},
        "ntu120": {"data": NTU_DATA, "optim": {"epochs": 80, "batch_size": 64}},
        "pkummd": {"data": NTU_DATA, "optim": {"epochs": 80, "batch_size": 64}},
        "demo_skeleton": {"hparams": {"encoder": TINY_STGCN},
                          "optim": {"epochs": 20, "batch_size": 16, "lr": 3e-3, "eval_every": 5}},
    }

    def __init__(self, cfg: StgcnPretrainConfig, backbone, exp):
        super().__init__(cfg, backbone, exp)
        self.encoder = STGCN(cfg.encoder)
        self.head: nn.Linear | None = None
        self.class_names: tuple[str, ...] = ()

    def bind_train_labels(self, labels):
        if labels is None:
            raise ZsarError("stgcn_pretrain is a classifier: its protocol needs a training part")
        self.class_names = tuple(labels.names)
        self.head = nn.Linear(self.encoder.out_dim, len(labels))

    def class_embeddings(self, labels) -> torch.Tensor:
        """The classifier rows (weight | bias) of `labels`' classes, which must be training classes."""
        missing = [n for n in labels.names if n not in self.class_names]
        if missing:
            raise ZsarError(f"stgcn_pretrain was not trained on {missing[:3]}; it scores only its training classes")
        idx = torch.tensor([self.class_names.index(n) for n in labels.names], device=self.head.weight.device)
        return torch.cat([self.head.weight[idx], self.head.bias[idx, None]], dim=1)

    def logits(self, batch, class_emb) -> torch.Tensor:
        pooled = self.encoder(batch["skeleton"]).pooled
        return pooled @ class_emb[:, :-1].t() + class_emb[:, -1]

    def training_step(self, batch, labels):
        if tuple(labels.names) != self.class_names:
            raise RuntimeError("stgcn_pretrain trains on the label set it was bound to")
        logits = self.head(self.encoder(batch["skeleton"]).pooled)
        loss = nnf.cross_entropy(logits, batch["label"], label_smoothing=self.cfg.label_smoothing)
        acc = (logits.argmax(1) == batch["label"]).float().mean() * 100
        return {"loss": loss, "ce": loss.detach(), "acc": acc.detach()}
