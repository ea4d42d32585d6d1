"""SC-CLIP's layers: the ViT trunk split, the two adapters, mask pooling (Eq. 3) and the semantic
cross-attention of SCCA (Eq. 5), on open_clip's VisionTransformer internals (`conv1`,
`class_embedding`, `positional_embedding`, `ln_pre`, `transformer.resblocks`, `ln_post`, `proj`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as nnf

from zsar.errors import ConfigError


def check_vit(visual: nn.Module) -> None:
    """SC-CLIP needs a plain CLIP ViT: class token, learnable grid positions, standard blocks."""
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    if not isinstance(visual, VisionTransformer):
        raise ConfigError(f"sc_clip needs a ViT image tower; this backbone has {type(visual).__name__}")
    blocks = visual.transformer.resblocks
    if (visual.attn_pool is not None or visual.pool_type != "tok" or not visual.transformer.batch_first
            or not all(isinstance(b, ResidualAttentionBlock) for b in blocks) or len(blocks) < 2):
        raise ConfigError("sc_clip needs a CLIP ViT with class-token pooling and at least two standard "
                          "residual attention blocks (e.g. ViT-B-16, zsar-tiny-64)")


def embed(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] -> [N, 1 + HW, width]: patches, class token, positions, ln_pre (no patch
    dropout: every patch must stay for the dense tokens)."""
    x = visual.conv1(images).flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    return visual.ln_pre(x)


def project(visual: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The image tower's head on any tokens: ln_post, then proj into the joint space."""
    return visual.ln_post(tokens) @ visual.proj


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.unflatten(-1, (heads, -1)).transpose(-3, -2)  # [..., L, W] -> [..., h, L, d]


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-3, -2).flatten(-2)


# ---------------------------------------------------------------- adapters (Sec. 3.2, Table 6)


def _mlp(width: int) -> nn.Sequential:
    mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, 4 * width)), ("gelu", nn.GELU()),
                                     ("c_proj", nn.Linear(4 * width, width))]))
    nn.init.zeros_(mlp.c_proj.weight)  # residual branch starts at zero: the adapter starts as identity
    nn.init.zeros_(mlp.c_proj.bias)
    return mlp


class TemporalWindowAdapter(nn.Module):
    """The "TF" adapter: a pre-norm transformer-encoder block (width D, feed-forward 4D) whose
    self-attention for frame t sees only the tokens of frames t-w..t+w (Sec. 3.2:
    SA = softmax(Q K_{(t-2)~(t+2)}^T / sqrt(d)) V_{(t-2)~(t+2)}, w = 2). Frames past either end of
    the clip are left out, not padded in."""

    def __init__(self, width: int, heads: int, window: int = 2):
        super().__init__()
        self.heads, self.window = heads, window
        self.ln_1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = _mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, N, D] -> [B, T, N, D]."""
        b, t, n, d = x.shape
        q, k, v = self.qkv(self.ln_1(x)).chunk(3, dim=-1)
        k, v, keep = self._windows(k), self._windows(v), self._window_keep(t, n, x.device)
        q = _split_heads(q.reshape(b * t, n, d), self.heads)
        k = _split_heads(k.reshape(b * t, -1, d), self.heads)
        v = _split_heads(v.reshape(b * t, -1, d), self.heads)
        keep = keep[None].expand(b, -1, -1).reshape(b * t, 1, 1, -1)
        attn = _merge_heads(nnf.scaled_dot_product_attention(q, k, v, attn_mask=keep))
        x = x + self.out(attn.reshape(b, t, n, d))
        return x + self.mlp(self.ln_2(x))

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, N, D] -> [B, T, (2w+1) N, D]: for each frame, the tokens of frames t-w..t+w."""
        t, w = x.shape[1], self.window
        padded = nnf.pad(x, (0, 0, 0, 0, w, w))
        return torch.stack([padded[:, j : j + t] for j in range(2 * w + 1)], dim=2).flatten(2, 3)

    def _window_keep(self, t: int, n: int, device) -> torch.Tensor:
        """[T, (2w+1) N] bool: which keys of each frame's window are real frames."""
        offsets = torch.arange(-self.window, self.window + 1, device=device)
        frame = torch.arange(t, device=device)[:, None] + offsets[None, :]
        return ((frame >= 0) & (frame < t)).repeat_interleave(n, dim=1)


class MLPAdapter(nn.Module):
    """The "MLP" adapter of Table 6: a pre-norm residual feed-forward block (width D, hidden 4D),
    token by token."""

    def __init__(self, width: int):
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.mlp = _mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.ln(x))


def make_adapter(kind: str, width: int, heads: int, window: int) -> nn.Module:
    return TemporalWindowAdapter(width, heads, window) if kind == "tf" else MLPAdapter(width)


# ---------------------------------------------------------------- Eq. 3 and Eq. 5


def mask_pool(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Eq. 3: Q = [sum_{T,H,W} F^a[1(m=1)] / sum_{T,H,W} 1(m=1) | m in M].

    features F^a [B, T, HW, D], masks [B, G, T, HW] bool -> queries [B, G, D] (an empty mask
    slot gives a zero query)."""
    m = masks.flatten(2).to(features.dtype)  # [B, G, T*HW]
    sums = torch.bmm(m, features.flatten(1, 2))
    return sums / m.sum(-1, keepdim=True).clamp(min=1)


def mask_bias(masks: torch.Tensor, mode: str, dtype) -> torch.Tensor:
    """The M of Eq. 5 for each (frame, query) over that frame's 1 + HW keys.

    masks [B, G, T, HW] bool -> bias [B, T, G, 1 + HW]: "soft" adds the mask values (1 inside,
    0 outside), "hard" is 0 inside and -inf outside. The class token is always visible (bias 0),
    so no row is empty."""
    m = masks.permute(0, 2, 1, 3)
    if mode == "hard":
        patches = torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(~m, float("-inf"))
    else:
        patches = m.to(dtype)
    cls = torch.zeros(*m.shape[:-1], 1, dtype=dtype, device=m.device)
    return torch.cat([cls, patches], dim=-1)


def cross_attention_block(block: nn.Module, queries: torch.Tensor, keys: torch.Tensor,
                          bias: torch.Tensor | None = None) -> torch.Tensor:
    """A CLIP residual block with its self-attention replaced by cross-attention (Eq. 5):

        SCA(Q, F, M) = softmax(W_q Q (W_k F)^T / sqrt(d) + M) W_v F

    with the block's own (frozen) ln_1, W_q, W_k, W_v, output projection, ln_2 and MLP; the
    residual stream is the queries'. queries [..., G, D], keys F [..., L, D], bias [..., G, L]
    -> [..., G, D]. With queries = keys and no bias this is exactly `block(keys)`."""
    lead = queries.shape[:-2]
    queries, keys = queries.reshape(-1, *queries.shape[-2:]), keys.reshape(-1, *keys.shape[-2:])
    attn = block.attn
    w_q, w_k, w_v = attn.in_proj_weight.chunk(3)
    b_q, b_k, b_v = attn.in_proj_bias.chunk(3)
    h = attn.num_heads
    kv = block.ln_1(keys)
    q = _split_heads(nnf.linear(block.ln_1(queries), w_q, b_q), h)
    k = _split_heads(nnf.linear(kv, w_k, b_k), h)
    v = _split_heads(nnf.linear(kv, w_v, b_v), h)
    if bias is not None:
        bias = bias.reshape(-1, 1, *bias.shape[-2:]).to(q.dtype)  # one bias for all heads
    out = _merge_heads(nnf.scaled_dot_product_attention(q, k, v, attn_mask=bias))
    x = queries + block.ls_1(attn.out_proj(out))
    x = x + block.ls_2(block.mlp(block.ln_2(x)))
    return x.reshape(*lead, *x.shape[-2:])


def semantic_cross_attention(block: nn.Module, queries: torch.Tensor, second_last: torch.Tensor,
                             masks: torch.Tensor, mode: str) -> torch.Tensor:
    """SCCA (Sec. 3.3): every semantic query probes every frame's own tokens.

    queries Q [B, G, D]; second_last F [B, T, 1 + HW, D] (output of the second-last layer);
    masks [B, G, T, HW] -> F' [B, T, G, D], one output per (frame, query)."""
    t = second_last.shape[1]
    q = queries[:, None].expand(-1, t, -1, -1)
    return cross_attention_block(block, q, second_last, mask_bias(masks, mode, second_last.dtype))
