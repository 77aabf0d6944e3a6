"""The 18-joint OpenPose skeleton as a graph: partitioned adjacency matrices for ST-GCN layers.

:func:`build_adjacency` gives the (P, V, V) adjacency that the STG-NF coupling networks mix
joints with; :func:`uniform_graph_weight` recognises the one-partition graph whose entries are
all equal (the STG-NF default), on which the graph convolution is a mean over the joints and the
faster computations of :mod:`mgenet_mm.models.layers` apply.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = ['OPENPOSE18_BONES', 'OPENPOSE18_CENTER', 'build_adjacency', 'uniform_graph_weight']

# 18-joint OpenPose layout: 0 nose, 1 neck, 2 r-shoulder, 3 r-elbow, 4 r-wrist, 5 l-shoulder,
# 6 l-elbow, 7 l-wrist, 8 r-hip, 9 r-knee, 10 r-ankle, 11 l-hip, 12 l-knee, 13 l-ankle, 14 r-eye,
# 15 l-eye, 16 r-ear, 17 l-ear. The bones, as (joint, joint) pairs.
OPENPOSE18_BONES: Tuple[Tuple[int, int], ...] = (
    (1, 0), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7),  # head-neck, arms
    (2, 8), (8, 9), (9, 10), (5, 11), (11, 12), (12, 13),  # torso sides, legs
    (0, 14), (14, 16), (0, 15), (15, 17),  # eyes, ears
)
OPENPOSE18_CENTER = 1  # the neck: reference joint of the 'spatial' partition

# Largest spread of adjacency entries for which the graph counts as uniform (see
# uniform_graph_weight): float32 copies of one float64 value are exactly equal.
_UNIFORM_GRAPH_ATOL = 1e-12


def _hop_distance(num_nodes: int, bones: Sequence[Tuple[int, int]], max_hop: int) -> np.ndarray:
    """Shortest-path length between every pair of joints, ``inf`` beyond ``max_hop``.

    Args:
        num_nodes (int): Number of joints V.
        bones (Sequence[Tuple[int, int]]): Undirected edges.
        max_hop (int): Largest distance that is resolved.

    Returns:
        np.ndarray: (V, V) float array of hop counts (``inf`` when farther than ``max_hop``).
    """
    link = np.eye(num_nodes, dtype=bool)
    for i, j in bones:
        link[i, j] = link[j, i] = True
    hop = np.full((num_nodes, num_nodes), np.inf)
    reach = np.eye(num_nodes, dtype=bool)  # joints reachable in <= d steps (self loops included)
    hop[reach] = 0
    for d in range(1, max_hop + 1):
        reach = (reach.astype(np.int64) @ link.astype(np.int64)) > 0
        hop[reach & np.isinf(hop)] = d
    return hop


def _normalize_columns(adj: np.ndarray) -> np.ndarray:
    """Right-normalise by in-degree: ``adj @ diag(1 / column_sum)`` (zero columns stay zero)."""
    col_sum = adj.sum(axis=0)
    inv = np.zeros_like(col_sum)
    inv[col_sum > 0] = 1.0 / col_sum[col_sum > 0]
    return adj * inv[None, :]


def build_adjacency(strategy: str = 'uniform', max_hop: int = 8,
                    num_joints: int = 18) -> np.ndarray:
    """Partitioned adjacency of the 18-joint OpenPose skeleton, as used by ST-GCN / STG-NF.

    Joints within ``max_hop`` hops are connected; the matrix is normalised by column sums. With
    the STG-NF defaults (``uniform``, ``max_hop=8``) every joint reaches every other one (the
    skeleton's diameter is 7), so the single partition is ``1/18`` everywhere, i.e. the graph
    convolution averages over all joints.

    Args:
        strategy (str): ``'uniform'`` (one partition), ``'distance'`` (one partition per hop
            distance 0..max_hop) or ``'spatial'`` (per hop: root / centripetal / centrifugal with
            respect to the neck). Defaults to ``'uniform'``.
        max_hop (int): Largest hop distance that is connected. Defaults to 8.
        num_joints (int): Must be 18 (the OpenPose layout). Defaults to 18.

    Returns:
        np.ndarray: (P, V, V) float64 adjacency with P partitions.
    """
    if num_joints != 18:
        raise ValueError(f'STG-NF uses the 18-joint OpenPose skeleton, got num_joints={num_joints}')
    hop = _hop_distance(num_joints, OPENPOSE18_BONES, max_hop)
    norm = _normalize_columns((hop <= max_hop).astype(np.float64))
    if strategy == 'uniform':
        return norm[None]  # (1, V, V)
    if strategy == 'distance':
        return np.stack([np.where(hop == d, norm, 0.0) for d in range(max_hop + 1)])  # (H+1, V, V)
    if strategy == 'spatial':
        # For entry [j, i] (same indexing as the reference): compare how far j and i are from the
        # centre joint. Equal -> root, j farther -> "close" part, j nearer -> "further" part.
        to_center = hop[:, OPENPOSE18_CENTER]
        j_dist, i_dist = to_center[:, None], to_center[None, :]  # broadcast to (V, V)
        parts = []
        for d in range(max_hop + 1):
            at_d = hop == d
            root = np.where(at_d & (j_dist == i_dist), norm, 0.0)
            if d == 0:
                parts.append(root)
                continue
            close = np.where(at_d & (j_dist > i_dist), norm, 0.0)
            further = np.where(at_d & (j_dist < i_dist), norm, 0.0)
            parts.extend([root + close, further])
        return np.stack(parts)  # (2 * max_hop + 1, V, V)
    raise ValueError(f"unknown graph strategy {strategy!r} (use 'uniform', 'distance', 'spatial')")


def uniform_graph_weight(adjacency: torch.Tensor) -> Optional[float]:
    """The common entry of a one-partition adjacency whose entries are all equal.

    Such a graph (the STG-NF default: ``'uniform'`` with ``max_hop`` at least the skeleton's
    diameter of 7 gives ``1/18`` everywhere) turns the graph convolution into a mean over the
    joints, the same for every joint, which
    :meth:`~mgenet_mm.models.layers.stgnf_layers.STGCNBlock._forward_uniform` and
    :func:`~mgenet_mm.models.layers.stgnf_fused.fused_flow_forward` exploit.

    Args:
        adjacency (torch.Tensor): (P, V, V) adjacency.

    Returns:
        float | None: The entry, or None when there are several partitions or the entries differ
        by more than ``1e-12``.
    """
    if adjacency.dim() != 3 or adjacency.shape[0] != 1 or adjacency.numel() == 0:
        return None
    first = adjacency.reshape(-1)[0]
    if bool((adjacency - first).abs().max() > _UNIFORM_GRAPH_ATOL):
        return None
    return float(first)
