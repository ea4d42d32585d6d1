"""SC-CLIP's semantic-related masks (Sec. 3.2, Eq. 2): window seeds, cosine K-means, mask fusion.

Batched and vectorised in torch on whatever device the dense tokens are on; the only host syncs
are one per fusion sweep (the transitive merge runs until nothing changes) and one for the number
of masks. Everything here runs without gradients (the masks come from the frozen encoder).

- `window_specs` / `window_seeds`: Eq. 2, the mask seeds C_s: dense tokens averaged in s x s
  windows at stride floor(s/2), for each s in S; a size larger than the patch grid is skipped.
- `spherical_kmeans`: K-means with cosine similarity and a fixed number of iterations, started
  from the seeds, so K = the number of seeds.
- `merge_groups`: mask fusion: masks whose centres have cosine >= delta merge, transitively.
- `semantic_masks`: the whole of SQG's mask side for a batch, per video (`scope="video"`) or over
  the whole batch (`scope="batch"`), compacted to the masks that are present.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as nnf

# Elements of one [chunk, K, K] temporary in the transitive merge (bounds its memory).
_MERGE_CHUNK_ELEMENTS = 1 << 23


def window_specs(grid: tuple[int, int], sizes) -> list[tuple[int, int]]:
    """(size, stride) of each sliding window of Eq. 2 that fits the patch grid."""
    h, w = grid
    return [(s, max(1, s // 2)) for s in sorted(set(int(s) for s in sizes)) if s <= h and s <= w]


def seeds_per_frame(grid: tuple[int, int], sizes) -> int:
    h, w = grid
    return sum(((h - s) // st + 1) * ((w - s) // st + 1) for s, st in window_specs(grid, sizes))


def window_seeds(dense: torch.Tensor, specs: list[tuple[int, int]]) -> torch.Tensor:
    """Eq. 2: dense tokens [B, T, H, W, E] -> seeds C_s [B, T * seeds_per_frame, E].

    Window origins run over I = {0, floor(s/2), 2 floor(s/2), ...} up to H - s (and likewise J),
    each seed the plain mean O[u, v] / s^2 over its s x s window, taken in every frame.
    """
    b, t, h, w, e = dense.shape
    frames = dense.reshape(b * t, h, w, e).permute(0, 3, 1, 2)
    seeds = []
    for size, stride in specs:
        pooled = nnf.avg_pool2d(frames, kernel_size=size, stride=stride)  # [BT, E, h', w']
        seeds.append(pooled.flatten(2).transpose(1, 2).reshape(b, t, -1, e))
    return torch.cat(seeds, dim=2).reshape(b, -1, e)


def spherical_kmeans(tokens: torch.Tensor, centres: torch.Tensor, iters: int):
    """Cosine K-means over groups of tokens, started from `centres`.

    tokens [G, N, E], centres [G, K, E] (both unit-norm). Each iteration assigns every token to
    its most similar centre and moves each centre to the normalised mean of its tokens; a centre
    that wins no token keeps its place. Returns (assign [G, N], centres [G, K, E], counts [G, K])
    with `assign` and `counts` taken against the final centres.
    """
    g, n, e = tokens.shape
    k = centres.shape[1]
    for _ in range(iters):
        assign = torch.bmm(tokens, centres.transpose(1, 2)).argmax(-1)
        sums = torch.zeros(g, k, e, dtype=tokens.dtype, device=tokens.device)
        sums.scatter_add_(1, assign[..., None].expand(-1, -1, e), tokens)
        counts = torch.zeros(g, k, dtype=tokens.dtype, device=tokens.device).scatter_add_(1, assign, torch.ones_like(assign, dtype=tokens.dtype))
        centres = torch.where(counts[..., None] > 0, nnf.normalize(sums, dim=-1), centres)
    assign = torch.bmm(tokens, centres.transpose(1, 2)).argmax(-1)
    counts = torch.zeros(g, k, dtype=torch.long, device=tokens.device).scatter_add_(1, assign, torch.ones_like(assign))
    return assign, centres, counts


def merge_groups(centres: torch.Tensor, present: torch.Tensor, delta: float) -> torch.Tensor:
    """Mask fusion: the connected components of the graph "cos(c_i, c_j) >= delta".

    centres [G, K, E] unit-norm, present [G, K] bool (centres that own tokens; the others take no
    part, so an empty cluster never bridges two masks). Returns root [G, K]: the smallest index in
    each centre's component (absent centres are their own root). Merging is transitive: a chain
    a~b, b~c merges a and c even when cos(a, c) < delta.
    """
    g, k, _ = centres.shape
    sim = torch.bmm(centres, centres.transpose(1, 2))
    linked = (sim >= torch.tensor(delta, dtype=sim.dtype, device=sim.device)) & present[:, :, None] & present[:, None, :]
    roots = []
    chunk = max(1, _MERGE_CHUNK_ELEMENTS // max(k * k, 1))
    for i in range(0, g, chunk):
        roots.append(_components(linked[i : i + chunk]))
    return torch.cat(roots)


def _components(adj: torch.Tensor) -> torch.Tensor:
    """Min-label propagation with pointer jumping: label[i] only decreases and always names a
    node of i's component, so at the fixed point every component carries its smallest index."""
    g, k, _ = adj.shape
    labels = torch.arange(k, device=adj.device).expand(g, k).contiguous()
    while True:
        neighbour_min = torch.where(adj, labels[:, None, :], k).amin(-1)
        new = torch.minimum(labels, neighbour_min)
        new = new.gather(1, new)
        if torch.equal(new, labels):
            return labels
        labels = new


@dataclass
class SemanticMasks:
    """The semantic-related masks M of a batch: one mask per slot g < num[b] of each video.

    slot [B, T, HW]: the mask each token belongs to (every token belongs to exactly one);
    valid [B, G]: which slots hold a mask (videos have different numbers of masks).
    """

    slot: torch.Tensor
    valid: torch.Tensor

    @property
    def num(self) -> torch.Tensor:
        return self.valid.sum(1)

    def onehot(self) -> torch.Tensor:
        """[B, G, T, HW] bool: M as binary masks over T x H x W."""
        g = self.valid.shape[1]
        return nnf.one_hot(self.slot, g).permute(0, 3, 1, 2).bool()


def compact(group: torch.Tensor, num_ids: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per video, renumber the group ids its tokens use to 0..n-1 (in id order).

    group [B, N] ids in [0, num_ids) -> (slot [B, N], valid [B, G]) with G the largest n.
    """
    b = group.shape[0]
    present = torch.zeros(b, num_ids, dtype=torch.bool, device=group.device)
    present.scatter_(1, group, True)
    rank = present.long().cumsum(1) - 1
    slot = rank.gather(1, group)
    counts = present.sum(1)
    g = int(counts.max())
    valid = torch.arange(g, device=group.device)[None, :] < counts[:, None]
    return slot, valid


@torch.no_grad()
def semantic_masks(dense: torch.Tensor, grid: tuple[int, int], specs: list[tuple[int, int]], *,
                   iters: int, delta: float, scope: str = "video") -> SemanticMasks:
    """SQG's masks for dense tokens O [B, T, HW, E] of the frozen encoder.

    scope "video": the T frames of each video are one collection (seeds, K-means and fusion per
    video, K = T * seeds_per_frame). scope "batch": the whole batch is one collection
    (K = B * T * seeds_per_frame), so a video's masks depend on the other videos in its batch.
    """
    b, t, hw, e = dense.shape
    h, w = grid
    with torch.autocast(device_type=dense.device.type, enabled=False):
        tokens = nnf.normalize(dense.float(), dim=-1)
        seeds = nnf.normalize(window_seeds(tokens.reshape(b, t, h, w, e), specs), dim=-1)  # Eq. 2
        k = seeds.shape[1]
        if scope == "batch":
            tokens, seeds = tokens.reshape(1, b * t * hw, e), seeds.reshape(1, b * k, e)
        else:
            tokens = tokens.reshape(b, t * hw, e)
        assign, centres, counts = spherical_kmeans(tokens, seeds, iters)
        root = merge_groups(centres, counts > 0, delta)
        group = root.gather(1, assign).reshape(b, t * hw)
        slot, valid = compact(group, root.shape[1])
    return SemanticMasks(slot.reshape(b, t, hw), valid)
