"""Where a worker stands among its peers, and the two collectives the loop needs (a no-op with
one worker or without a process group)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class WorkerContext:
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    local_rank: int = 0


def _single(ctx: WorkerContext) -> bool:
    return ctx.world_size == 1 or not dist.is_initialized()


def all_reduce_sum(values: list[float], ctx: WorkerContext) -> list[float]:
    if _single(ctx):
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(obj, ctx: WorkerContext) -> list:
    """`obj` of every rank, in rank order."""
    if _single(ctx):
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out
