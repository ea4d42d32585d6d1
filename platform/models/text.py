"""The text side: label sets, prompt-template ensembles, cached class embeddings.

Zero-shot evaluation takes any label set by names. A class's embedding is the normalised mean of
its prompts' embeddings (template ensemble over the name, and/or its descriptions). For frozen text
towers the result is cached per (text encoder identity incl. weights fingerprint, prompts) in
memory and on disk, so evaluating the same label set twice encodes nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as nnf

from zsar.errors import ConfigError
from zsar.log import log

TEMPLATES: dict[str, list[str]] = {
    # ViFi-CLIP and most CLIP video papers use one template.
    "single": ["a photo of a {}."],
    "video": [
        "a video of {}.",
        "a video of a person doing {}.",
        "a photo of a person doing {}.",
        "a clip showing {}.",
        "an example of {}.",
        "{}.",
    ],
    # For the synthetic demo, whose class names describe a shape's motion.
    "shape": ["a video of a shape {}.", "a shape {}.", "{}."],
    "name": ["{}"],
}


@dataclass(frozen=True)
class LabelSet:
    """An ordered set of classes: label i is `names[i]`. `descriptions[i]` may hold sentences.
    `verbatim`: the names are sentences themselves (a caption per label, e.g. ActivityNet
    Captions segments), each its own only prompt: no templates, no descriptions."""

    names: tuple[str, ...]
    descriptions: tuple[tuple[str, ...], ...] | None = None
    verbatim: bool = False

    def __post_init__(self):
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate class names in label set: {self.names}")
        if self.descriptions is not None and len(self.descriptions) != len(self.names):
            raise ValueError("descriptions must be given for every class")

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, names: Sequence[str]) -> "LabelSet":
        idx = [self.names.index(n) for n in names]
        desc = tuple(self.descriptions[i] for i in idx) if self.descriptions else None
        return LabelSet(tuple(names), desc, self.verbatim)


def resolve_templates(templates) -> list[str]:
    if isinstance(templates, str):
        if templates not in TEMPLATES:
            raise ConfigError(f"text.templates: unknown template set '{templates}'; known: {', '.join(TEMPLATES)}")
        return list(TEMPLATES[templates])
    templates = list(templates or [])
    if not templates or not all(isinstance(t, str) and "{}" in t for t in templates):
        raise ConfigError("text.templates: a list of strings each containing '{}'")
    return templates


def class_prompts(labels: LabelSet, templates, use: str = "names") -> list[list[str]]:
    """The sentences that stand for each class, in label order (a verbatim set's: its names)."""
    if labels.verbatim:
        return [[name] for name in labels.names]
    templates = resolve_templates(templates)
    out = []
    for i, name in enumerate(labels.names):
        prompts: list[str] = []
        if use in ("names", "both") or not labels.descriptions or not labels.descriptions[i]:
            prompts += [t.format(name) for t in templates]
        if use in ("descriptions", "both") and labels.descriptions and labels.descriptions[i]:
            prompts += list(labels.descriptions[i])
        out.append(prompts)
    return out


def encode_text(model, tokenizer, sentences: list[str], batch_size: int = 256) -> torch.Tensor:
    """Normalised CLIP text embeddings [N, D]; gradients flow if the caller allows them."""
    device = next(model.parameters()).device
    chunks = []
    for i in range(0, len(sentences), batch_size):
        tokens = tokenizer(sentences[i : i + batch_size]).to(device)
        chunks.append(nnf.normalize(model.encode_text(tokens).float(), dim=-1))
    return torch.cat(chunks)


def pool_prompts(embeddings: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Mean of each class's prompt embeddings, renormalised: [sum(counts), D] -> [C, D]."""
    parts = torch.split(embeddings, counts)
    return nnf.normalize(torch.stack([p.mean(0) for p in parts]), dim=-1)


class ClassEmbeddingCache:
    """Class embeddings of a frozen text encoder, cached in memory and (optionally) on disk.

    `identity` must name the encoder and its weights (e.g. `Backbone.identity`); anything that
    changes the weights must change it, which is why trainable text towers must not use this.
    """

    def __init__(self, identity: str, encode: Callable[[list[str]], torch.Tensor], disk_dir: Path | None = None):
        self.identity = identity
        self.encode = encode
        self.disk_dir = Path(disk_dir) if disk_dir else None
        self._memory: dict[str, torch.Tensor] = {}
        self.encode_calls = 0

    def key(self, prompts: list[list[str]]) -> str:
        blob = json.dumps([self.identity, prompts], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def __call__(self, prompts: list[list[str]]) -> torch.Tensor:
        key = self.key(prompts)
        if key in self._memory:
            return self._memory[key]
        path = self.disk_dir / f"{key}.pt" if self.disk_dir else None
        if path is not None and path.is_file():
            try:
                emb = torch.load(path, map_location="cpu", weights_only=True)
                self._memory[key] = emb
                return emb
            except Exception as e:  # noqa: BLE001 - a torn write: recompute below
                log(f"text embedding cache {path.name} unreadable ({type(e).__name__}); recomputing it")
                path.unlink(missing_ok=True)
        self.encode_calls += 1
        flat = [s for p in prompts for s in p]
        with torch.no_grad():
            emb = pool_prompts(self.encode(flat), [len(p) for p in prompts]).cpu()
        self._memory[key] = emb
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{id(self)}")
            torch.save(emb, tmp)
            tmp.replace(path)
        return emb
