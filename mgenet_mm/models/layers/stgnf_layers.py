"""The layers of the STG-NF flow: ST-GCN coupling network, ActNorm, permutations, flow step.

One flow step of :class:`~mgenet_mm.models.backbones.STGNF` maps (B, C, T, V) pose windows to a
tensor of the same shape with its log-determinant:

1. :class:`ActNorm`: ``y = (x + bias) * exp(logs)`` per channel, log-det ``sum(logs) * T * V``;
2. a channel permutation: reversal (the checkpoints' ``flow_permutation='invcov'``) or a random
   shuffle (:class:`ChannelPermutation`), or a learned :class:`InvertibleConv1x1`;
3. an affine coupling (:class:`FlowStep`): ``z1, z2 = y[:, :C/2], y[:, C/2:]``;
   ``h = STGCN(z1)`` (C channels); ``shift = h[:, 0::2]``,
   ``scale = sigmoid(h[:, 1::2] + 2) + 1e-6``; ``z2' = (z2 + shift) * scale``, log-det
   ``sum(log(scale))``.

Parameter and sub-module names are those of the official implementation, so that its
checkpoints load key for key. On a uniform graph (see
:func:`~mgenet_mm.models.utils.graph.uniform_graph_weight`) :class:`STGCNBlock` computes its
joint-local layers on one joint instead of all V, with the same numbers.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils.graph import uniform_graph_weight

__all__ = [
    'COUPLING_SCALE_EPS', 'COUPLING_SCALE_OFFSET', 'GraphConv', 'STGCNBlock', 'ActNorm',
    'ChannelPermutation', 'InvertibleConv1x1', 'FlowStep'
]

# Added to sigmoid(...) so that the coupling scale (and its log) never reaches 0.
COUPLING_SCALE_EPS = 1e-6
# Offset inside the sigmoid: an untrained coupling starts close to the identity (sigmoid(2)=0.88).
COUPLING_SCALE_OFFSET = 2.0


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
        scale = torch.sigmoid(h[:, 1::2] + COUPLING_SCALE_OFFSET) + COUPLING_SCALE_EPS
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
