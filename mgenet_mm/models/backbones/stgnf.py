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

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x (torch.Tensor): (B, C_in, T, V).
            adjacency (torch.Tensor): (P, V, V).

        Returns:
            torch.Tensor: (B, C_out, T, V), non-negative.
        """
        y = self.tcn(self.gcn(x, adjacency))
        if self.residual is not None:
            y = y + self.residual(x)
        # The final ReLU makes the coupling output non-negative: shift >= 0 and
        # scale in [sigmoid(2), 1), a property of the published model.
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


class FlowSequence(nn.Module):
    """K flow steps applied in order (``layers`` is part of the checkpoint key names)."""

    def __init__(self, steps: Sequence[FlowStep]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(steps)

    def forward(self, x: torch.Tensor,
                adjacency: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Apply all steps.

        Args:
            x (torch.Tensor): (B, C, T, V).
            adjacency (torch.Tensor): (P, V, V).

        Returns:
            tuple[torch.Tensor, torch.Tensor]: z (B, C, T, V) and the summed log-det (B,).
        """
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


# --------------------------------------------------------------------------------------------
# Checkpoint helpers
# --------------------------------------------------------------------------------------------
def _load_checkpoint_file(path: str, map_location: Union[str, torch.device] = 'cpu') -> Any:
    """Read a checkpoint file in full (trusted load).

    The official STG-NF checkpoints pickle an ``argparse.Namespace`` (and optimizer state)
    next to the weights, which ``torch.load(weights_only=True)`` refuses. They are therefore
    unpickled with ``weights_only=False``: only point this at files you trust as you would a
    script. Non-local paths (http, s3, ...) go through mmengine's ``CheckpointLoader``.
    """
    if osp.isfile(osp.expanduser(path)):
        return torch.load(osp.expanduser(path), map_location=map_location, weights_only=False)
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

        The file is unpickled in full (``weights_only=False``) because it stores an
        ``argparse.Namespace``; only use trusted files. The returned model is in training mode
        like any new module: call ``.eval()`` for scoring.

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

        Trusted load: the file is unpickled with ``weights_only=False`` because official
        checkpoints pickle an ``argparse.Namespace`` under ``args``. The weights are taken from
        ``checkpoint['state_dict']`` (or the file itself if it is a bare state dict). ActNorm
        layers whose parameters were loaded are marked initialised, so evaluation never
        re-initialises them from data.

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
        mean, logs = self.prior(x.shape[0], labels)
        log_pz = -0.5 * (2.0 * logs + (z - mean) ** 2 / (torch.exp(2.0 * logs) + _PRIOR_VAR_EPS)
                         + math.log(2.0 * math.pi))  # (B, C, T, V)
        log_px = log_pz.sum(dim=(1, 2, 3)) + logdet  # change of variables, nats per window
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
