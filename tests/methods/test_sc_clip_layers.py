"""SC-CLIP's layers: the temporal-window adapter, mask pooling (Eq. 3), SCCA's cross-attention (Eq. 5)."""

import pytest
import torch
import torch.nn as nn
from open_clip.transformer import ResidualAttentionBlock

from zsar.methods.sc_clip_layers import (
    MLPAdapter,
    TemporalWindowAdapter,
    cross_attention_block,
    mask_bias,
    mask_pool,
    semantic_cross_attention,
)


def _randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every weight a random value (the adapters' output projections start at zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    return module


def test_adapters_start_as_the_identity():
    x = torch.randn(2, 5, 7, 16)
    assert torch.equal(TemporalWindowAdapter(16, 2)(x), x)
    assert torch.equal(MLPAdapter(16)(x), x)


@pytest.mark.parametrize("t", [3, 4, 5])
def test_adapter_a_sees_frames_t_minus_2_to_t_plus_2_only(t):
    torch.manual_seed(0)
    adapter = _randomise(TemporalWindowAdapter(16, 2, window=2))
    x = torch.randn(2, 10, 7, 16)  # B, T, N, D
    out = adapter(x)
    for offset, changes in ((3, False), (-3, False), (2, True), (-2, True), (4, False)):
        y = x.clone()
        y[:, t + offset] += torch.randn(2, 7, 16)
        same = torch.allclose(adapter(y)[:, t], out[:, t], atol=1e-6)
        assert same != changes, (t, offset)


def test_adapter_window_at_the_clip_edges_leaves_out_missing_frames():
    torch.manual_seed(0)
    adapter = _randomise(TemporalWindowAdapter(16, 2, window=2))
    x = torch.randn(1, 4, 3, 16)
    # frame 0 attends over frames 0..2 only: the same as the adapter on a 3-frame clip
    assert torch.allclose(adapter(x)[:, 0], adapter(x[:, :3])[:, 0], atol=1e-6)


def test_mask_pooling_is_the_mean_over_each_mask():
    feats = torch.arange(2 * 3 * 2, dtype=torch.float32).view(1, 2, 3, 2)  # B=1, T=2, HW=3, D=2
    masks = torch.zeros(1, 2, 2, 3, dtype=torch.bool)
    masks[0, 0, 0, 0] = masks[0, 0, 1, 2] = True  # mask 0: frame 0 token 0, frame 1 token 2
    masks[0, 1] = ~masks[0, 0]  # mask 1: the other four tokens
    q = mask_pool(feats, masks)
    # feats[0, t, n] = [2 (3t + n), 2 (3t + n) + 1]
    assert q[0, 0].tolist() == [(0 + 10) / 2, (1 + 11) / 2]
    assert q[0, 1].tolist() == [(2 + 4 + 6 + 8) / 4, (3 + 5 + 7 + 9) / 4]


def test_mask_bias_soft_adds_the_mask_and_hard_blocks_outside_it_class_token_always_visible():
    masks = torch.tensor([[[[True, False, True]]]])  # B=1, G=1, T=1, HW=3
    soft = mask_bias(masks, "soft", torch.float32)
    hard = mask_bias(masks, "hard", torch.float32)
    assert soft.shape == (1, 1, 1, 4)
    assert soft[0, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert hard[0, 0, 0].tolist() == [0.0, 0.0, float("-inf"), 0.0]


def _block(width=16, heads=2, seed=0):
    torch.manual_seed(seed)
    return _randomise(ResidualAttentionBlock(width, heads), seed).eval()


def test_cross_attention_with_its_own_tokens_as_queries_is_the_block():
    block = _block()
    x = torch.randn(3, 5, 16)
    assert torch.allclose(cross_attention_block(block, x, x), block(x), atol=1e-5)


def test_scca_hard_mask_output_ignores_tokens_outside_its_mask():
    block = _block()
    b, t, hw, g = 2, 3, 6, 2
    queries = torch.randn(b, g, 16)
    tokens = torch.randn(b, t, 1 + hw, 16)
    masks = torch.zeros(b, g, t, hw, dtype=torch.bool)
    masks[:, 0, :, :2] = True
    masks[:, 1, :, 2:] = True
    out = semantic_cross_attention(block, queries, tokens, masks, "hard")
    assert out.shape == (b, t, g, 16)
    outside = tokens.clone()
    outside[:, 1, 3:] += torch.randn(b, hw - 2, 16)  # frame 1, patches 2..5: outside mask 0
    moved = semantic_cross_attention(block, queries, outside, masks, "hard")
    assert torch.allclose(moved[:, 1, 0], out[:, 1, 0], atol=1e-6)  # mask 0 in frame 1: unchanged
    assert not torch.allclose(moved[:, 1, 1], out[:, 1, 1], atol=1e-4)  # mask 1 sees them
    assert torch.allclose(moved[:, [0, 2]], out[:, [0, 2]], atol=1e-6)  # other frames: own tokens only
    inside = tokens.clone()
    inside[:, 1, 1] += torch.randn(b, 16)  # frame 1, patch 0: inside mask 0
    assert not torch.allclose(semantic_cross_attention(block, queries, inside, masks, "hard")[:, 1, 0], out[:, 1, 0], atol=1e-4)
    cls = tokens.clone()
    cls[:, 1, 0] += torch.randn(b, 16)  # the class token is always visible
    assert not torch.allclose(semantic_cross_attention(block, queries, cls, masks, "hard")[:, 1, 0], out[:, 1, 0], atol=1e-4)
    # a soft bias only favours the mask: tokens outside it still count
    soft = semantic_cross_attention(block, queries, tokens, masks, "soft")
    soft_moved = semantic_cross_attention(block, queries, outside, masks, "soft")
    assert not torch.allclose(soft_moved[:, 1, 0], soft[:, 1, 0], atol=1e-4)
