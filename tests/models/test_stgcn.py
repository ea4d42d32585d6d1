"""ST-GCN: the NTU graph, its partition and normalisation, and the network's behaviour."""

from __future__ import annotations

import numpy as np
import torch

from zsar.models.stgcn import ALPHA, NTU_BONES, STGCN, GraphConv, STGCNConfig, bone_adjacency, normalize, partition

# Kinect v2 joints (1-based) and the body parts they join, written out independently of NTU_BONES:
# spine 1-2-21-3-4, arms 21-5-6-7-8 and 21-9-10-11-12 with hand tips / thumbs hung as in the
# ST-GCN release (22-23-8, 24-25-12), legs 1-13-14-15-16 and 1-17-18-19-20.
CHAINS = [(1, 2, 21, 3, 4), (21, 5, 6, 7, 8), (21, 9, 10, 11, 12), (8, 23, 22), (12, 25, 24),
          (1, 13, 14, 15, 16), (1, 17, 18, 19, 20)]


def test_adjacency_is_the_ntu_bone_list():
    expected = np.zeros((25, 25))
    for chain in CHAINS:
        for a, b in zip(chain, chain[1:]):
            expected[a - 1, b - 1] = expected[b - 1, a - 1] = 1
    adj = bone_adjacency()
    np.testing.assert_array_equal(adj, expected)
    assert len(NTU_BONES) == 24 and adj.sum() == 48 and np.trace(adj) == 0
    assert (adj == adj.T).all()


def test_spatial_partition_covers_each_neighbourhood_once():
    subsets = partition("spatial")
    assert subsets.shape == (3, 25, 25)
    np.testing.assert_array_equal(subsets.sum(0), bone_adjacency() + np.eye(25))
    root, near, far = subsets
    np.testing.assert_array_equal(near, far.T)  # j nearer the centre than i <=> i farther than j
    # Centre = spine shoulder (21): the elbow's centripetal neighbour is the shoulder, centrifugal the wrist.
    assert near[5, 4] == 1 and far[5, 6] == 1 and root[5, 5] == 1
    assert near[20].sum() == 0  # nothing is nearer the centre than the centre


def test_each_subset_is_symmetric_normalised():
    for strategy in ("uniform", "distance", "spatial"):
        raw = partition(strategy)
        norm = normalize(raw)
        for a, n in zip(raw, norm):
            d = a.sum(1) + ALPHA
            np.testing.assert_allclose(n, a / np.sqrt(np.outer(d, d)))
    uniform = normalize(partition("uniform"))[0]
    np.testing.assert_allclose(uniform, uniform.T)
    assert np.abs(np.linalg.eigvalsh(uniform)).max() <= 1 + 1e-9


def test_one_graph_convolution_reaches_only_bone_neighbours():
    torch.manual_seed(0)
    A = torch.tensor(normalize(partition("spatial")), dtype=torch.float32)
    gc = GraphConv(3, 4, A, edge_importance=True)
    x = torch.randn(1, 3, 5, 25)
    moved = x.clone()
    moved[0, :, :, 6] += 1.0  # joint 7 (left wrist)
    changed = (gc(moved) - gc(x)).abs().sum((0, 1, 2)) > 1e-6
    assert set(np.flatnonzero(changed.numpy()) + 1) == {6, 7, 8}  # itself, elbow, hand


def tiny():
    return STGCN(STGCNConfig(channels=[8, 8, 16], strides=[1, 2, 1], dropout=0.0)).eval()


def test_output_shapes_and_feature_resolution():
    torch.manual_seed(0)
    out = tiny()(torch.randn(2, 12, 2, 25, 3))
    assert out.features.shape == (2, 16, 6, 25)
    assert out.pooled.shape == (2, 16) and out.mask.shape == (2, 6)


def test_absent_second_body_and_padding_frames_leave_the_feature_alone():
    torch.manual_seed(0)
    net = tiny()
    x = torch.randn(1, 12, 1, 25, 3)
    two = torch.cat([x, torch.zeros_like(x)], dim=2)
    with torch.no_grad():
        torch.testing.assert_close(net(two).pooled, net(x).pooled)
        padded = torch.cat([x, torch.zeros(1, 12, 1, 25, 3)], dim=1)
        out = net(padded)
    assert out.mask[0].tolist() == [True] * 6 + [False] * 6

