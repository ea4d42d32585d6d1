"""Formula-level references shared by the equation tests (written from the definitions, never
through the methods' own modules), and the small method the CEZSAR tests check against them."""

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


def cezsar_method(labels, text: dict, **hparams):
    """A small `cezsar` (32-wide visual branch, L2 frame norm) bound to `labels`, in eval mode
    (dropout off: the references have none)."""
    from zsar.config import resolve
    from zsar.models.backbone import create_backbone
    from zsar.registry import METHODS

    exp = resolve(method="cezsar", dataset="demo", protocol="base2novel",
                  overrides={"hparams": {"visual_hidden": 32, "visual_ff": 48, "frame_norm": "l2", **hparams},
                             "text": text})
    torch.manual_seed(0)
    method = METHODS.get("cezsar")(exp.method_config(), create_backbone(exp.backbone), exp)
    method.bind_train_labels(labels)
    return method.eval()


def ref_encoder_layer(layer, h, mask):
    """PyTorch's post-norm encoder layer (ReLU), by hand: padded keys get no attention."""
    out = []
    for i in range(len(h)):
        x = layer.norm1(h[i] + ref_attention(layer.self_attn, h[i], h[i], mask[i]))
        out.append(layer.norm2(x + layer.linear2(torch.relu(layer.linear1(x)))))
    return torch.stack(out)


def ref_cezsar_visual(branch, feats, mask, act=lambda h: h):
    """CEZSAR's visual branch by hand: input projection, the encoder layers, output projection
    (each projection followed by `act`), mean over the real steps, LayerNorm."""
    h = act(feats @ branch.inp.weight.t() + branch.inp.bias)
    for layer in branch.temporal.layers:
        h = ref_encoder_layer(layer, h, mask)
    h = act(h @ branch.out.weight.t() + branch.out.bias)
    pooled = torch.stack([h[i][mask[i]].mean(0) for i in range(len(h))])  # real steps only
    return branch.norm(pooled)
