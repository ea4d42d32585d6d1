"""Formula-level references shared by the equation tests (written from the definitions, never
through the methods' own modules)."""

import math

import torch


def ref_attention(attn: torch.nn.MultiheadAttention, q_in, kv_in, key_mask=None):
    """One sample's multi-head attention, head by head: softmax(q k^T / sqrt(d)) v with `attn`'s
    in/out projections; `key_mask` (bool per key) gives padded keys no attention."""
    wq, wk, wv = attn.in_proj_weight.chunk(3)
    bq, bk, bv = attn.in_proj_bias.chunk(3)
    d = q_in.shape[-1] // attn.num_heads
    q, k, v = q_in @ wq.t() + bq, kv_in @ wk.t() + bk, kv_in @ wv.t() + bv
    heads = []
    for j in range(attn.num_heads):
        sl = slice(j * d, (j + 1) * d)
        s = q[:, sl] @ k[:, sl].t() / math.sqrt(d)
        if key_mask is not None:
            s = s.masked_fill(~key_mask[None, :], float("-inf"))
        heads.append(torch.softmax(s, -1) @ v[:, sl])
    return attn.out_proj(torch.cat(heads, -1))
