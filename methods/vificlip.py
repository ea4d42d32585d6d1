"""`vificlip`: ViFi-CLIP, fully fine-tuned CLIP for video.

Rasheed et al., "Fine-tuned CLIP Models are Efficient Video Learners" (CVPR 2023):
- Sec. 3 ("ViFi-CLIP"): both CLIP towers are fine-tuned end to end; no new modules.
- Eq. 1-2: the video embedding is the average of the frame embeddings (temporal pooling);
  class text embeddings come from the prompt "a photo of a {}." (`text.templates: single`).
- Training objective: cross-entropy over cosine similarities scaled by CLIP's logit scale.
- Protocol settings, from the authors' released configs: base-to-novel 32 frames, effective batch
  64, lr 2e-6, 11 epochs; zero-shot (K400 training) 32 frames, effective batch 256, lr 8e-6,
  10 epochs. These live in the presets below.

Our choices: warm-up lengths and weight decay in the presets (the configs above leave them to the
code's defaults); the logit scale stays learnable (as in CLIP), capped at 100; evaluation averages
the logits of its views (`data.view_fusion`).
"""

from dataclasses import dataclass

import torch.nn.functional as nnf

from zsar.models.method import Method
from zsar.registry import register_method


@dataclass
class ViFiCLIPConfig:
    train_text: bool = True  # fine-tune the text tower too (the paper's setting)
    label_smoothing: float = 0.0


@register_method("vificlip")
class ViFiCLIP(Method):
    Config = ViFiCLIPConfig
    text_frozen = False
    presets = {
        "base2novel": {
            "data": {"num_frames": 32, "sampler": "segment", "views": 1, "crops": 1},
            "text": {"templates": "single"},
            "optim": {"epochs": 11, "batch_size": 64, "lr": 2e-6, "warmup_epochs": 2, "weight_decay": 0.001},
        },
        "zeroshot": {
            "data": {"num_frames": 32, "sampler": "segment", "views": 1, "crops": 1},
            "text": {"templates": "single"},
            "optim": {"epochs": 10, "batch_size": 256, "lr": 8e-6, "warmup_epochs": 5, "weight_decay": 0.001},
        },
        "demo": {
            "data": {"num_frames": 8},
            "text": {"templates": "shape"},
            "optim": {"epochs": 15, "batch_size": 16, "lr": 5e-4, "warmup_epochs": 1, "weight_decay": 0.05,
                      "grad_clip": None, "eval_every": 5},
        },
    }

    def __init__(self, cfg: ViFiCLIPConfig, backbone, exp):
        super().__init__(cfg, backbone, exp)
        if not cfg.train_text:
            for module in (self.clip.transformer, self.clip.token_embedding, self.clip.ln_final):
                self.freeze(module)
            self.clip.positional_embedding.requires_grad_(False)
            self.clip.text_projection.requires_grad_(False)

    def training_step(self, batch, labels):
        class_emb = self.class_embeddings(labels)
        logits = self.logits(batch, class_emb)
        loss = nnf.cross_entropy(logits, batch["label"], label_smoothing=self.cfg.label_smoothing)
        return {"loss": loss, "ce": loss.detach()}
