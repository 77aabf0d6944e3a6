"""The level-1 gap whitened by its statistics on normal training windows (beyond eq. 13).

Eq. 13 scores a window by the plain norm of the gap r = f_sk - f_rgb over its T frames. That norm
weighs every direction of the C_mo-dimensional frame vector alike, as if the gap were white on
normal data. On the demo it is not: the RGB student explains almost none of f_sk's variance
(so r is nearly f_sk minus a constant), and on the normal training windows the frame vectors of
r have covariance eigenvalues from about 1e-4 to 10 (docs/benchmark.md). The plain norm is then
ruled by the high-variance directions, while motion anomalies show up in the directions that
normal windows hardly use.

The whitened gap measures r in the units of the normal windows' own spread, a Mahalanobis
distance per frame summed over the window::

    S_mo^w = sqrt( sum_t (r_t - mu)^T P (r_t - mu) ),   P = (Sigma + lambda * tr(Sigma) / C * I)^-1

with mu and Sigma the mean and (biased) covariance of the frame vectors r_t of every normal
training window, and a ridge ``lambda`` relative to the mean eigenvalue (the covariance can be
near-singular). With mu = 0 and P = I it is eq. 13 exactly. The statistics are collected once
after training (:class:`~mgenet_mm.engine.hooks.GapWhiteningHook`) from exact sums, stored in
this module's buffers and saved with the checkpoint, so every later score uses the same numbers.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModule
from mmaction.registry import MODELS
from torch import Tensor

Moments = Tuple[Tensor, Tensor, Tensor]

#: Smallest eigenvalue ratio of a covariance that is inverted.
SINGULAR_RATIO = 1e-12


def gap_moments(residual: Tensor) -> Moments:
    """Exact sums of the frame vectors of a batch of gaps, in float64.

    Args:
        residual (Tensor): (B, T, C) gaps r = f_sk - f_rgb.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``(count, total, outer)``: the number of frame vectors
        (a 0-d tensor), their sum (C,) and the sum of their outer products (C, C). Sums of two
        batches add up to the sums of both.
    """
    if residual.dim() != 3:
        raise ValueError(f'the gap must be (B, T, C), got shape {tuple(residual.shape)}')
    frames = residual.detach().to(torch.float64).reshape(-1, residual.shape[-1])  # (B*T, C)
    if not bool(torch.isfinite(frames).all()):
        raise ValueError('non-finite values in the level-1 gap f_sk - f_rgb')
    return (torch.tensor(frames.shape[0], dtype=torch.float64, device=frames.device),
            frames.sum(0), frames.T @ frames)


def whitening_from_moments(count: Tensor, total: Tensor, outer: Tensor,
                           ridge: float) -> Tuple[Tensor, Tensor]:
    """Mean and regularised precision of the frame vectors whose sums are given.

    Args:
        count (Tensor): Number of frame vectors (0-d).
        total (Tensor): Their sum (C,).
        outer (Tensor): Sum of their outer products (C, C).
        ridge (float): lambda >= 0: ``lambda * tr(Sigma) / C`` is added to the diagonal.

    Returns:
        tuple[Tensor, Tensor]: mean mu (C,) and precision P (C, C), float64.

    Raises:
        ValueError: Fewer than 2 frame vectors, or a covariance that stays singular (all gaps
            equal, or ``ridge`` 0 with too few distinct frames).
    """
    n = float(count)
    if n < 2:
        raise ValueError(f'the gap whitening needs at least 2 frame vectors, got {n:g}')
    mean = total / n
    covariance = outer / n - torch.outer(mean, mean)  # biased: E[r r^T] - mu mu^T
    covariance = (covariance + covariance.T) / 2
    dim = covariance.shape[0]
    scale = float(torch.trace(covariance)) / dim
    if not scale > 0:
        raise ValueError(f'the level-1 gap is constant over the {n:g} calibration frames: '
                         'it cannot be whitened; check the model (is the guidance flow loaded?)')
    regularised = covariance + ridge * scale * torch.eye(dim, dtype=covariance.dtype,
                                                         device=covariance.device)
    eigenvalues, vectors = torch.linalg.eigh(regularised)
    # Below this ratio the inverse is rounding noise (float64 carries ~1e-16 relative).
    if not float(eigenvalues[0]) > SINGULAR_RATIO * float(eigenvalues[-1]):
        raise ValueError(f'the covariance of the level-1 gap over {n:g} frames is singular '
                         f'(eigenvalues {float(eigenvalues[0]):.3g} to '
                         f'{float(eigenvalues[-1]):.3g}); raise motion_whitening.ridge '
                         f'(now {ridge:g})')
    return mean, (vectors / eigenvalues) @ vectors.T  # V diag(1 / e) V^T


def whitened_gap(residual: Tensor, mean: Tensor, precision: Tensor) -> Tensor:
    """S_mo^w per window (see the module): the Mahalanobis norm of the gap over its frames.

    Args:
        residual (Tensor): (B, T, C) gaps r = f_sk - f_rgb.
        mean (Tensor): mu (C,).
        precision (Tensor): P (C, C), symmetric positive definite.

    Returns:
        Tensor: (B,) scores, in the dtype of ``residual``.
    """
    centred = residual.to(precision.dtype) - mean  # (B, T, C)
    squared = torch.einsum('btc,cd,btd->b', centred, precision, centred)  # sum over t
    return squared.clamp_min(0).sqrt().to(residual.dtype)


@MODELS.register_module()
class GapWhitening(BaseModule):
    """Stored statistics of the level-1 gap on normal training windows, and S_mo^w from them.

    Buffers (saved with the checkpoint): ``mean`` (C,), ``precision`` (C, C), both float64, and
    ``num_frames``, how many frame vectors they were fitted on (0 = not fitted).

    Args:
        dim (int): C_mo, the width of f_sk (the recognizer passes the motion head's).
        ridge (float): lambda of the module docstring. Defaults to 1e-3.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self, dim: int, ridge: float = 1e-3,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if dim < 1:
            raise ValueError(f'dim must be >= 1, got {dim}')
        if not ridge >= 0:
            raise ValueError(f'ridge must be >= 0, got {ridge}')
        self.dim = int(dim)
        self.ridge = float(ridge)
        self.register_buffer('mean', torch.zeros(self.dim, dtype=torch.float64))
        self.register_buffer('precision', torch.eye(self.dim, dtype=torch.float64))
        self.register_buffer('num_frames', torch.zeros((), dtype=torch.long))

    @property
    def is_fitted(self) -> bool:
        """Whether the statistics have been fitted (or loaded from a checkpoint)."""
        return bool(self.num_frames.item() > 0)

    @torch.no_grad()
    def fit(self, count: Tensor, total: Tensor, outer: Tensor) -> None:
        """Store mu and P from the sums of :func:`gap_moments` over the normal windows."""
        if total.shape != (self.dim, ) or outer.shape != (self.dim, self.dim):
            raise ValueError(f'moments of width {tuple(total.shape)} for a GapWhitening of '
                             f'dim {self.dim}')
        mean, precision = whitening_from_moments(count, total, outer, self.ridge)
        self.mean.copy_(mean)
        self.precision.copy_(precision)
        self.num_frames.fill_(int(count))

    def forward(self, residual: Tensor) -> Tensor:
        """S_mo^w (B,) of the gaps ``residual`` (B, T, C) with the stored statistics."""
        if residual.dim() != 3 or residual.shape[-1] != self.dim:
            raise ValueError(f'expected a (B, T, {self.dim}) gap, got shape '
                             f'{tuple(residual.shape)}')
        return whitened_gap(residual, self.mean, self.precision)


__all__ = ['GapWhitening', 'gap_moments', 'whitening_from_moments', 'whitened_gap']
