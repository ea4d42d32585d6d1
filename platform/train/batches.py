"""Decoded batches with failed rows (`ok=False`, the reason in `error`; see zsar.data.pipeline)."""

from __future__ import annotations

import numpy as np


def failed_rows(batch: dict) -> list[dict]:
    return [{"path": str(p), "error": str(e)} for p, e, ok in zip(batch["path"], batch["error"], batch["ok"]) if not ok]


def fill_failed(batch: dict, last_good: dict | None) -> dict | None:
    """Replace failed rows by valid rows of the same batch, so every rank keeps the same batch
    size and step count (DDP lockstep). None when nothing usable was decoded yet."""
    ok = batch["ok"]
    if ok.all():
        return batch
    good = np.flatnonzero(ok)
    if good.size == 0:
        return last_good
    take = np.where(ok, np.arange(ok.size), good[np.arange(ok.size) % good.size])
    return {k: v[take] for k, v in batch.items()}
