"""SC-CLIP's SQG masks (Sec. 3.2, Eq. 2): seeds, cosine K-means, transitive fusion at delta."""

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as nnf

from zsar.methods.sc_clip_sqg import (
    compact,
    merge_groups,
    seeds_per_frame,
    semantic_masks,
    spherical_kmeans,
    window_seeds,
    window_specs,
)


def partition(labels) -> set:
    """The partition a labelling induces, as a set of frozensets of positions."""
    groups: dict = {}
    for i, g in enumerate(np.asarray(labels).reshape(-1).tolist()):
        groups.setdefault(g, set()).add(i)
    return {frozenset(s) for s in groups.values()}


def test_seed_windows_follow_eq2_and_skip_sizes_larger_than_the_grid():
    assert window_specs((14, 14), [3, 7]) == [(3, 1), (7, 3)]
    # 14x14 (ViT-B/16 at 224 px): s=3, stride 1: 12x12 windows; s=7, stride 3: origins 0, 3, 6: 3x3
    assert seeds_per_frame((14, 14), [3, 7]) == 144 + 9
    assert window_specs((4, 4), [3, 7]) == [(3, 1)]  # 7 does not fit a 4x4 grid
    assert seeds_per_frame((4, 4), [3, 7]) == 4
    assert seeds_per_frame((8, 8), [3, 7]) == 36 + 1


def test_window_seed_is_the_mean_of_its_window():
    torch.manual_seed(0)
    dense = torch.randn(2, 3, 8, 8, 5)  # B, T, H, W, E
    seeds = window_seeds(dense, window_specs((8, 8), [3, 7]))
    assert seeds.shape == (2, 3 * 37, 5)
    per_frame = seeds.view(2, 3, 37, 5)
    # s=3, stride 1: seed (i, j) is at index i * 6 + j; the last seed of the frame is the 7x7 window at (0, 0)
    b, t, i, j = 1, 2, 4, 2
    assert torch.allclose(per_frame[b, t, i * 6 + j], dense[b, t, i : i + 3, j : j + 3].mean((0, 1)), atol=1e-6)
    assert torch.allclose(per_frame[b, t, 36], dense[b, t, :7, :7].mean((0, 1)), atol=1e-6)


def test_kmeans_keeps_one_centre_per_seed():
    torch.manual_seed(0)
    t, grid = 2, (14, 14)
    dense = nnf.normalize(torch.randn(3, t, 14, 14, 16), dim=-1)
    seeds = nnf.normalize(window_seeds(dense, window_specs(grid, [3, 7])), dim=-1)
    assign, centres, counts = spherical_kmeans(dense.reshape(3, -1, 16), seeds, iters=3)
    assert centres.shape == (3, t * 153, 16)  # K = the number of seeds
    assert int(assign.max()) < t * 153 and counts.sum(1).tolist() == [t * 196] * 3


def _planted(layouts, t=3, grid=(8, 8), dim=16, noise=0.02, seed=0):
    """Dense tokens whose regions point along orthogonal directions (plus noise)."""
    gen = torch.Generator().manual_seed(seed)
    basis = torch.eye(dim)
    videos = []
    for layout in layouts:
        region = torch.as_tensor(layout).reshape(-1)  # [HW] region id
        tokens = basis[region][None].expand(t, -1, -1) + noise * torch.randn(t, region.numel(), dim, generator=gen)
        videos.append(tokens)
    return torch.stack(videos)  # [B, T, HW, E]


def _layouts():
    a = np.zeros((8, 8), dtype=int)
    a[:, 4:] = 1
    a[5:, 4:] = 2  # left half, top right, bottom right
    b = np.zeros((8, 8), dtype=int)
    b[2:6, 2:6] = 3  # a square on a background
    b[:, :1] = 4  # and a strip on the left
    return [a, b]


def test_sqg_recovers_planted_clusters_across_frames():
    layouts = _layouts()
    dense = _planted(layouts)
    masks = semantic_masks(dense, (8, 8), window_specs((8, 8), [3, 7]), iters=10, delta=0.9)
    for b, layout in enumerate(layouts):
        expected = np.tile(layout.reshape(-1), 3)  # the same region in every frame is one mask
        assert partition(masks.slot[b].reshape(-1)) == partition(expected)
        assert int(masks.num[b]) == len(np.unique(layout))
    assert masks.valid.tolist() == [[True, True, True], [True, True, True]]
    onehot = masks.onehot()
    assert onehot.shape == (2, 3, 3, 64) and (onehot.sum(1) == 1).all()  # every token in exactly one mask


def test_fusion_merges_exactly_the_pairs_at_or_above_delta():
    centres = nnf.normalize(torch.tensor([[[4.0, 0.0], [3.0, 4.0]]]), dim=-1)  # cosine 3/5 exactly
    present = torch.ones(1, 2, dtype=torch.bool)
    cos = torch.bmm(centres, centres.transpose(1, 2))[0, 0, 1].numpy()
    assert cos == np.float32(0.6)
    assert merge_groups(centres, present, 0.6).tolist() == [[0, 0]]  # at delta: merged
    above = float(np.nextafter(cos, np.float32(2.0)))  # the next float32 above
    assert merge_groups(centres, present, above).tolist() == [[0, 1]]  # just above: not merged
    below = float(np.nextafter(cos, np.float32(0.0)))
    assert merge_groups(centres, present, below).tolist() == [[0, 0]]


def test_fusion_is_transitive_and_matches_union_find_on_random_centres():
    # a chain: cos(a, b) = cos(b, c) = 0.8, cos(a, c) = 0.28 -> one mask at delta = 0.75
    ang = math.acos(0.8)
    chain = torch.tensor([[[1.0, 0.0], [math.cos(ang), math.sin(ang)], [math.cos(2 * ang), math.sin(2 * ang)]]])
    assert merge_groups(chain, torch.ones(1, 3, dtype=torch.bool), 0.75).tolist() == [[0, 0, 0]]

    gen = torch.Generator().manual_seed(3)
    centres = nnf.normalize(torch.randn(4, 40, 6, generator=gen), dim=-1)
    present = torch.rand(4, 40, generator=gen) > 0.2
    sims = np.einsum("gke,gle->gkl", centres.double().numpy(), centres.double().numpy())
    values = np.unique(sims[:, ~np.eye(40, dtype=bool)])
    for q in (0.5, 0.8, 0.95):
        # a threshold between two neighbouring similarities, clear of both in float32 and float64
        i = int(q * len(values))
        while values[i + 1] - values[i] < 1e-5:
            i += 1
        delta = float(values[i] + values[i + 1]) / 2
        roots = merge_groups(centres, present, delta)
        for g in range(4):
            parent = list(range(40))

            def find(i):
                while parent[i] != i:
                    i = parent[i]
                return i

            for i, j in itertools.combinations(range(40), 2):
                if present[g, i] and present[g, j] and sims[g, i, j] >= delta:
                    parent[find(i)] = find(j)
            assert partition(roots[g]) == partition([find(i) for i in range(40)]), (g, delta)
        assert any(1 < len(partition(roots[g])) < 40 for g in range(4))  # some merges, not all


def test_absent_centres_never_bridge_two_masks():
    centres = nnf.normalize(torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]]), dim=-1)  # a~b~c at 0.7
    present = torch.tensor([[True, False, True]])
    assert partition(merge_groups(centres, present, 0.7)[0]) == {frozenset({0}), frozenset({1}), frozenset({2})}


def test_larger_delta_gives_at_least_as_many_masks():
    gen = torch.Generator().manual_seed(1)
    base = nnf.normalize(torch.randn(5, 32, generator=gen), dim=-1)
    region = torch.randint(0, 5, (2, 4 * 64), generator=gen)
    dense = (base[region] + 0.6 * torch.randn(2, 4 * 64, 32, generator=gen)).view(2, 4, 64, 32)
    specs = window_specs((8, 8), [3, 7])
    counts = [semantic_masks(dense, (8, 8), specs, iters=5, delta=d).num.tolist() for d in (-1.0, 0.3, 0.5, 0.7, 0.9, 1.0)]
    assert counts[0] == [1, 1]  # delta = -1: everything merges
    for lo, hi in zip(counts, counts[1:]):
        assert all(a <= b for a, b in zip(lo, hi)), counts
    assert counts[-1][0] > counts[1][0]


def test_batch_scope_clusters_the_batch_as_one_collection():
    gen = torch.Generator().manual_seed(2)
    base = nnf.normalize(torch.randn(4, 16, generator=gen), dim=-1)
    region = torch.randint(0, 4, (3, 2 * 64), generator=gen)
    dense = (base[region] + 0.5 * torch.randn(3, 2 * 64, 16, generator=gen)).view(3, 2, 64, 16)
    specs = window_specs((8, 8), [3])
    kw = dict(iters=4, delta=0.7)
    # "video": each video's masks do not depend on the batch it comes in
    alone = semantic_masks(dense[1:2], (8, 8), specs, **kw)
    batched = semantic_masks(dense, (8, 8), specs, **kw)
    assert torch.equal(alone.slot[0], batched.slot[1])
    # "batch": the same as one video made of all the batch's frames, restricted to each video
    whole = semantic_masks(dense.reshape(1, 6, 64, 16), (8, 8), specs, **kw)
    per_batch = semantic_masks(dense, (8, 8), specs, scope="batch", **kw)
    for b in range(3):
        assert partition(per_batch.slot[b]) == partition(whole.slot[0, 2 * b : 2 * b + 2])


def test_compact_numbers_each_videos_masks_from_zero():
    slot, valid = compact(torch.tensor([[5, 5, 2, 9], [7, 7, 7, 7]]), 10)
    assert slot.tolist() == [[1, 1, 0, 2], [0, 0, 0, 0]]
    assert valid.tolist() == [[True, True, True], [True, False, False]]
