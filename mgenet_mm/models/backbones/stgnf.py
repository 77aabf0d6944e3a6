"""STG-NF: a spatio-temporal graph normalizing flow over human pose windows.

Re-implementation of the model of Hirschorn & Avidan, "Normalizing Flows for Human Pose Anomaly
Detection" (ICCV 2023), written so that the published checkpoints load with strict key matching
and reproduce the published numbers.

A pose window ``x`` of shape (B, C, T, V) (C = 2 for x, y; V = 18 OpenPose joints) is mapped by
K flow steps to a latent ``z`` of the same shape. Every step is

1. ActNorm: ``y = (x + bias) * exp(logs)`` per channel, log-det ``sum(logs) * T * V``;
2. a channel permutation: reversal (the checkpoints' ``flow_permutation='invcov'``), a random
   shuffle, or a learned invertible 1x1 convolution (LU parametrised);
3. an affine coupling: ``z1, z2 = y[:, :C/2], y[:, C/2:]``; ``h = STGCN(z1)`` (C channels);
   ``shift = h[:, 0::2]``, ``scale = sigmoid(h[:, 1::2] + 2) + 1e-6``;
   ``z2' = (z2 + shift) * scale``, log-det ``sum(log(scale))``.

The prior is N(R, 1) per dimension for normal samples (N(-R, 1) for samples labelled abnormal,
which only the supervised variant uses). The negative log-likelihood is reported in bits per
dimension, ``nll = -(log p(z) + log|det dz/dx|) / (ln 2 * C * T * V)``, and the normality score is
``-nll``.
"""
from __future__ import annotations

import math
import os.path as osp
from argparse import Namespace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import PretrainedInit

__all__ = ['STGNF', 'build_adjacency']

# 18-joint OpenPose layout: 0 nose, 1 neck, 2 r-shoulder, 3 r-elbow, 4 r-wrist, 5 l-shoulder,
# 6 l-elbow, 7 l-wrist, 8 r-hip, 9 r-knee, 10 r-ankle, 11 l-hip, 12 l-knee, 13 l-ankle, 14 r-eye,
# 15 l-eye, 16 r-ear, 17 l-ear. The bones, as (joint, joint) pairs.
OPENPOSE18_BONES: Tuple[Tuple[int, int], ...] = (
    (1, 0), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7),  # head-neck, arms
    (2, 8), (8, 9), (9, 10), (5, 11), (11, 12), (12, 13),  # torso sides, legs
    (0, 14), (14, 16), (0, 15), (15, 17),  # eyes, ears
)
OPENPOSE18_CENTER = 1  # the neck: reference joint of the 'spatial' partition

# Names the official code accepts for its permutations. Anything that is neither 'invconv' nor
# 'shuffle' falls through to channel reversal there, which is how the checkpoints' typo 'invcov'
# ends up meaning plain reversal.
_PERMUTATION_ALIASES = {
    'reverse': 'reverse',
    'invcov': 'reverse',
    'shuffle': 'shuffle',
    'inv1x1': 'inv1x1',
    'invconv': 'inv1x1',
}

# Variance floor inside the Gaussian log-density. The official implementation adds it; keeping it
# keeps the reported nll identical to the published numbers.
_PRIOR_VAR_EPS = 1e-6
# Added to sigmoid(...) so that the coupling scale (and its log) never reaches 0.
_SCALE_EPS = 1e-6
# Offset inside the sigmoid: an untrained coupling starts close to the identity (sigmoid(2)=0.88).
_SCALE_OFFSET = 2.0
# Largest spread of adjacency entries for which the graph counts as uniform (see
# uniform_graph_weight): float32 copies of one float64 value are exactly equal.
_UNIFORM_GRAPH_ATOL = 1e-12
# Windows per chunk of the fused inference pass: its working set (a few MB) stays in cache.
_FUSED_CHUNK = 512
# Smallest batch for the fused inference pass. For fewer windows the convolution and BLAS
# libraries pick other kernels (e.g. without fused multiply-adds) than the ones the fused pass
# reproduces; such batches are cheap and take the step-by-step path.
_FUSED_MIN_BATCH = 16


# --------------------------------------------------------------------------------------------
# Graph
# --------------------------------------------------------------------------------------------
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
    joints, the same for every joint, which :meth:`STGCNBlock._forward_uniform` and
    :meth:`FlowSequence._forward_fused` exploit.

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


# --------------------------------------------------------------------------------------------
# Joint-constant tensors
# --------------------------------------------------------------------------------------------
def _batch_norm_constant_over_joints(bn: nn.BatchNorm2d, x: torch.Tensor,
                                     num_joints: int) -> torch.Tensor:
    """``bn(x.expand(B, C, T, num_joints))[..., :1]``, computed on x alone.

    For a tensor that is constant along the joint axis, the per-channel mean and the biased
    variance over (B, T, V) equal those over (B, T): every value is repeated V times in the sums
    and the count is V times larger. So normalising x with its own batch statistics, or with the
    running ones, gives the expanded result. Only the running variance update differs: it uses
    the unbiased estimate ``var * n / (n - 1)`` with the expanded count ``n = B * T * V``, which
    is applied here by hand, as ``nn.BatchNorm2d.forward`` would.

    Args:
        bn (nn.BatchNorm2d): The normalisation.
        x (torch.Tensor): (B, C, T, 1), standing for its expansion to (B, C, T, num_joints).
        num_joints (int): V.

    Returns:
        torch.Tensor: (B, C, T, 1).
    """
    if not (bn.training and bn.track_running_stats):
        return bn(x)  # running statistics, or batch statistics without updates
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:  # cumulative moving average
            factor = 1.0 / float(bn.num_batches_tracked)
    y = F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    if bn.running_mean is not None and bn.running_var is not None:
        with torch.no_grad():
            n = x.numel() // x.shape[1] * num_joints  # values per channel after expansion
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False) * (n / (n - 1))
            bn.running_mean.mul_(1.0 - factor).add_(mean.to(bn.running_mean.dtype),
                                                    alpha=factor)
            bn.running_var.mul_(1.0 - factor).add_(var.to(bn.running_var.dtype), alpha=factor)
    return y


# --------------------------------------------------------------------------------------------
# Coupling network: one ST-GCN block
# --------------------------------------------------------------------------------------------
class GraphConv(nn.Module):
    """Spatial graph convolution: 1x1 conv to ``out * P`` channels, then mix joints per partition.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        num_partitions (int): Number of adjacency partitions P.
    """

    def __init__(self, in_channels: int, out_channels: int, num_partitions: int) -> None:
        super().__init__()
        self.num_partitions = num_partitions
        self.conv = nn.Conv2d(in_channels, out_channels * num_partitions, kernel_size=1)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Apply the graph convolution.

        Args:
            x (torch.Tensor): (B, C_in, T, V).
            adjacency (torch.Tensor): (P, V, V).

        Returns:
            torch.Tensor: (B, C_out, T, V).
        """
        y = self.conv(x)  # (B, P * C_out, T, V)
        b, pc, t, v = y.shape
        # (B, P * C_out, T, V) -> (B, P, C_out, T, V): partition-major channel groups
        y = y.view(b, self.num_partitions, pc // self.num_partitions, t, v)
        # sum over partitions p and source joints v: out[..., w] = sum_p,v y[p, ..., v] A[p, v, w]
        return torch.einsum('bpctv,pvw->bctw', y, adjacency).contiguous()


class STGCNBlock(nn.Module):
    """ST-GCN block: graph conv -> BN -> ReLU -> temporal conv -> BN, (+ residual) -> ReLU.

    On a uniform graph (see :func:`uniform_graph_weight`) the layers between the graph
    convolution and the residual run on one joint instead of all V, with the same result (see
    :meth:`_forward_uniform`); ``uniform_shortcut = False`` forces the general computation.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        temporal_kernel (int): Odd temporal kernel size (zero padded to keep T).
        num_partitions (int): Number of adjacency partitions.
        residual (bool): Add a residual branch (identity when shapes agree, else 1x1 conv + BN).
    """

    def __init__(self, in_channels: int, out_channels: int, temporal_kernel: int,
                 num_partitions: int, residual: bool = True) -> None:
        super().__init__()
        if temporal_kernel % 2 != 1:
            raise ValueError(f'temporal_kernel must be odd to keep T, got {temporal_kernel}')
        self.gcn = GraphConv(in_channels, out_channels, num_partitions)
        # Indices 0..3 are part of the checkpoint key names (tcn.0 BN, tcn.2 conv, tcn.3 BN).
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (1, 1),
                      ((temporal_kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels),
        )
        self.residual: Optional[nn.Module]
        if not residual:
            self.residual = None
        elif in_channels == out_channels:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU()
        # Not a state-dict entry: a switch for the uniform-graph computation (tests compare both).
        self.uniform_shortcut = True

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x (torch.Tensor): (B, C_in, T, V).
            adjacency (torch.Tensor): (P, V, V).

        Returns:
            torch.Tensor: (B, C_out, T, V), non-negative.
        """
        if self.uniform_shortcut and x.shape[0] * x.shape[2] > 1 and self.joint_local_branch() \
                and uniform_graph_weight(adjacency) is not None:
            return self._forward_uniform(x, adjacency)
        y = self.tcn(self.gcn(x, adjacency))
        if self.residual is not None:
            y = y + self.residual(x)
        # The final ReLU makes the coupling output non-negative: shift >= 0 and
        # scale in [sigmoid(2), 1), a property of the published model.
        return self.relu(y)

    def joint_local_branch(self) -> bool:
        """Whether the layers after the graph convolution treat every joint alike.

        True as built: BN (per channel), ReLU and a temporal convolution whose kernel, stride and
        padding along the joint axis are 1, 1 and 0.
        """
        if len(self.tcn) != 4:
            return False
        norm1, relu, conv, norm2 = self.tcn
        return (isinstance(norm1, nn.BatchNorm2d) and isinstance(relu, nn.ReLU)
                and isinstance(conv, nn.Conv2d) and isinstance(conv.padding, tuple)
                and conv.kernel_size[1] == 1 and conv.stride[1] == 1 and conv.padding[1] == 0
                and isinstance(norm2, nn.BatchNorm2d))

    def _forward_uniform(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for a one-partition adjacency whose entries are all equal (to a).

        The graph convolution then gives every target joint w the value
        ``out[.., w] = sum_v a * (W x[.., v] + b)``, which does not depend on w: in float32 too,
        since each w repeats the same products in the same order. BN, ReLU and the temporal
        convolution (kernel (K, 1)) treat the joints alike, so everything up to the second BN
        is computed on one joint, (B, C, T, 1), and broadcast: V times less work, with the same
        numbers (the batch statistics of a joint-constant tensor are those of one joint, see
        :func:`_batch_norm_constant_over_joints`). The graph convolution itself keeps its full
        size so that its rounding is that of the general path: the published models amplify
        it (BN scales up to ~240) to ~1e-4 in the latent.

        Args:
            x (torch.Tensor): (B, C_in, T, V).
            adjacency (torch.Tensor): (1, V, V), all entries equal.

        Returns:
            torch.Tensor: (B, C_out, T, V), equal to the general computation.
        """
        num_joints = x.shape[-1]
        # (B, C_out, T, V) -> (B, C_out, T, 1): all joints hold the same values
        y = self.gcn(x, adjacency)[..., :1].contiguous()
        y = _batch_norm_constant_over_joints(self.tcn[0], y, num_joints)
        y = self.tcn[2](self.tcn[1](y))  # ReLU, temporal conv (K, 1): joints stay separate
        y = _batch_norm_constant_over_joints(self.tcn[3], y, num_joints)
        if self.residual is None:
            y = y.expand(-1, -1, -1, num_joints)  # (B, C_out, T, 1) -> (B, C_out, T, V)
        else:
            y = y + self.residual(x)  # broadcast over V
        return self.relu(y)


# --------------------------------------------------------------------------------------------
# Flow layers
# --------------------------------------------------------------------------------------------
class ActNorm(nn.Module):
    """Per-channel affine normalisation with Glow's data-dependent initialisation.

    ``y = (x + bias) * exp(logs)``. On the first forward pass in training mode, ``bias`` and
    ``logs`` are set so that this batch leaves with zero mean and unit variance per channel. The
    "initialised" state is a plain attribute, not a state-dict entry (the published checkpoints
    have none), so it is set whenever ``bias`` and ``logs`` are loaded from a state dict.

    Args:
        num_channels (int): Number of channels C.
        scale (float): Target standard deviation of the data-dependent init. Defaults to 1.
    """

    def __init__(self, num_channels: int, scale: float = 1.0) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.scale = scale
        self.initialized = False

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set ``bias`` / ``logs`` so that this batch is normalised per channel.

        Args:
            x (torch.Tensor): (B, C, T, V) batch.
        """
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True).sqrt()
        self.bias.copy_(-mean)
        self.logs.copy_(torch.log(self.scale / (std + 1e-6)))
        self.initialized = True

    def _check_ready(self, x: torch.Tensor, inverse: bool) -> None:
        if self.initialized:
            return
        if self.training and not inverse:
            self.initialize(x)
            return
        raise RuntimeError(
            'ActNorm is not initialised: load a checkpoint (which marks it initialised) or run '
            'one forward pass in training mode first.')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Normalise (initialising from x first if needed, in training mode).

        Args:
            x (torch.Tensor): (B, C, T, V).

        Returns:
            tuple[torch.Tensor, torch.Tensor]: y (B, C, T, V) and the log-det, a scalar that
            is the same for every sample.
        """
        self._check_ready(x, inverse=False)
        y = (x + self.bias) * torch.exp(self.logs)
        logdet = self.logs.sum() * (x.shape[2] * x.shape[3])  # each of T*V positions
        return y, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`forward`.

        Args:
            y (torch.Tensor): (B, C, T, V).

        Returns:
            torch.Tensor: x (B, C, T, V).
        """
        self._check_ready(y, inverse=True)
        return y * torch.exp(-self.logs) - self.bias

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        # Also reached by mmengine's own loaders, which walk the modules the same way.
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if prefix + 'bias' in state_dict and prefix + 'logs' in state_dict:
            self.initialized = True


class ChannelPermutation(nn.Module):
    """Fixed channel permutation: reversal, or a random shuffle drawn at construction.

    The shuffle is kept as a persistent buffer so that a saved model restores it (the official
    code re-draws it, so its 'shuffle' checkpoints cannot be reproduced). Reversal is stored as a
    non-persistent buffer, hence adds no checkpoint keys, like the official one.

    Args:
        num_channels (int): Number of channels C.
        shuffle (bool): Random permutation instead of reversal.
    """

    def __init__(self, num_channels: int, shuffle: bool = False) -> None:
        super().__init__()
        if shuffle:
            indices = torch.randperm(num_channels)
        else:
            indices = torch.arange(num_channels - 1, -1, -1)
        self.register_buffer('indices', indices, persistent=shuffle)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Permute the channels.

        Args:
            x (torch.Tensor): (B, C, T, V).

        Returns:
            tuple[torch.Tensor, torch.Tensor]: permuted x and the log-det (0).
        """
        return x[:, self.indices], x.new_zeros(())

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Undo the permutation.

        Args:
            y (torch.Tensor): (B, C, T, V).

        Returns:
            torch.Tensor: (B, C, T, V).
        """
        return y[:, torch.argsort(self.indices)]


class InvertibleConv1x1(nn.Module):
    """Glow's invertible 1x1 convolution in LU form: ``W = P (L + I) (U + diag(sign_s e^log_s))``.

    Parameter / buffer names follow the official implementation (``p``, ``sign_s``, ``lower``,
    ``log_s``, ``upper``), so its 'invconv' checkpoints would load too.

    Args:
        num_channels (int): Number of channels C.
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        w_init = torch.linalg.qr(torch.randn(num_channels, num_channels))[0]  # random rotation
        p, lower, upper = torch.linalg.lu(w_init)
        s = torch.diagonal(upper)
        self.register_buffer('p', p)
        self.register_buffer('sign_s', torch.sign(s))
        self.lower = nn.Parameter(lower)
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))
        self.upper = nn.Parameter(torch.triu(upper, 1))
        # Masks restrict the free parameters to the strict triangles.
        self.register_buffer('l_mask', torch.tril(torch.ones(num_channels, num_channels), -1),
                             persistent=False)
        self.register_buffer('eye', torch.eye(num_channels), persistent=False)

    def weight(self) -> torch.Tensor:
        """Compose the mixing matrix.

        Returns:
            torch.Tensor: W (C, C).
        """
        lower = self.lower * self.l_mask + self.eye
        upper = self.upper * self.l_mask.t() + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mix the channels with W.

        Args:
            x (torch.Tensor): (B, C, T, V).

        Returns:
            tuple[torch.Tensor, torch.Tensor]: y (B, C, T, V) and the log-det
            ``sum(log_s) * T * V`` (a scalar).
        """
        w = self.weight()
        y = torch.einsum('oc,bctv->botv', w, x)
        return y, self.log_s.sum() * (x.shape[2] * x.shape[3])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Undo the mixing with W^-1.

        Args:
            y (torch.Tensor): (B, C, T, V).

        Returns:
            torch.Tensor: (B, C, T, V).
        """
        return torch.einsum('oc,bctv->botv', torch.linalg.inv(self.weight()), y)


class FlowStep(nn.Module):
    """ActNorm -> permutation -> affine coupling with an ST-GCN coupling network.

    Args:
        channels (int): Flow channels C (even).
        hidden_channels (int): 0 for one ST-GCN block ``C/2 -> C``; otherwise two blocks
            ``C/2 -> hidden -> C``.
        temporal_kernel (int): Temporal kernel of the ST-GCN blocks.
        num_partitions (int): Number of adjacency partitions.
        permutation (str): ``'reverse'``, ``'shuffle'`` or ``'inv1x1'`` (canonical names).
        first (bool): First step of the flow: its ST-GCN blocks have no residual branch.
    """

    def __init__(self, channels: int, hidden_channels: int, temporal_kernel: int,
                 num_partitions: int, permutation: str, first: bool) -> None:
        super().__init__()
        self.channels = channels
        self.actnorm = ActNorm(channels)
        # The attribute name is part of the checkpoint keys for 'inv1x1' (official 'invconv').
        if permutation == 'inv1x1':
            self.invconv = InvertibleConv1x1(channels)
            self._permutation_name = 'invconv'
        else:
            self.permute = ChannelPermutation(channels, shuffle=(permutation == 'shuffle'))
            self._permutation_name = 'permute'
        half = channels // 2
        widths = [half, channels] if hidden_channels == 0 else [half, hidden_channels, channels]
        self.block = nn.ModuleList(
            STGCNBlock(c_in, c_out, temporal_kernel, num_partitions, residual=not first)
            for c_in, c_out in zip(widths[:-1], widths[1:]))

    @property
    def permutation(self) -> nn.Module:
        """The permutation layer (reversal / shuffle / invertible 1x1 conv)."""
        return getattr(self, self._permutation_name)

    def _shift_scale(self, z1: torch.Tensor,
                     adjacency: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = z1
        for block in self.block:
            h = block(h, adjacency)  # (B, C, T, V) after the last block
        # Interleaved split: even channels shift, odd channels scale (for C = 2: 0 and 1).
        shift = h[:, 0::2]
        scale = torch.sigmoid(h[:, 1::2] + _SCALE_OFFSET) + _SCALE_EPS
        return shift, scale

    def forward(self, x: torch.Tensor,
                adjacency: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Apply the step.

        Args:
            x (torch.Tensor): (B, C, T, V).
            adjacency (torch.Tensor): (P, V, V).

        Returns:
            tuple[torch.Tensor, torch.Tensor]: z (B, C, T, V) and the log-det (B,).
        """
        y, logdet_norm = self.actnorm(x)
        y, logdet_perm = self.permutation(y)
        half = self.channels // 2
        z1, z2 = y[:, :half], y[:, half:]  # conditioning half, transformed half
        shift, scale = self._shift_scale(z1, adjacency)
        z2 = (z2 + shift) * scale
        logdet = torch.log(scale).sum(dim=(1, 2, 3)) + logdet_norm + logdet_perm
        return torch.cat((z1, z2), dim=1), logdet

    def inverse(self, z: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`forward`.

        Args:
            z (torch.Tensor): (B, C, T, V).
            adjacency (torch.Tensor): (P, V, V).

        Returns:
            torch.Tensor: x (B, C, T, V).
        """
        half = self.channels // 2
        z1, z2 = z[:, :half], z[:, half:]
        shift, scale = self._shift_scale(z1, adjacency)  # z1 passed through unchanged
        y = torch.cat((z1, z2 / scale - shift), dim=1)
        y = self.permutation.inverse(y)
        return self.actnorm.inverse(y)


def _is_fusable_step(step: FlowStep) -> bool:
    """Whether a flow step has the layout that :meth:`FlowSequence._forward_fused` handles.

    That is the published one: two channels, a fixed channel permutation, one ST-GCN block
    ``1 -> 2`` whose layers after the graph convolution treat the joints alike, ReLUs, BNs with
    running statistics, and no residual or a 1x1 convolution + BN residual.
    """
    if step.channels != 2 or not isinstance(step.permutation, ChannelPermutation) \
            or len(step.block) != 1:
        return False
    block = step.block[0]
    conv = block.gcn.conv
    if not (block.uniform_shortcut and block.joint_local_branch()
            and block.gcn.num_partitions == 1 and isinstance(block.relu, nn.ReLU)
            and isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1)
            and (conv.in_channels, conv.out_channels) == (1, 2)):
        return False
    norms = [block.tcn[0], block.tcn[3]]
    residual = block.residual
    if residual is not None:
        if not (isinstance(residual, nn.Sequential) and len(residual) == 2
                and isinstance(residual[0], nn.Conv2d) and residual[0].kernel_size == (1, 1)
                and (residual[0].in_channels, residual[0].out_channels) == (1, 2)
                and isinstance(residual[1], nn.BatchNorm2d)):
            return False
        norms.append(residual[1])
    # Running statistics: without them BN would normalise each chunk with its own statistics.
    return all(bn.running_mean is not None and bn.running_var is not None for bn in norms)


def _pointwise_1_to_2(conv: nn.Conv2d, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution from one to two channels as one multiply-add per element.

    ``out[c] = b_c + w_c * x`` evaluated as a fused multiply-add, which is what the convolution
    primitive computes for one input channel (batches of more than one window): the same
    numbers, without its setup cost.

    Args:
        conv (nn.Conv2d): 1x1 convolution, 1 -> 2 channels.
        x (torch.Tensor): Single-channel data of any shape S.
        out (torch.Tensor): (2, *S) destination, output channel first.

    Returns:
        torch.Tensor: ``out``.
    """
    weight = conv.weight.reshape(2).tolist()
    bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(2)
    for c in range(2):
        torch.add(bias[c], x, alpha=weight[c], out=out[c])
    return out


def _temporal_conv_matrix(conv: nn.Conv2d, length: int) -> Optional[torch.Tensor]:
    """A temporal convolution on (b, C, T, 1) as one matrix on time-major flattened inputs.

    ``conv(g)[o, t] = bias[o] + sum_{j, c} W[o, c, j] g[c, t + j - p]``. With the input
    flattened as ``s * C + c`` (time-major) and the output as ``o * T + t``, entry
    ``[s * C + c, o * T + t]`` is ``W[o, c, s - t + p]`` where that index lies in the kernel,
    else 0: a banded block-Toeplitz matrix. A GEMM accumulates its terms in row order, i.e.
    kernel tap by tap and input channel within a tap, the order the convolution primitive uses
    for these shapes, and skipping zeros does not change a sum; so one (b, C*T) x (C*T, O*T)
    product reproduces the convolution (checked against it in the tests).

    Args:
        conv (nn.Conv2d): Kernel (K, 1), stride 1, no dilation or groups, zero padding that
            keeps T.
        length (int): T.

    Returns:
        torch.Tensor | None: (C * T, O * T), or None when ``conv`` is not of that kind.
    """
    kernel = conv.kernel_size[0]
    if not (conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == 'zeros' and isinstance(conv.padding, tuple)
            and conv.padding[0] * 2 == kernel - 1):
        return None
    weight = conv.weight[..., 0]  # (O, C, K, 1) -> (O, C, K)
    out_channels, in_channels, _ = weight.shape
    steps = torch.arange(length, device=weight.device)
    offset = steps[:, None] - steps[None, :] + conv.padding[0]  # (T_in, T_out): kernel tap
    inside = (offset >= 0) & (offset < kernel)
    band = weight[:, :, offset.clamp(0, kernel - 1)] * inside  # (O, C, T_in, T_out)
    # (O, C, T_in, T_out) -> (T_in, C, O, T_out) -> (T_in * C, O * T_out)
    return band.permute(2, 1, 0, 3).reshape(length * in_channels, out_channels * length)


class FlowSequence(nn.Module):
    """K flow steps applied in order (``layers`` is part of the checkpoint key names).

    In eval mode without autograd, with the published layout and a uniform graph, the forward
    pass runs as one fused computation with the same numbers (see :meth:`_forward_fused`);
    ``fused_inference = False`` forces the step-by-step one.
    """

    def __init__(self, steps: Sequence[FlowStep]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(steps)
        # Not a state-dict entry: a switch for the fused inference pass (tests compare both).
        self.fused_inference = True

    def forward(self, x: torch.Tensor,
                adjacency: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Apply all steps.

        Args:
            x (torch.Tensor): (B, C, T, V).
            adjacency (torch.Tensor): (P, V, V).

        Returns:
            tuple[torch.Tensor, torch.Tensor]: z (B, C, T, V) and the summed log-det (B,).
        """
        if self._fused_applies(x, adjacency):
            return self._forward_fused(x, adjacency)
        logdet = x.new_zeros(x.shape[0])
        z = x
        for step in self.layers:
            z, step_logdet = step(z, adjacency)
            logdet = logdet + step_logdet
        return z, logdet

    def inverse(self, z: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Apply the inverse steps in reverse order.

        Args:
            z (torch.Tensor): (B, C, T, V).
            adjacency (torch.Tensor): (P, V, V).

        Returns:
            torch.Tensor: x (B, C, T, V).
        """
        x = z
        for step in reversed(self.layers):
            x = step.inverse(x, adjacency)
        return x

    # ---------------------------------------------------------------- fused inference
    def _fused_applies(self, x: torch.Tensor, adjacency: torch.Tensor) -> bool:
        """Whether :meth:`_forward_fused` computes this forward pass."""
        return (self.fused_inference and not torch.is_grad_enabled() and x.shape[1] == 2
                and x.shape[0] >= _FUSED_MIN_BATCH and x.shape[2] > 0
                and not any(m.training for m in self.modules())
                and all(_is_fusable_step(step) for step in self.layers)
                and uniform_graph_weight(adjacency) is not None)

    def _forward_fused(self, x: torch.Tensor,
                       adjacency: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` in eval mode on a uniform graph, with the same float32 arithmetic.

        The windows go through all steps in chunks of at most ``_FUSED_CHUNK`` (scratch
        buffers reused and small enough to stay in cache), the flow state kept in the output
        ``z`` itself. Per step:

        * ActNorm works in place; the permutation only renames the two channels.
        * The graph convolution with all adjacency entries equal to a gives every joint the
          same ``sum_v a * (w x_v + b)`` (see :meth:`STGCNBlock._forward_uniform`). Its 1x1
          convolution, one input channel, is one multiply-add per element (as the primitive
          computes it); its joint mixing stays the general path's (2bT, V) x (V, V) product,
          because the published models amplify the rounding of this sum (BN scales up to
          ~240) to ~1e-4 in the latent, and any other summation order would show.
        * BN, ReLU, the temporal convolution and BN run once on (b, 2, T) and are broadcast
          over the joints; the convolution as one small GEMM (:func:`_temporal_conv_matrix`).
        * The residual's 1x1 convolution is again one multiply-add per element; ReLU, sigmoid,
          the coupling update and the log of the scale run in place.

        That replaces a dozen convolution calls on (b, 1-2, T, V) data per step by about a
        dozen elementwise passes, each in the general path's memory layout and arithmetic, so
        that latent and nll come out the same to the bit (up to the last bit of a few values
        where vectorised and scalar code of a transcendental function differ).

        Args:
            x (torch.Tensor): (B, 2, T, V).
            adjacency (torch.Tensor): (1, V, V), all entries equal.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: z (B, 2, T, V) and the log-det (B,).
        """
        batch, _, length, num_joints = x.shape
        for step in self.layers:
            step.actnorm._check_ready(x, inverse=False)  # eval mode: raises if not initialised
        # Per step, data-independent: ActNorm constants and the temporal-convolution GEMM.
        constants = []
        for step in self.layers:
            actnorm, conv = step.actnorm, step.block[0].tcn[2]
            bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(2)
            constants.append((actnorm.bias, torch.exp(actnorm.logs),  # (1, 2, 1, 1) each
                              actnorm.logs.sum() * (length * num_joints),  # as ActNorm.forward
                              step.permutation.indices.tolist(),
                              _temporal_conv_matrix(conv, length),
                              bias.repeat_interleave(length)))  # (2,) -> (2T,), c-major
        z = x.new_empty(batch, 2, length, num_joints)
        logdet = x.new_empty(batch)
        # Equal chunks of at most _FUSED_CHUNK windows: no small remainder (_FUSED_MIN_BATCH).
        num_chunks = -(-batch // _FUSED_CHUNK)
        chunk = -(-batch // num_chunks)
        # scratch: 2 x (2, chunk, T, V) floats
        storage = x.new_empty(2, 2 * chunk * length * num_joints)
        for begin in range(0, batch, chunk):
            end = min(begin + chunk, batch)
            logdet[begin:end] = self._fused_chunk(x[begin:end], z[begin:end], adjacency,
                                                  constants, storage)
        return z, logdet

    def _fused_chunk(self, x: torch.Tensor, z: torch.Tensor, adjacency: torch.Tensor,
                     constants: List[tuple], storage: torch.Tensor) -> torch.Tensor:
        """One chunk of :meth:`_forward_fused`.

        Args:
            x (torch.Tensor): (b, 2, T, V) windows.
            z (torch.Tensor): (b, 2, T, V) contiguous destination of the latent.
            adjacency (torch.Tensor): (1, V, V), all entries equal.
            constants (list[tuple]): Per step: ActNorm bias and factor (1, 2, 1, 1) and
                log-det (), the permutation, the temporal-convolution matrix (or None) and its
                bias row (2T,).
            storage (torch.Tensor): (2, N) scratch memory, N >= 2 * b * T * V.

        Returns:
            torch.Tensor: (b,) log-det.
        """
        batch, _, length, num_joints = x.shape
        size = 2 * batch * length * num_joints
        mixed_all = storage[0, :size].view(2 * batch * length, num_joints)
        work = storage[1, :size].view(2, batch, length, num_joints)
        rows = [0, 1]  # z[:, rows[c]] holds flow channel c
        logdet = x.new_zeros(batch)  # accumulated as FlowSequence.forward does
        for k, (step, (act_bias, act_factor, actnorm_logdet, indices, matrix, conv_bias)) in \
                enumerate(zip(self.layers, constants)):
            block = step.block[0]
            if rows != [0, 1]:  # the flow channel held by each row of z
                act_bias, act_factor = act_bias.flip(1), act_factor.flip(1)
            torch.add(x if k == 0 else z, act_bias, out=z)
            z.mul_(act_factor)
            rows = [rows[i] for i in indices]
            cond, other = z[:, rows[0]], z[:, rows[1]]  # z1, z2: (b, T, V) each

            # Graph convolution as in GraphConv, its joint mixing the same matrix product;
            # (2, b, T, V) -> (2*b*T, V) @ (V, V): all columns alike, keep one
            _pointwise_1_to_2(block.gcn.conv, cond, work)
            torch.mm(work.view(-1, num_joints), adjacency[0], out=mixed_all)
            mixed = mixed_all[:, 0].contiguous()  # (2*b*T,): channel-major
            # (2*b*T,) -> (1, 2, b*T, 1): per-channel BN, ReLU
            branch = block.tcn[1](block.tcn[0](mixed.view(1, 2, batch * length, 1)))
            branch = branch.view(2, batch, length)
            if matrix is not None:
                # (2, b, T) -> (b, T, 2) -> (b, 2T): time-major rows, see _temporal_conv_matrix
                rows_in = branch.permute(1, 2, 0).reshape(batch, 2 * length)
                branch = torch.addmm(conv_bias, rows_in, matrix).view(batch, 2, length, 1)
            else:  # (2, b, T) -> (b, 2, T, 1)
                branch = block.tcn[2](branch.permute(1, 0, 2).unsqueeze(-1).contiguous())
            branch = block.tcn[3](branch)  # (b, 2, T, 1)
            # (b, 2, T, 1) -> (2, b, T, 1); contiguous, as strided data would take the scalar
            # (not the vectorised) sigmoid, whose last bit can differ
            branch = branch.transpose(0, 1).contiguous()

            if block.residual is None:
                shift, scale = branch.relu_()  # (b, T, 1) each: the same for every joint
                # sigmoid and log on all (b, T, V) values nevertheless: with fewer than a
                # vector's worth, they would take the scalar code, whose last bit can differ
                scale = work[0].copy_(scale.expand(-1, -1, num_joints))  # (b, T, V)
            else:
                _pointwise_1_to_2(block.residual[0], cond, work)  # (2, b, T, V)
                # (2, b, T, V) -> (1, 2, b*T*V, 1) for the BN (per-channel statistics)
                out = block.residual[1](work.view(1, 2, -1, 1)).view_as(work)
                shift, scale = out.add_(branch).relu_()  # + (2, b, T, 1) broadcast over joints
            scale.add_(_SCALE_OFFSET).sigmoid_().add_(_SCALE_EPS)
            other.add_(shift).mul_(scale)  # z2 <- (z2 + shift) * scale
            # log|det| = sum of log(scale) over (T, V), in the general path's layout and
            # reduction so that the nll is the same to the bit
            step_logdet = scale.log_().sum(dim=(1, 2)) + actnorm_logdet + 0.0
            logdet = logdet + step_logdet
        if rows != [0, 1]:
            z.copy_(z[:, rows])  # the flow's channel order
        return logdet


# --------------------------------------------------------------------------------------------
# Checkpoint helpers
# --------------------------------------------------------------------------------------------
def _load_checkpoint_file(path: str, map_location: Union[str, torch.device] = 'cpu') -> Any:
    """Read a checkpoint file under the project's checkpoint trust policy.

    Local files go through :func:`mgenet_mm._compat.load_checkpoint_file`: weights-only
    unpickling with an allowlist that covers the ``argparse.Namespace`` the official STG-NF
    checkpoints pickle next to their weights, and mmengine's own checkpoints; anything else needs
    ``--trust-checkpoint`` (see :mod:`mgenet_mm._compat`). Non-local paths (http, s3, ...) go
    through mmengine's ``CheckpointLoader`` (the same policy for http).
    """
    from mgenet_mm._compat import load_checkpoint_file
    if osp.isfile(osp.expanduser(path)):
        return load_checkpoint_file(path, map_location=map_location)
    if '://' in path:
        from mmengine.runner.checkpoint import CheckpointLoader
        return CheckpointLoader.load_checkpoint(path, map_location=map_location)
    raise FileNotFoundError(f'checkpoint not found: {path}')


def _select_state_dict(checkpoint: Any, prefix: Optional[str]) -> Dict[str, torch.Tensor]:
    """Pick the weights out of a loaded checkpoint and strip wrapper / sub-module prefixes."""
    if isinstance(checkpoint, Mapping) and 'state_dict' in checkpoint:
        state_dict = checkpoint['state_dict']
    elif isinstance(checkpoint, Mapping) and all(torch.is_tensor(v) for v in checkpoint.values()):
        state_dict = checkpoint  # a bare state dict
    else:
        raise KeyError("checkpoint has no 'state_dict' entry and is not a state dict itself")
    state_dict = dict(state_dict)
    # (Distributed)DataParallel saves every key under 'module.'.
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not state_dict:
            raise KeyError(f'no checkpoint key starts with prefix {prefix!r}')
    return state_dict


def _canonical_permutation(name: str) -> str:
    try:
        return _PERMUTATION_ALIASES[name]
    except KeyError:
        raise ValueError(f'unknown permutation {name!r}; use one of '
                         f'{sorted(_PERMUTATION_ALIASES)}') from None


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
@MODELS.register_module()
class STGNF(BaseModule):
    """STG-NF normalizing flow over pose windows (one level of K flow steps).

    Defaults match the published ShanghaiTech checkpoint (``ShanghaiTech_85_9.tar``). Its
    state dict loads with strict key matching: keys are ``flow.layers.<k>.actnorm.{bias,logs}``,
    ``flow.layers.<k>.block.0.{gcn.conv, tcn.0, tcn.2, tcn.3, residual.0, residual.1}.*`` (no
    ``residual`` in step 0) and the prior buffers ``prior_h``, ``prior_h_normal``,
    ``prior_h_abnormal``.

    Args:
        in_channels (int): Flow channels C (x, y -> 2). Must be even. Inputs may carry one extra
            trailing channel (keypoint confidence), which is dropped. Defaults to 2.
        num_joints (int): Joints V; must be 18 (OpenPose layout). Defaults to 18.
        seg_len (int): Window length T. Defaults to 24.
        num_steps (int): Number of flow steps K. Defaults to 8.
        prior_mean (float): R: the prior is N(R, 1) for normal, N(-R, 1) for abnormal samples.
            Defaults to 3.0.
        permutation (str): ``'reverse'`` (alias ``'invcov'``, the checkpoints' spelling),
            ``'shuffle'`` or ``'inv1x1'`` (alias ``'invconv'``). Defaults to ``'reverse'``.
        strategy (str): Adjacency partitioning (``'uniform'``, ``'distance'``, ``'spatial'``).
            Defaults to ``'uniform'``.
        max_hop (int): Joints within this many hops are connected. Defaults to 8.
        temporal_kernel (int, optional): Temporal kernel of the ST-GCN blocks; ``None`` means
            ``seg_len // 2 + 1`` (13 for T = 24, 9 for T = 16). Must be odd.
        hidden_channels (int): Width of an extra ST-GCN block in the coupling network; 0 (the
            published models) for a single block ``C/2 -> C``. Defaults to 0.
        init_cfg (dict | list[dict], optional): mmengine init config. A ``Pretrained`` entry
            (``checkpoint``, optional ``prefix``) is loaded by :meth:`load_official_checkpoint`,
            i.e. strictly and with ActNorm marked initialised.
    """

    def __init__(self,
                 in_channels: int = 2,
                 num_joints: int = 18,
                 seg_len: int = 24,
                 num_steps: int = 8,
                 prior_mean: float = 3.0,
                 permutation: str = 'reverse',
                 strategy: str = 'uniform',
                 max_hop: int = 8,
                 temporal_kernel: Optional[int] = None,
                 hidden_channels: int = 0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 2 or in_channels % 2:
            raise ValueError(f'in_channels must be even (coupling halves), got {in_channels}')
        if num_steps < 1:
            raise ValueError(f'num_steps must be >= 1, got {num_steps}')
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.seg_len = seg_len
        self.num_steps = num_steps
        self.prior_mean = float(prior_mean)
        self.permutation = _canonical_permutation(permutation)
        self.strategy = strategy
        self.max_hop = max_hop
        self.temporal_kernel = seg_len // 2 + 1 if temporal_kernel is None else temporal_kernel
        self.hidden_channels = hidden_channels

        adjacency = torch.from_numpy(build_adjacency(strategy, max_hop, num_joints)).float()
        # Fixed graph: a buffer so it follows .to(device), not saved (the checkpoints lack it).
        self.register_buffer('adjacency', adjacency, persistent=False)
        self.flow = FlowSequence([
            FlowStep(in_channels, hidden_channels, self.temporal_kernel, adjacency.shape[0],
                     self.permutation, first=(k == 0)) for k in range(num_steps)
        ])
        # Prior parameters as in the checkpoints: (mean, log-std) stacked on the channel axis.
        # 'prior_h' (zeros: N(0, 1)) is used for label 0, '_normal' for +1, '_abnormal' for -1.
        shape = (in_channels, seg_len, num_joints)
        zeros = torch.zeros(shape)
        self.register_buffer('prior_h', torch.zeros(1, 2 * in_channels, seg_len, num_joints))
        self.register_buffer('prior_h_normal', torch.cat((zeros + self.prior_mean, zeros)))
        self.register_buffer('prior_h_abnormal', torch.cat((zeros - self.prior_mean, zeros)))

    # ---------------------------------------------------------------- construction / loading
    @staticmethod
    def official_args_to_kwargs(args: Union[Namespace, Mapping[str, Any]]) -> Dict[str, Any]:
        """Translate the official training arguments into constructor kwargs.

        Args:
            args (Namespace | Mapping): The ``args`` stored in an official checkpoint.

        Returns:
            dict: kwargs for :class:`STGNF` (without ``init_cfg``).
        """
        a = dict(vars(args)) if isinstance(args, Namespace) else dict(args)
        if a.get('L', 1) != 1:
            raise NotImplementedError(f"only one flow level (L=1) is supported, got L={a['L']}")
        if a.get('edge_importance', False):
            raise NotImplementedError('edge importance weighting is not implemented')
        if a.get('confidence', False) or a.get('model_confidence', False):
            raise NotImplementedError('checkpoints trained on (x, y, confidence) are not supported')
        return dict(
            in_channels=2,
            num_joints=18,
            seg_len=int(a['seg_len']),
            num_steps=int(a.get('K', 8)),
            prior_mean=float(a.get('R', 3.0)),
            permutation=a.get('flow_permutation', 'reverse'),
            strategy=a.get('strategy', a.get('adj_strategy', 'uniform')),
            max_hop=int(a.get('max_hop', a.get('max_hops', 8))),
            temporal_kernel=a.get('temporal_kernel', None),
            hidden_channels=int(a.get('hidden_dim', a.get('model_hidden_dim', 0))),
        )

    @classmethod
    def from_official_args(cls, args: Union[Namespace, Mapping[str, Any]],
                           **overrides: Any) -> 'STGNF':
        """Build an (untrained) model with the architecture described by official ``args``.

        Args:
            args (Namespace | Mapping): The ``args`` stored in an official checkpoint.
            **overrides: Constructor kwargs that replace the derived ones.

        Returns:
            STGNF: The new model.
        """
        kwargs = cls.official_args_to_kwargs(args)
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def from_official_checkpoint(cls, path: str, map_location: Union[str, torch.device] = 'cpu',
                                 **overrides: Any) -> 'STGNF':
        """Build the model from an official checkpoint's ``args`` and load its weights strictly.

        The file's ``args`` (an ``argparse.Namespace``) is on the weights-only allowlist of
        :mod:`mgenet_mm._compat`, so official files load without ``--trust-checkpoint``. The
        returned model is in training mode like any new module: call ``.eval()`` for scoring.

        Args:
            path (str): Checkpoint path (e.g. ``ShanghaiTech_85_9.tar``).
            map_location (str | torch.device): Where to put the tensors. Defaults to ``'cpu'``.
            **overrides: Constructor kwargs that replace those derived from ``args``.

        Returns:
            STGNF: The loaded model, ActNorm marked initialised.
        """
        checkpoint = _load_checkpoint_file(path, map_location)
        if not isinstance(checkpoint, Mapping) or 'args' not in checkpoint:
            raise KeyError(f"{path} has no 'args' entry; build STGNF(...) and call "
                           'load_official_checkpoint instead')
        model = cls.from_official_args(checkpoint['args'], **overrides)
        model._load_checkpoint_dict(checkpoint, source=path, strict=True, prefix=None,
                                    check_args=not overrides)
        return model

    def load_official_checkpoint(self, path: str, strict: bool = True,
                                 prefix: Optional[str] = None,
                                 map_location: Union[str, torch.device] = 'cpu',
                                 check_args: bool = True) -> 'STGNF':
        """Load weights from an official STG-NF checkpoint (or any checkpoint of this module).

        Loaded under the checkpoint trust policy of :mod:`mgenet_mm._compat` (official
        checkpoints, with their ``argparse.Namespace`` under ``args``, need no flag). The weights
        are taken from ``checkpoint['state_dict']`` (or the file itself if it is a bare state
        dict). ActNorm layers whose parameters were loaded are marked initialised, so evaluation
        never re-initialises them from data.

        Args:
            path (str): Checkpoint path.
            strict (bool): Raise if keys are missing or unexpected (listing them). With
                ``False`` the mismatches are logged as a warning. Defaults to True.
            prefix (str, optional): Load only keys under this prefix (e.g. ``'backbone.'``),
                with the prefix removed.
            map_location (str | torch.device): Where to put the tensors. Defaults to ``'cpu'``.
            check_args (bool): If the checkpoint carries official ``args``, raise when they
                describe a different architecture than this model. Defaults to True.

        Returns:
            STGNF: ``self``.
        """
        checkpoint = _load_checkpoint_file(path, map_location)
        self._load_checkpoint_dict(checkpoint, source=path, strict=strict, prefix=prefix,
                                   check_args=check_args)
        return self

    def _load_checkpoint_dict(self, checkpoint: Any, source: str, strict: bool,
                              prefix: Optional[str], check_args: bool) -> None:
        if check_args and prefix is None and isinstance(checkpoint, Mapping) \
                and checkpoint.get('args') is not None:
            self._check_official_args(checkpoint['args'], source)
        state_dict = _select_state_dict(checkpoint, prefix)
        # Size mismatches raise inside load_state_dict even with strict=False; key mismatches
        # are reported here with the key names.
        result = self.load_state_dict(state_dict, strict=False)
        if result.missing_keys or result.unexpected_keys:
            message = (f'STGNF checkpoint {source} does not match the model: '
                       f'missing keys {sorted(result.missing_keys)}, '
                       f'unexpected keys {sorted(result.unexpected_keys)}')
            if strict:
                raise RuntimeError(message)
            print_log(message, logger='current', level=30)  # logging.WARNING

    def _check_official_args(self, args: Any, source: str) -> None:
        try:
            expected = self.official_args_to_kwargs(args)
        except (KeyError, TypeError):
            return  # not official STG-NF args
        expected['permutation'] = _canonical_permutation(expected['permutation'])
        if expected['temporal_kernel'] is None:
            expected['temporal_kernel'] = expected['seg_len'] // 2 + 1
        mine = dict(in_channels=self.in_channels, num_joints=self.num_joints,
                    seg_len=self.seg_len, num_steps=self.num_steps, prior_mean=self.prior_mean,
                    permutation=self.permutation, strategy=self.strategy, max_hop=self.max_hop,
                    temporal_kernel=self.temporal_kernel, hidden_channels=self.hidden_channels)
        diff = {k: (mine[k], v) for k, v in expected.items() if mine[k] != v}
        if diff:
            raise ValueError(f'{source} was trained with a different architecture; '
                             f'(model, checkpoint) per setting: {diff}')

    def init_weights(self) -> None:
        """Run mmengine initialisation, loading ``Pretrained`` entries strictly.

        mmengine's own ``Pretrained`` initialiser loads with ``strict=False`` and only logs key
        mismatches; here such entries go through :meth:`load_official_checkpoint` instead
        (``state_dict`` entry, optional ``prefix``, ActNorm marked initialised, mismatches raise).
        """
        if self.is_init:
            super().init_weights()  # mmengine warns about the repeated call
            return
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else (
            [self.init_cfg] if self.init_cfg else [])
        pretrained = [c for c in cfgs if c.get('type') in ('Pretrained', PretrainedInit)]
        if not pretrained:
            super().init_weights()
            return
        others = [c for c in cfgs if c not in pretrained]
        original = self.init_cfg
        self.init_cfg = others or None  # the rest goes through mmengine as usual
        try:
            super().init_weights()
        finally:
            self.init_cfg = original
        for cfg in pretrained:
            self.load_official_checkpoint(cfg['checkpoint'], strict=True,
                                          prefix=cfg.get('prefix'),
                                          map_location=cfg.get('map_location', 'cpu'))

    # ---------------------------------------------------------------- ActNorm state
    @property
    def actnorm_initialized(self) -> bool:
        """Whether every ActNorm layer has its parameters (from data or from a checkpoint)."""
        return all(m.initialized for m in self.modules() if isinstance(m, ActNorm))

    def set_actnorm_initialized(self, value: bool = True) -> None:
        """Mark all ActNorm layers (un)initialised, e.g. after assigning parameters by hand.

        Args:
            value (bool): The new state. Defaults to True.
        """
        for m in self.modules():
            if isinstance(m, ActNorm):
                m.initialized = value

    # ---------------------------------------------------------------- flow
    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f'expected (B, C, T, V) input, got shape {tuple(x.shape)}')
        b, c, t, v = x.shape
        if c == self.in_channels + 1:
            x = x[:, :self.in_channels]  # drop the confidence channel: the flow sees x, y only
        elif c != self.in_channels:
            raise ValueError(f'expected {self.in_channels} (or {self.in_channels + 1} with '
                             f'confidence) channels, got {c}')
        if (t, v) != (self.seg_len, self.num_joints):
            raise ValueError(f'expected T={self.seg_len}, V={self.num_joints}, got T={t}, V={v}')
        return x.to(self.prior_h.dtype)

    def prior(self, batch_size: int,
              labels: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-std of the Gaussian prior per sample.

        Args:
            batch_size (int): B.
            labels (torch.Tensor, optional): (B,) with 1 = normal (mean +R), -1 = abnormal
                (mean -R), anything else mean 0. ``None``: all normal, as the official test does.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: mean and log-std, each (B, C, T, V).
        """
        if labels is None:
            h = self.prior_h_normal.unsqueeze(0).expand(batch_size, -1, -1, -1)  # (B, 2C, T, V)
        else:
            labels = labels.to(self.prior_h.device).view(-1, 1, 1, 1)  # (B,) -> (B, 1, 1, 1)
            h = torch.where(labels == 1, self.prior_h_normal.unsqueeze(0),
                            torch.where(labels == -1, self.prior_h_abnormal.unsqueeze(0),
                                        self.prior_h))  # (B, 2C, T, V)
        return h[:, :self.in_channels], h[:, self.in_channels:]

    def forward(self, x: torch.Tensor,
                labels: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode pose windows.

        Args:
            x (torch.Tensor): (B, C, T, V) normalised windows (x, y), or (B, C+1, T, V) with a
                trailing confidence channel that is ignored.
            labels (torch.Tensor, optional): Prior selection, see :meth:`prior`.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: latent z (B, C, T, V) and nll (B,) in bits per
            dimension; the anomaly-detection normality score is ``-nll``.
        """
        x = self._check_input(x)
        z, logdet = self.flow(x, self.adjacency)
        if labels is None:  # every sample has the normal prior: (C, T, V), broadcast over B
            mean = self.prior_h_normal[:self.in_channels]
            logs = self.prior_h_normal[self.in_channels:]
        else:
            mean, logs = self.prior(x.shape[0], labels)  # (B, C, T, V) each
        # log N(z; mean, exp(logs)^2) summed over (C, T, V):
        # -0.5 * (sum (z - mean)^2 / var + sum (2 logs + log 2 pi)), var = exp(2 logs) + eps
        var = torch.exp(2.0 * logs) + _PRIOR_VAR_EPS
        diff = z - mean
        quadratic = (diff * diff).div_(var).sum(dim=(-3, -2, -1))  # (B,)
        constant = (2.0 * logs + math.log(2.0 * math.pi)).sum(dim=(-3, -2, -1))  # () or (B,)
        log_pz = -0.5 * (quadratic + constant)
        log_px = log_pz + logdet  # change of variables, nats per window
        nll = -log_px / (math.log(2.0) * z[0].numel())  # bits per dimension (C*T*V dims)
        return z, nll

    def normality_score(self, x: torch.Tensor) -> torch.Tensor:
        """Per-window normality score (higher is more normal).

        Args:
            x (torch.Tensor): (B, C, T, V) or (B, C+1, T, V) pose windows.

        Returns:
            torch.Tensor: ``-nll`` (B,).
        """
        return -self.forward(x)[1]

    def latent_features(self, x: torch.Tensor, return_nll: bool = False
                        ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Per-frame skeleton features f_sk from the latent z.

        The flow's latent z (B, C, T, V) is permuted to (B, T, C, V) and flattened to
        (B, T, C*V): feature index ``c * V + v`` holds latent channel c of joint v (for C = 2:
        the first V entries are z channel 0, the next V are channel 1; joints in the 18-joint
        OpenPose order of the input). z channel 0 is the half that the last coupling left
        unchanged, channel 1 the half it transformed; after the channel reversals they are not
        plain x and y.

        Args:
            x (torch.Tensor): (B, C, T, V) or (B, C+1, T, V) pose windows.
            return_nll (bool): Also return the nll (B,) computed in the same pass.

        Returns:
            torch.Tensor | tuple[torch.Tensor, torch.Tensor]: (B, T, C*V) features (and nll).
        """
        z, nll = self.forward(x)
        b, c, t, v = z.shape
        # (B, C, T, V) -> (B, T, C, V) -> (B, T, C*V)
        feats = z.permute(0, 2, 1, 3).reshape(b, t, c * v)
        return (feats, nll) if return_nll else feats

    def reverse(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse pass: map latents back to pose windows.

        Args:
            z (torch.Tensor): (B, C, T, V) latents.

        Returns:
            torch.Tensor: (B, C, T, V) pose windows x with ``forward(x)[0] == z``.
        """
        if z.dim() != 4 or z.shape[1:] != (self.in_channels, self.seg_len, self.num_joints):
            raise ValueError(f'expected (B, {self.in_channels}, {self.seg_len}, '
                             f'{self.num_joints}) latents, got {tuple(z.shape)}')
        return self.flow.inverse(z.to(self.prior_h.dtype), self.adjacency)

    def sample(self, num_samples: int, temperature: float = 1.0,
               labels: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw pose windows: z ~ N(mean, (temperature * std)^2), then :meth:`reverse`.

        Args:
            num_samples (int): B.
            temperature (float): Scales the prior's standard deviation. Defaults to 1.
            labels (torch.Tensor, optional): Prior selection, see :meth:`prior`.
            generator (torch.Generator, optional): Random source.

        Returns:
            torch.Tensor: (B, C, T, V) samples.
        """
        mean, logs = self.prior(num_samples, labels)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device,
                            dtype=mean.dtype)
        return self.reverse(mean + torch.exp(logs) * temperature * noise)
