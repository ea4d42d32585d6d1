"""`frozen_clip`: zero-shot CLIP without any training, the baseline every ZSAR paper reports.

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision" (ICML
2021), applied to video as in ViFi-CLIP's Table 1 ("vanilla CLIP"): each sampled frame is encoded
by the frozen image tower, frame embeddings are averaged into a video embedding, and classes are
scored by cosine similarity with their prompt-ensemble text embeddings, times CLIP's logit scale.

Our choices: the prompt ensemble is the config's template set (`text.templates`); the average is
taken over normalised-after-averaging frame features (the usual implementation).
"""

from zsar.models.method import Method
from zsar.registry import register_method


@register_method("frozen_clip")
class FrozenCLIP(Method):
    trains = False
    text_frozen = True

    def __init__(self, cfg, backbone, exp):
        super().__init__(cfg, backbone, exp)
        self.freeze(self.clip)
