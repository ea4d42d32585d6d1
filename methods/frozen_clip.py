"""`frozen_clip`: zero-shot CLIP without any training, the baseline every ZSAR paper reports.

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision" (ICML
2021), applied to video as in ViFi-CLIP's Table 1 ("vanilla CLIP"): each sampled frame is encoded
by the frozen image tower, frame embeddings are averaged into a video embedding, and classes are
scored by cosine similarity with their prompt-ensemble text embeddings, times CLIP's logit scale.

Our choices: the prompt ensemble is the config's template set (`text.templates`); the average is
taken over normalised-after-averaging frame features (the usual implementation). The per-frame
embeddings are a frozen input, so the feature cache computes them once per clip set.
"""

import torch.nn.functional as nnf

from zsar.data.features import FrozenInput
from zsar.models.method import Method
from zsar.registry import register_method

FRAME_FEATURES = FrozenInput("frame_features", "visual.encode_image of every frame")


@register_method("frozen_clip")
class FrozenCLIP(Method):
    trains = False
    text_frozen = True

    def __init__(self, cfg, backbone, exp):
        super().__init__(cfg, backbone, exp)
        self.freeze(self.clip)

    @classmethod
    def frozen_inputs(cls, cfg):
        return (FRAME_FEATURES,)

    def compute_frozen(self, name, video):
        return self.encode_frames(video)  # [B, T, D]

    def encode_video(self, batch):
        return nnf.normalize(self.frozen_input(batch, FRAME_FEATURES.name).float().mean(1), dim=-1)
