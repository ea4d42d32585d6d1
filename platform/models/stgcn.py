"""ST-GCN: spatial temporal graph convolution on the NTU 25-joint skeleton, shared by skeleton methods.

Yan, Xiong and Lin, "Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action
Recognition" (AAAI 2018):
- Sec. 3.2, the graph: joints are nodes, bones are spatial edges (`NTU_BONES`, the Kinect v2 body
  as in the authors' release); the same joint in consecutive frames is linked in time, which the
  temporal convolution (kernel 9) implements.
- Sec. 3.3-3.4, partition strategies of a node's neighbours: `uniform` (one subset), `distance`
  (the node; its 1-hop neighbours), `spatial` (the standard one: the root; centripetal
  neighbours, nearer to the body's gravity centre; centrifugal ones, farther). The centre is
  joint 21 (spine shoulder), as in the release.
- Eq. 9-10: each subset's adjacency is symmetric-normalised, Λ_k^-1/2 A_k Λ_k^-1/2 with
  Λ_k^ii = Σ_j A_k^ij + α, α = 0.001.
- Sec. 3.6: a learnable edge-importance mask multiplies each A_k element-wise.
- Sec. 4.2 (architecture): input batch normalisation; 9 units with 64, 64, 64, 128, 128, 128,
  256, 256, 256 output channels, temporal stride 2 in the 4th and 7th; residual connections;
  dropout 0.5 after each unit; global average pooling into a 256-d feature.

Our choices where the paper is silent: the first unit (3 input channels) has no residual, as in
the release; bodies absent from a sequence (all-zero) are left out of the average over bodies,
and frames that are padding (all-zero) are left out of the pooling. `forward` returns the
per-joint per-frame features C x T' x V (averaged over bodies), the pooled feature, and the mask of
valid frames at the features' temporal resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn as nn

from zsar.errors import ConfigError

NUM_JOINTS = 25
# The 24 bones of the NTU RGB+D / Kinect v2 body (1-based joint numbers, child -> parent).
NTU_BONES = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
    (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (23, 8), (24, 25), (25, 12),
)
NTU_CENTER = 21  # spine shoulder, 1-based
ALPHA = 0.001


def bone_adjacency(num_nodes: int = NUM_JOINTS, bones=NTU_BONES) -> np.ndarray:
    """Symmetric 0/1 adjacency of the bones (no self loops)."""
    a = np.zeros((num_nodes, num_nodes))
    for i, j in bones:
        a[i - 1, j - 1] = a[j - 1, i - 1] = 1
    return a


def hop_distance(adjacency: np.ndarray) -> np.ndarray:
    """Shortest path lengths in hops (inf where unreachable)."""
    n = len(adjacency)
    dist = np.full((n, n), np.inf)
    reach = np.eye(n, dtype=bool)
    dist[reach] = 0
    step = adjacency > 0
    for hops in range(1, n):
        reach_next = reach | (reach.astype(int) @ step.astype(int) > 0)
        dist[reach_next & ~reach] = hops
        if (reach_next == reach).all():
            break
        reach = reach_next
    return dist


def partition(strategy: str = "spatial", num_nodes: int = NUM_JOINTS, bones=NTU_BONES, center: int = NTU_CENTER) -> np.ndarray:
    """Raw 0/1 subsets [K, V, V]: A[k, i, j] = 1 when node j is in node i's k-th neighbour subset.
    The subsets add up to I + the bone adjacency."""
    adj = bone_adjacency(num_nodes, bones)
    neighbours = adj + np.eye(num_nodes)
    if strategy == "uniform":
        return neighbours[None]
    if strategy == "distance":
        return np.stack([np.eye(num_nodes), adj])
    if strategy == "spatial":
        to_center = hop_distance(adj)[:, center - 1]
        nearer = to_center[None, :] < to_center[:, None]  # [i, j]: j is nearer the centre than i
        farther = to_center[None, :] > to_center[:, None]
        root = neighbours * ~(nearer | farther)
        return np.stack([root, neighbours * nearer, neighbours * farther])
    raise ConfigError(f"unknown ST-GCN partition strategy '{strategy}' (uniform, distance, spatial)")


def normalize(subsets: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Λ_k^-1/2 A_k Λ_k^-1/2 with Λ_k^ii = Σ_j A_k^ij + α (Eq. 10)."""
    out = np.empty_like(subsets, dtype=np.float64)
    for k, a in enumerate(subsets):
        d = 1.0 / np.sqrt(a.sum(1) + alpha)
        out[k] = d[:, None] * a * d[None, :]
    return out


@dataclass
class STGCNConfig:
    channels: list[int] = field(default_factory=lambda: [64, 64, 64, 128, 128, 128, 256, 256, 256])
    strides: list[int] = field(default_factory=lambda: [1, 1, 1, 2, 1, 1, 2, 1, 1])
    temporal_kernel: int = 9
    dropout: float = 0.5
    partition: Literal["uniform", "distance", "spatial"] = "spatial"
    edge_importance: bool = True

    def validate(self):
        if not self.channels or len(self.channels) != len(self.strides):
            raise ConfigError("ST-GCN: channels and strides need the same, non-zero length")
        if self.temporal_kernel % 2 != 1:
            raise ConfigError("ST-GCN: temporal_kernel must be odd")
        if any(s < 1 for s in self.strides) or any(c < 1 for c in self.channels):
            raise ConfigError("ST-GCN: channels and strides must be positive")


class STGCNOutput(NamedTuple):
    features: torch.Tensor  # [N, C, T', V] per-joint per-frame features, averaged over bodies
    pooled: torch.Tensor  # [N, C]
    mask: torch.Tensor  # [N, T'] frames that hold data


class GraphConv(nn.Module):
    """Spatial graph convolution: out_i = Σ_k Σ_j (A_k ⊙ M_k)_ij x_j W_k."""

    def __init__(self, c_in: int, c_out: int, A: torch.Tensor, edge_importance: bool):
        super().__init__()
        self.k = A.shape[0]
        self.conv = nn.Conv2d(c_in, c_out * self.k, kernel_size=1)
        self.register_buffer("A", A.clone())
        self.importance = nn.Parameter(torch.ones_like(A)) if edge_importance else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        a = self.A * self.importance if self.importance is not None else self.A
        y = self.conv(x).view(n, self.k, -1, t, v)
        return torch.einsum("nkctj,kij->ncti", y, a)


class STGCNUnit(nn.Module):
    def __init__(self, c_in: int, c_out: int, A: torch.Tensor, stride: int, kernel: int, dropout: float,
                 edge_importance: bool, residual: bool):
        super().__init__()
        self.gcn = GraphConv(c_in, c_out, A, edge_importance)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, (kernel, 1), (stride, 1), ((kernel - 1) // 2, 0)),
            nn.BatchNorm2d(c_out), nn.Dropout(dropout),
        )
        if not residual:
            self.residual = None
        elif c_in == c_out and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(c_in, c_out, 1, (stride, 1)), nn.BatchNorm2d(c_out))
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual is not None:
            y = y + self.residual(x)
        return torch.relu(y)


class STGCN(nn.Module):
    """[N, T, M, V, C] skeletons (M bodies, V = 25 joints, C = xyz) -> STGCNOutput."""

    def __init__(self, cfg: STGCNConfig | None = None, in_channels: int = 3, num_joints: int = NUM_JOINTS):
        super().__init__()
        cfg = cfg or STGCNConfig()
        cfg.validate()
        self.cfg = cfg
        A = torch.tensor(normalize(partition(cfg.partition, num_joints)), dtype=torch.float32)
        self.data_bn = nn.BatchNorm1d(in_channels * num_joints)
        units, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(zip(cfg.channels, cfg.strides)):
            units.append(STGCNUnit(c_in, c_out, A, stride, cfg.temporal_kernel, cfg.dropout, cfg.edge_importance, residual=i > 0))
            c_in = c_out
        self.units = nn.ModuleList(units)
        self.out_dim = c_in

    def frame_mask(self, x: torch.Tensor) -> torch.Tensor:
        """[N, T, M, V, C] -> [N, T'] valid frames at the output's temporal resolution."""
        mask = (x != 0).flatten(2).any(-1)
        for unit in self.units:
            mask = mask[:, :: unit.stride]
        return mask

    def forward(self, x: torch.Tensor) -> STGCNOutput:
        n, t, m, v, c = x.shape
        present = (x != 0).flatten(3).any(-1).any(1)  # [N, M] bodies that appear at all
        y = x.permute(0, 2, 3, 4, 1).reshape(n * m, v * c, t)
        y = self.data_bn(y).view(n * m, v, c, t).permute(0, 2, 3, 1)  # [N*M, C, T, V]
        for unit in self.units:
            y = unit(y)
        _, c2, t2, _ = y.shape
        y = y.view(n, m, c2, t2, v)
        weights = present.float() / present.float().sum(1, keepdim=True).clamp(min=1)
        features = torch.einsum("nmctv,nm->nctv", y, weights)
        mask = self.frame_mask(x)
        w = mask.float()[:, None, :, None]
        pooled = (features * w).sum((2, 3)) / (w.sum((2, 3)) * v).clamp(min=1)
        return STGCNOutput(features, pooled, mask)
