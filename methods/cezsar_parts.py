"""The pieces of `cezsar` that are plain functions: the sentence bank, automatic negative sampling,
the masked temporal mean, the losses, and ActivityNet-Captions-format caption files.

Kept apart from the module so each is tested on its own (tests/methods/test_cezsar_parts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as nnf

from zsar.data.captions import CaptionSegment
from zsar.data.captions import load_captions as read_captions
from zsar.errors import ConfigError


@dataclass(frozen=True)
class SentenceBank:
    """Every training sentence once, with the class it belongs to (`owner`, -1: no class, e.g.
    a caption of a video outside the label set) and, per class, the rows of its sentences."""

    sentences: tuple[str, ...]
    owner: torch.Tensor  # long [N]
    class_rows: tuple[tuple[int, ...], ...]  # class index -> its rows in `sentences`

    @classmethod
    def build(cls, per_class: list[list[str]], extra: list[str] = ()) -> "SentenceBank":
        sentences, owner, rows = [], [], []
        for c, items in enumerate(per_class):
            start = len(sentences)
            unique = list(dict.fromkeys(items))
            if not unique:
                raise ConfigError(f"cezsar: class {c} has no sentence (templates and descriptions are empty)")
            sentences += unique
            owner += [c] * len(unique)
            rows.append(tuple(range(start, len(sentences))))
        known = set(sentences)
        for s in dict.fromkeys(extra):
            if s not in known:
                sentences.append(s)
                owner.append(-1)
        return cls(tuple(sentences), torch.tensor(owner, dtype=torch.long), tuple(rows))


def sample_negatives(emb: torch.Tensor, owner: torch.Tensor, k: int, band: tuple[float, float], seed: int,
                     positives: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """CEZSAR's automatic negative sampling: for each positive sentence, `k` sentences of OTHER
    classes whose cosine distance (1 - cos) to it lies strictly inside `band`, drawn with a seeded
    generator (with replacement when fewer than `k` qualify).

    `emb` [N, D] are the sentences in the frozen text space; `owner` [N] their classes (-1: none);
    `positives` the rows that need negatives (default: every row that belongs to a class).
    Returns (long [P, k] rows into `emb`, how many positives had no sentence inside the band and
    took theirs from all other-class sentences instead)."""
    low, high = band
    if not 0.0 <= low < high:
        raise ConfigError(f"cezsar: negative_band must satisfy 0 <= low < high, got {band}")
    emb = nnf.normalize(emb.float(), dim=-1)
    if positives is None:
        positives = torch.nonzero(owner >= 0).flatten()
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(len(positives), k, dtype=torch.long)
    outside = 0
    for i, row in enumerate(positives.tolist()):
        distance = 1.0 - emb @ emb[row]
        other = owner != owner[row]
        pool = torch.nonzero(other & (distance > low) & (distance < high)).flatten()
        if pool.numel() == 0:
            outside += 1
            pool = torch.nonzero(other).flatten()
            if pool.numel() == 0:
                raise ConfigError("cezsar: negative sampling needs sentences of at least two classes")
        if pool.numel() >= k:
            pick = pool[torch.randperm(pool.numel(), generator=gen)[:k]]
        else:
            pick = pool[torch.randint(pool.numel(), (k,), generator=gen)]
        out[i] = pick
    return out, outside


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x [B, T, D] over the steps where mask [B, T] is True (padded steps count for nothing)."""
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp(min=1.0)


def repeat_tail_mask(frames: torch.Tensor) -> torch.Tensor:
    """bool [B, T]: False for the trailing frames that repeat the frame before them exactly, which
    is how the samplers pad a video shorter than their span (indices clipped to the last frame)."""
    b, t = frames.shape[:2]
    same = (frames[:, 1:] == frames[:, :-1]).flatten(2).all(-1)  # [B, T-1]: frame i+1 equals frame i
    # a step is padding when it and every later step repeat their predecessor
    tail = torch.flip(torch.cumprod(torch.flip(same.long(), [1]), 1), [1]).bool()
    mask = torch.ones(b, t, dtype=torch.bool, device=frames.device)
    mask[:, 1:] = ~tail
    return mask


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float) -> torch.Tensor:
    """max(0, ||a - p||_2 - ||a - n||_2 + margin), averaged: the paper's triplet margin loss (p=2)."""
    return nnf.triplet_margin_loss(anchor, positive, negative, margin=margin, p=2)


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float) -> torch.Tensor:
    """-log softmax of the positive's cosine among (positive, negatives [B, K, D]), over `temperature`."""
    a = nnf.normalize(anchor, dim=-1)
    pos = (a * nnf.normalize(positive, dim=-1)).sum(-1, keepdim=True)
    neg = torch.einsum("bd,bkd->bk", a, nnf.normalize(negatives, dim=-1))
    logits = torch.cat([pos, neg], 1) / temperature
    return nnf.cross_entropy(logits, torch.zeros(len(a), dtype=torch.long, device=a.device))


def load_captions(path: str | Path) -> tuple[list[CaptionSegment], int]:
    """`hparams.captions` files (ActivityNet Captions' JSON format, `zsar.data.captions`): the
    segments and the count of skipped videos; a file that does not fit is a ConfigError."""
    return read_captions(path, "cezsar captions", ConfigError)
