"""The folded evaluation pass of the STG-NF flow: the same maths in about half the operations.

:mod:`~mgenet_mm.models.layers.stgnf_fused` reproduces the step-by-step float32 arithmetic to
the bit. This module computes the same function with fewer passes over the data, so its
rounding differs (the ``'fast'`` inference of :class:`~mgenet_mm.models.backbones.STGNF`):

* **ActNorm is never applied to the data.** Each flow channel is kept as ``A * s + B`` with
  per-channel constants (A, B) that absorb every ActNorm and are folded into the next layer
  that reads the channel; with two channels a channel meets at most two ActNorms before a
  coupling rewrites it, so the constants stay well conditioned.
* **The graph convolution is a sum over the joints.** With all adjacency entries equal to a,
  ``sum_v a * (w (A s_v + B) + b) = a w A sum_v s_v + a V (w B + b)``: one reduction of the
  conditioning half, and the first BN folded into that affine map. The rest of the ST-GCN
  branch (ReLU, temporal convolution, second BN folded into it) runs on (b, 2, T).
* **The residual and the coupling are one affine map per element.** The residual's 1x1
  convolution and BN give ``alpha * s + beta``; ``relu(u) + c = max(u + c, c)`` folds the
  sigmoid's offset and the other half's ActNorm offset into it.
* **The log-det takes one logarithm per frame**: ``sum_v log(scale_v) = log(prod_v scale_v)``
  (each scale is at least ``sigmoid(2) > 0.88``, so 18 of them never underflow).
* **No transposes**: each flow channel stays a (b, T, V) array, as in the input; the
  per-frame terms of the coupling broadcast over the joints.

All data-independent constants are folded in float64 (:func:`fast_flow_plan`; the flow keeps
the plan until a weight changes). Compared with the
step-by-step pass the latent differs by rounding amplified through the flow (the published
models' BN scales reach ~240); the tests bound it against a float64 evaluation of the same
steps and against the official reference numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..utils.graph import uniform_graph_weight
from .stgnf_fused import _is_fusable_step, temporal_conv_matrix
from .stgnf_layers import COUPLING_SCALE_EPS, COUPLING_SCALE_OFFSET, FlowStep

__all__ = ['FAST_CHUNK', 'FastFlowPlan', 'fast_flow_applies', 'fast_flow_forward',
           'fast_flow_plan', 'fast_flow_plan_key']

# Windows per chunk: the working set of a chunk, 4 x (b, T, V) float32 (about 7 MB at 1,024),
# against the fixed cost of each of its few dozen operations.
FAST_CHUNK = 1024


@dataclass
class _StepPlan:
    """The folded constants of one flow step (see the module docstring)."""

    cond_row: int  # storage row holding the conditioning half z1
    other_row: int  # storage row holding the transformed half z2
    other_factor: float  # z2 = other_factor * s + other_offset
    other_offset: float
    gcn_factor: torch.Tensor  # (2, 1, 1): first BN(graph conv) = factor * sum_v s + offset
    gcn_offset: torch.Tensor  # (2, 1, 1)
    temporal_matrix: torch.Tensor  # (2T, 2T): temporal conv with the second BN folded in
    temporal_bias: torch.Tensor  # (2T,)
    residual_factor: Optional[Tuple[float, float]]  # residual = factor * s + offset, or None
    residual_offset: Optional[Tuple[float, float]]
    logdet: float  # the ActNorm's log-det, sum(logs) * T * V


@dataclass
class FastFlowPlan:
    """Everything :func:`fast_flow_forward` precomputes from the weights, for one (T, V).

    Attributes:
        steps (list[_StepPlan]): The folded constants of each step.
        rows (list[int]): The storage row of each flow channel after the last step.
        affine (list[tuple[float, float]]): Each flow channel's (A, B) after the last step.
        length (int): T.
    """

    steps: List[_StepPlan]
    rows: List[int]
    affine: List[Tuple[float, float]]
    length: int


def _batch_norm_affine(bn: nn.BatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """An eval-mode BN as ``y = k x + m`` per channel, float64 (k, m) of shape (C,) each."""
    k = 1.0 / torch.sqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        k = k * bn.weight.double()
    m = -bn.running_mean.double() * k
    if bn.bias is not None:
        m = m + bn.bias.double()
    return k, m


def _conv_1_to_2(conv: nn.Conv2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 convolution 1 -> 2 channels as float64 (weight, bias), (2,) each."""
    weight = conv.weight.double().reshape(2)
    bias = conv.bias.double() if conv.bias is not None else weight.new_zeros(2)
    return weight, bias


def fast_flow_applies(steps: nn.ModuleList, x: torch.Tensor, adjacency: torch.Tensor) -> bool:
    """Whether :func:`fast_flow_forward` can compute this forward pass.

    The conditions of the fused pass (see
    :func:`~mgenet_mm.models.layers.stgnf_fused.fused_flow_applies`) except its minimum batch,
    plus a temporal convolution that :func:`temporal_conv_matrix` can express.

    Args:
        steps (nn.ModuleList): The flow steps, in eval mode.
        x (torch.Tensor): (B, C, T, V) input.
        adjacency (torch.Tensor): (P, V, V).

    Returns:
        bool: Whether the folded pass applies.
    """
    return (not torch.is_grad_enabled() and x.dim() == 4 and x.shape[1] == 2
            and x.shape[0] > 0 and x.shape[2] > 0
            and not any(m.training for m in steps.modules())
            and all(_is_fusable_step(step)
                    and temporal_conv_matrix(step.block[0].tcn[2], x.shape[2]) is not None
                    for step in steps)
            and uniform_graph_weight(adjacency) is not None)


def fast_flow_plan_key(steps: nn.ModuleList, x: torch.Tensor,
                       adjacency: torch.Tensor) -> tuple:
    """What a :class:`FastFlowPlan` depends on: every weight's storage and version (an in-place
    change, e.g. an optimiser step or ``load_state_dict``, bumps it), T, V and the graph."""
    tensors = [*steps.parameters(), *steps.buffers(), adjacency]
    return (tuple((t.data_ptr(), t._version) for t in tensors), tuple(x.shape[2:]), x.dtype,
            x.device)


@torch.no_grad()
def fast_flow_plan(steps: Sequence[FlowStep], length: int,
                   adjacency: torch.Tensor) -> FastFlowPlan:
    """Fold every data-independent constant of the flow (float64).

    Args:
        steps (Sequence[FlowStep]): The flow steps, for which :func:`fast_flow_applies` holds.
        length (int): T.
        adjacency (torch.Tensor): (1, V, V), all entries equal.

    Returns:
        FastFlowPlan: The folded constants.
    """
    num_joints = adjacency.shape[-1]
    edge = uniform_graph_weight(adjacency)
    rows = [0, 1]  # storage row of flow channel c
    affine = [(1.0, 0.0), (1.0, 0.0)]  # flow channel c = A * stored + B
    plans = []
    for step in steps:
        factor = torch.exp(step.actnorm.logs.double()).reshape(2).tolist()
        bias = step.actnorm.bias.double().reshape(2).tolist()
        # ActNorm: (A s + B + bias) * f
        affine = [(a * f, (b + c) * f) for (a, b), f, c in zip(affine, factor, bias)]
        indices = step.permutation.indices.tolist()
        rows = [rows[i] for i in indices]
        affine = [affine[i] for i in indices]
        (cond_a, cond_b), (other_a, other_b) = affine
        block = step.block[0]
        weight, conv_bias = _conv_1_to_2(block.gcn.conv)
        k0, m0 = _batch_norm_affine(block.tcn[0])
        # BN0(a * sum_v (w (A s_v + B) + b)) = k0 a w A sum_v s_v + k0 a V (w B + b) + m0
        gcn_factor = k0 * edge * weight * cond_a
        gcn_offset = k0 * edge * num_joints * (weight * cond_b + conv_bias) + m0
        temporal = step.block[0].tcn[2]
        matrix = temporal_conv_matrix(temporal, length).double()  # (2T, 2T), o-major columns
        t_bias = (temporal.bias.double() if temporal.bias is not None
                  else matrix.new_zeros(2))
        k3, m3 = _batch_norm_affine(block.tcn[3])
        # BN3 per output channel o: columns o * T + t
        matrix = matrix * k3.repeat_interleave(length)[None]
        t_bias = (t_bias * k3 + m3).repeat_interleave(length)
        residual_factor = residual_offset = None
        if block.residual is not None:
            r_weight, r_bias = _conv_1_to_2(block.residual[0])
            kr, mr = _batch_norm_affine(block.residual[1])
            # BNr(w (A s + B) + b) = kr w A s + kr (w B + b) + mr
            residual_factor = tuple((kr * r_weight * cond_a).tolist())
            residual_offset = tuple((kr * (r_weight * cond_b + r_bias) + mr).tolist())
        plans.append(_StepPlan(
            cond_row=rows[0], other_row=rows[1], other_factor=other_a, other_offset=other_b,
            gcn_factor=gcn_factor.view(2, 1, 1), gcn_offset=gcn_offset.view(2, 1, 1),
            temporal_matrix=matrix, temporal_bias=t_bias,
            residual_factor=residual_factor, residual_offset=residual_offset,
            logdet=float(step.actnorm.logs.double().sum()) * length * num_joints))
        affine[1] = (1.0, 0.0)  # the coupling writes z2 itself
    return FastFlowPlan(steps=plans, rows=rows, affine=affine, length=length)


def fast_flow_forward(steps: Sequence[FlowStep], x: torch.Tensor, adjacency: torch.Tensor,
                      plan: Optional[FastFlowPlan] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """The flow's forward pass in eval mode on a uniform graph, folded (see the module).

    Args:
        steps (Sequence[FlowStep]): The flow steps, for which :func:`fast_flow_applies` holds.
        x (torch.Tensor): (B, 2, T, V).
        adjacency (torch.Tensor): (1, V, V), all entries equal.
        plan (FastFlowPlan, optional): :func:`fast_flow_plan` of these steps (a few ms to
            build); built here when not given.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: z (B, 2, T, V) and the log-det (B,).
    """
    batch, _, length, num_joints = x.shape
    for step in steps:
        step.actnorm._check_ready(x, inverse=False)  # eval mode: raises if not initialised
    if plan is None:
        plan = fast_flow_plan(steps, length, adjacency)
    elif plan.length != length:
        raise ValueError(f'the plan is for windows of {plan.length} frames, got {length}')
    z = x.new_empty(batch, 2, length, num_joints)
    logdet = x.new_empty(batch)
    num_chunks = -(-batch // FAST_CHUNK)
    chunk = -(-batch // num_chunks)
    # state (2, b, T, V) and two work arrays (b, T, V)
    storage = x.new_empty(4, num_joints * chunk * length)
    for begin in range(0, batch, chunk):
        end = min(begin + chunk, batch)
        logdet[begin:end] = _fast_chunk(plan.steps, x[begin:end], storage)
        state = storage[:2, :num_joints * (end - begin) * length].view(
            2, end - begin, length, num_joints)
        for channel in range(2):
            factor, offset = plan.affine[channel]
            # the stored channel (b, T, V) -> its flow channel
            torch.add(offset, state[plan.rows[channel]], alpha=factor,
                      out=z[begin:end, channel])
    return z, logdet


def _fast_chunk(plans: Sequence[_StepPlan], x: torch.Tensor,
                storage: torch.Tensor) -> torch.Tensor:
    """One chunk of :func:`fast_flow_forward`; the final state is left in ``storage[:2]``.

    Args:
        plans (Sequence[_StepPlan]): The folded steps.
        x (torch.Tensor): (b, 2, T, V) windows.
        storage (torch.Tensor): (4, N) scratch memory, N >= b * T * V.

    Returns:
        torch.Tensor: (b,) log-det.
    """
    batch, _, length, num_joints = x.shape
    size = num_joints * batch * length
    # (4, N) -> 4 x (b, T, V): the two flow channels, then two work arrays
    state = storage[:2, :size].view(2, batch, length, num_joints)
    shift_work = storage[2, :size].view(batch, length, num_joints)
    scale_work = storage[3, :size].view(batch, length, num_joints)
    state.copy_(x.transpose(0, 1))  # (b, 2, T, V) -> (2, b, T, V)
    logdet = x.new_zeros(batch, dtype=torch.float64)
    for plan in plans:
        cond, other = state[plan.cond_row], state[plan.other_row]  # (b, T, V) each
        # Graph convolution + first BN on the joint sum, ReLU: (2, b, T)
        joint_sum = cond.sum(dim=-1)  # (b, T)
        branch = torch.addcmul(plan.gcn_offset, plan.gcn_factor, joint_sum[None]).relu_()
        # (2, b, T) -> (b, T, 2) -> (b, 2T): time-major rows, see temporal_conv_matrix
        rows_in = branch.permute(1, 2, 0).reshape(batch, 2 * length)
        branch = torch.addmm(plan.temporal_bias, rows_in, plan.temporal_matrix)
        # (b, 2T) -> (b, 2, T) -> (2, b, T), contiguous for the broadcasts below
        branch = branch.view(batch, 2, length).transpose(0, 1).float().unsqueeze(-1)
        if plan.residual_factor is None:
            # shift and scale are the same for every joint: (b, T)
            shift = branch[0].relu_().add_(plan.other_offset)
            scale = branch[1].add_(COUPLING_SCALE_OFFSET).clamp_min_(COUPLING_SCALE_OFFSET)
            scale = scale.sigmoid_().add_(COUPLING_SCALE_EPS)
            torch.add(shift, other, alpha=plan.other_factor, out=shift_work)
            torch.mul(shift_work, scale, out=other)
            log_scale = scale.log().sum(dim=(1, 2)) * num_joints  # (b,)
        else:
            shift_factor, scale_factor = plan.residual_factor
            shift_offset, scale_offset = plan.residual_offset
            # z2 + shift = max(alpha s1 + beta + branch + B2, B2) + A2 s2
            torch.add(branch[0].add_(shift_offset + plan.other_offset), cond,
                      alpha=shift_factor, out=shift_work)
            shift_work.clamp_min_(plan.other_offset).add_(other, alpha=plan.other_factor)
            # scale = sigmoid(max(alpha s1 + beta + branch + 2, 2)) + eps
            torch.add(branch[1].add_(scale_offset + COUPLING_SCALE_OFFSET), cond,
                      alpha=scale_factor, out=scale_work)
            scale_work.clamp_min_(COUPLING_SCALE_OFFSET).sigmoid_().add_(COUPLING_SCALE_EPS)
            torch.mul(shift_work, scale_work, out=other)
            # sum over (T, V) of log(scale) = sum over T of log(prod over V)
            log_scale = scale_work.prod(dim=-1).log_().sum(dim=1)  # (b,)
        logdet += log_scale.double() + plan.logdet
    return logdet.to(x.dtype)
