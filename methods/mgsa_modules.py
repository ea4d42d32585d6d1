"""The parts of `mgsa` (see methods/mgsa.py for the paper mapping): the Dual Adapter's bottleneck
blocks, the Motion Separation Module and the Motion Aggregation Block."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as nnf


class Bottleneck(nn.Module):
    """x -> up(GELU(down(x))); `up` starts at zero, so an adapted block starts as the identity."""

    def __init__(self, width: int, bottleneck: int):
        super().__init__()
        self.down = nn.Linear(width, bottleneck)
        self.up = nn.Linear(bottleneck, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        return self.up(nnf.gelu(self.down(x)))


class ProjectedAdapter(nn.Module):
    """A shared adapter of another width used through a fixed orthonormal projection P:
    x -> P^T adapter(P x). P is a seeded buffer (never trained)."""

    def __init__(self, shared: Bottleneck, width: int, seed: int):
        super().__init__()
        self.shared = shared
        shared_width = shared.down.in_features
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(max(width, shared_width), min(width, shared_width), generator=gen))
        self.register_buffer("proj", q if width >= shared_width else q.t())  # [width, shared_width]

    def forward(self, x):
        return self.shared(x @ self.proj.to(x.dtype)) @ self.proj.t().to(x.dtype)


class AdaptedBlock(nn.Module):
    """A frozen transformer block followed by a residual adapter: y = block(x); y + adapter(y)."""

    def __init__(self, block: nn.Module, adapter: nn.Module):
        super().__init__()
        self.block = block
        self.adapter = adapter

    def get_weight_dtype(self):  # open_clip asks its first block for the weights' dtype
        return self.block.get_weight_dtype()

    def forward(self, q_x, k_x=None, v_x=None, attn_mask=None):
        y = self.block(q_x, k_x, v_x, attn_mask=attn_mask)
        return y + self.adapter(y)


def add_dual_adapters(visual_blocks: nn.ModuleList, text_blocks: nn.ModuleList, bottleneck: int,
                      layers: list[int] | None, sharing: str, seed: int = 0) -> nn.ModuleList:
    """Wrap the chosen blocks of both towers in place; returns the adapters (for counting).
    `sharing="shared"`: the visual and text blocks of the same depth share one adapter (the text
    side through a fixed projection when the widths differ); "separate": one adapter each."""
    adapters = nn.ModuleList()

    def chosen(n):
        return range(n) if layers is None else sorted({i % n for i in layers})

    def width(block):
        return block.ln_1.normalized_shape[0]

    shared_at: dict[int, Bottleneck] = {}
    for i in chosen(len(visual_blocks)):
        adapter = Bottleneck(width(visual_blocks[i]), bottleneck)
        shared_at[i] = adapter
        visual_blocks[i] = AdaptedBlock(visual_blocks[i], adapter)
        adapters.append(adapter)
    for i in chosen(len(text_blocks)):
        w = width(text_blocks[i])
        if sharing == "shared" and i in shared_at:
            core = shared_at[i]
            adapter = core if core.down.in_features == w else ProjectedAdapter(core, w, seed + i)
        else:
            adapter = Bottleneck(w, bottleneck)
            adapters.append(adapter)
        text_blocks[i] = AdaptedBlock(text_blocks[i], adapter)
    return adapters


class MotionSeparation(nn.Module):
    """MSM: per-frame features X [B, T, D] -> (static [B, K, D], motion [B, K', D], weights [B, K]).

    `haar`: one level of the temporal Haar lifting scheme on frame pairs (2k, 2k+1): detail
    d = x_odd - x_even (motion), approximation a = x_even + d / 2 = the pair's mean (static). An odd
    last frame pairs with itself (d = 0). `learned_lifting`: the predict and update steps are
    depthwise temporal filters (kernel 3 over the pair index) initialised to Haar's (P = [0, 1, 0],
    U = [0, 1/2, 0]), so X stays exactly recoverable whatever they learn. `difference`: static =
    the temporal mean, motion = x_{t+1} - x_t. `weights` count the real frames behind each static
    token, so their weighted mean is the mean of the frames."""

    def __init__(self, mode: str, width: int):
        super().__init__()
        self.mode = mode
        if mode == "learned_lifting":
            self.predict = nn.Conv1d(width, width, 3, padding=1, groups=width, bias=False)
            self.update = nn.Conv1d(width, width, 3, padding=1, groups=width, bias=False)
            with torch.no_grad():
                self.predict.weight.zero_()[:, 0, 1] = 1.0
                self.update.weight.zero_()[:, 0, 1] = 0.5

    def pairs(self, x):
        b, t, d = x.shape
        weights = torch.full((b, (t + 1) // 2), 2.0, device=x.device, dtype=x.dtype)
        if t % 2:
            x = torch.cat([x, x[:, -1:]], 1)
            weights[:, -1] = 1.0
        return x[:, 0::2], x[:, 1::2], weights

    def forward(self, x):
        if self.mode == "difference":
            weights = torch.ones(x.shape[0], 1, device=x.device, dtype=x.dtype)
            return x.mean(1, keepdim=True), x[:, 1:] - x[:, :-1], weights
        even, odd, weights = self.pairs(x)
        if self.mode == "haar":
            detail = odd - even
            return even + detail / 2, detail, weights
        detail = odd - self.predict(even.transpose(1, 2)).transpose(1, 2)
        return even + self.update(detail.transpose(1, 2)).transpose(1, 2), detail, weights

    def inverse(self, static, motion, num_frames: int):
        """X from (static, motion) for the lifting modes: the check that nothing is lost."""
        if self.mode == "haar":
            even = static - motion / 2
            odd = motion + even
        elif self.mode == "learned_lifting":
            even = static - self.update(motion.transpose(1, 2)).transpose(1, 2)
            odd = motion + self.predict(even.transpose(1, 2)).transpose(1, 2)
        else:
            raise ValueError("only the lifting modes are invertible")
        return torch.stack([even, odd], 2).flatten(1, 2)[:, :num_frames]


def decorrelation(static, motion, weights) -> torch.Tensor:
    """Mean squared cosine between the motion tokens and the (weighted mean) static token of each
    video: 0 when the motion part is orthogonal to the static content."""
    s = nnf.normalize((static * weights[..., None]).sum(1) / weights.sum(1, keepdim=True), dim=-1)
    m = nnf.normalize(motion, dim=-1)
    return ((m @ s[..., None]).squeeze(-1) ** 2).mean()


class MotionAggregation(nn.Module):
    """MAB: motion tokens query the context (frame or static tokens) by cross-attention; the result
    is scaled by tanh(g), g a learnable scalar starting at 0, and added to the motion stream."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_q = nn.LayerNorm(width)
        self.ln_kv = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, motion, context):
        kv = self.ln_kv(context)
        out, _ = self.attn(self.ln_q(motion), kv, kv, need_weights=False)
        return motion + torch.tanh(self.gate) * out
