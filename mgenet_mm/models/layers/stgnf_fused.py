"""The fused evaluation pass of the STG-NF flow: the published layout, bit for bit, faster.

In eval mode without autograd, a flow with the published layout (two channels, fixed channel
permutations, one ST-GCN block ``1 -> 2`` per step) on a uniform graph is evaluated here as one
fused computation instead of step by step: :func:`fused_flow_applies` says when,
:func:`fused_flow_forward` computes it. The float32 arithmetic is that of the step-by-step
pass (:class:`~mgenet_mm.models.backbones.stgnf.FlowSequence` over
:class:`~mgenet_mm.models.layers.stgnf_layers.FlowStep`), so latent and nll come out the same
to the bit; the tests compare both.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..utils.graph import uniform_graph_weight
from .stgnf_layers import COUPLING_SCALE_EPS, COUPLING_SCALE_OFFSET, ChannelPermutation, FlowStep

__all__ = ['FUSED_CHUNK', 'FUSED_MIN_BATCH', 'fused_flow_applies', 'fused_flow_forward',
           'temporal_conv_matrix']

# Windows per chunk of the fused inference pass. Its cost is mostly the fixed cost of each of the
# few hundred tensor operations of a chunk, so larger chunks run faster up to about this size
# (measured on 2 CPU cores: 62.7 / 57.2 us a window at 512 / 1,024 with 1 thread, 44.5 / 35.1 us
# with 2; beyond 1,024 the 1-thread time rises again); the numbers do not depend on it.
FUSED_CHUNK = 1024
# Smallest batch for the fused inference pass. For fewer windows the convolution and BLAS
# libraries pick other kernels (e.g. without fused multiply-adds) than the ones the fused pass
# reproduces; such batches are cheap and take the step-by-step path.
FUSED_MIN_BATCH = 16


def _is_fusable_step(step: FlowStep) -> bool:
    """Whether a flow step has the layout that :func:`fused_flow_forward` handles.

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


def temporal_conv_matrix(conv: nn.Conv2d, length: int) -> Optional[torch.Tensor]:
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


def fused_flow_applies(steps: nn.ModuleList, x: torch.Tensor, adjacency: torch.Tensor) -> bool:
    """Whether :func:`fused_flow_forward` computes this forward pass.

    Args:
        steps (nn.ModuleList): The flow steps, in order; they and all their sub-modules must be
            in eval mode (BN with running statistics, no ActNorm initialisation).
        x (torch.Tensor): (B, C, T, V) input.
        adjacency (torch.Tensor): (P, V, V).

    Returns:
        bool: True without autograd, for at least ``FUSED_MIN_BATCH`` windows of two channels,
        published-layout steps (see :func:`_is_fusable_step`) and a uniform graph.
    """
    return (not torch.is_grad_enabled() and x.shape[1] == 2
            and x.shape[0] >= FUSED_MIN_BATCH and x.shape[2] > 0
            and not any(m.training for m in steps.modules())
            and all(_is_fusable_step(step) for step in steps)
            and uniform_graph_weight(adjacency) is not None)


def fused_flow_forward(steps: Sequence[FlowStep], x: torch.Tensor,
                       adjacency: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The flow's forward pass in eval mode on a uniform graph, with the same float32 arithmetic.

    The windows go through all steps in chunks of at most ``FUSED_CHUNK`` (scratch
    buffers reused and small enough to stay in cache), the flow state kept in the output
    ``z`` itself. Per step:

    * ActNorm works in place; the permutation only renames the two channels.
    * The graph convolution with all adjacency entries equal to a gives every joint the
      same ``sum_v a * (w x_v + b)`` (see :meth:`.STGCNBlock._forward_uniform`). Its 1x1
      convolution, one input channel, is one multiply-add per element (as the primitive
      computes it); its joint mixing stays the general path's (2bT, V) x (V, V) product,
      because the published models amplify the rounding of this sum (BN scales up to
      ~240) to ~1e-4 in the latent, and any other summation order would show.
    * BN, ReLU, the temporal convolution and BN run once on (b, 2, T) and are broadcast
      over the joints; the convolution as one small GEMM (:func:`temporal_conv_matrix`).
    * The residual's 1x1 convolution is again one multiply-add per element; ReLU, sigmoid,
      the coupling update and the log of the scale run in place.

    That replaces a dozen convolution calls on (b, 1-2, T, V) data per step by about a
    dozen elementwise passes, each in the general path's memory layout and arithmetic, so
    that latent and nll come out the same to the bit (up to the last bit of a few values
    where vectorised and scalar code of a transcendental function differ).

    Args:
        steps (Sequence[FlowStep]): The flow steps, for which :func:`fused_flow_applies` holds.
        x (torch.Tensor): (B, 2, T, V).
        adjacency (torch.Tensor): (1, V, V), all entries equal.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: z (B, 2, T, V) and the log-det (B,), as the
        step-by-step pass gives them.
    """
    batch, _, length, num_joints = x.shape
    for step in steps:
        step.actnorm._check_ready(x, inverse=False)  # eval mode: raises if not initialised
    # Per step, data-independent: ActNorm constants and the temporal-convolution GEMM.
    constants = []
    for step in steps:
        actnorm, conv = step.actnorm, step.block[0].tcn[2]
        bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(2)
        constants.append((actnorm.bias, torch.exp(actnorm.logs),  # (1, 2, 1, 1) each
                          actnorm.logs.sum() * (length * num_joints),  # as ActNorm.forward
                          step.permutation.indices.tolist(),
                          temporal_conv_matrix(conv, length),
                          bias.repeat_interleave(length)))  # (2,) -> (2T,), c-major
    z = x.new_empty(batch, 2, length, num_joints)
    logdet = x.new_empty(batch)
    # Equal chunks of at most FUSED_CHUNK windows: no small remainder (FUSED_MIN_BATCH).
    num_chunks = -(-batch // FUSED_CHUNK)
    chunk = -(-batch // num_chunks)
    # scratch: 2 x (2, chunk, T, V) floats
    storage = x.new_empty(2, 2 * chunk * length * num_joints)
    for begin in range(0, batch, chunk):
        end = min(begin + chunk, batch)
        logdet[begin:end] = _fused_chunk(steps, x[begin:end], z[begin:end], adjacency,
                                         constants, storage)
    return z, logdet


def _fused_chunk(steps: Sequence[FlowStep], x: torch.Tensor, z: torch.Tensor,
                 adjacency: torch.Tensor, constants: List[tuple],
                 storage: torch.Tensor) -> torch.Tensor:
    """One chunk of :func:`fused_flow_forward`.

    Args:
        steps (Sequence[FlowStep]): The flow steps.
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
    logdet = x.new_zeros(batch)  # accumulated as the step-by-step pass does
    for k, (step, (act_bias, act_factor, actnorm_logdet, indices, matrix, conv_bias)) in \
            enumerate(zip(steps, constants)):
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
            # (2, b, T) -> (b, T, 2) -> (b, 2T): time-major rows, see temporal_conv_matrix
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
        scale.add_(COUPLING_SCALE_OFFSET).sigmoid_().add_(COUPLING_SCALE_EPS)
        other.add_(shift).mul_(scale)  # z2 <- (z2 + shift) * scale
        # log|det| = sum of log(scale) over (T, V), in the general path's layout and
        # reduction so that the nll is the same to the bit
        step_logdet = scale.log_().sum(dim=(1, 2)) + actnorm_logdet + 0.0
        logdet = logdet + step_logdet
    if rows != [0, 1]:
        z.copy_(z[:, rows])  # the flow's channel order
    return logdet
