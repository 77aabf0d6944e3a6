"""Statistics of memory addressing weights and features, for the level diagnostics.

How sharply does a memory address its items, how many items does it use, how much do windows
differ? These plain functions answer that for tensors the model already computes: the memory
addressing weights W_b, W_s (eq. 7), the BSMM matching weights C_b, C_s (eq. 10), the appearance
features f_u, f_m, how much of the flow's f_sk the RGB student's f_rgb explains, and the
anomaly components. ``tools/analysis/level_diagnostics.py`` feeds them.

Conventions. Weights are (B, ..., N): B windows first, N items last, every row a probability
distribution over the items (a softmax). A *row* is one query: one token of one window for W_b
(B, P, N_b), one window for W_s (B, 1, N_s) and for C_b, C_s (B, N_r). All results are Python
floats computed in float64.
"""
import math
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['max_weight', 'normalised_entropy', 'item_usage', 'mean_pairwise_cosine',
           'mean_dimension_std', 'mean_paired_cosine', 'addressing_stats', 'summary_stats',
           'explained_variance', 'frame_covariance_eigenvalues']


def _rows(weights: Tensor) -> Tensor:
    """(B, ..., N) -> (R, N) float64 rows, R = B * prod(...)."""
    if weights.ndim < 2:
        raise ValueError(f'weights must be (B, ..., N), got shape {tuple(weights.shape)}')
    return weights.detach().double().reshape(-1, weights.shape[-1])


def max_weight(weights: Tensor) -> Tensor:
    """The largest weight of every row (1/N for a uniform row, 1 for a one-hot row).

    Args:
        weights (Tensor): Shape (..., N).

    Returns:
        Tensor: Shape (...,), float64.
    """
    return weights.detach().double().amax(dim=-1)


def normalised_entropy(weights: Tensor) -> Tensor:
    """Entropy of every row divided by its maximum log N: 1 for uniform rows, 0 for one-hot.

    ``0 log 0`` counts as 0. A single item (N = 1) leaves nothing to choose: 0.

    Args:
        weights (Tensor): Shape (..., N), rows summing to 1.

    Returns:
        Tensor: Shape (...,), float64, in [0, 1].
    """
    probabilities = weights.detach().double()
    entropy = -torch.special.xlogy(probabilities, probabilities).sum(dim=-1)
    num_items = weights.shape[-1]
    if num_items < 2:
        return torch.zeros_like(entropy)
    return entropy / math.log(num_items)


def item_usage(weights: Tensor) -> Dict[str, float]:
    """Which items are chosen: each row's argmax counts as one use of that item.

    Args:
        weights (Tensor): Shape (B, ..., N).

    Returns:
        dict[str, float]: ``item_usage``, the fraction of the N items that are the argmax of at
        least one row; ``top_item_share``, the fraction of rows whose argmax is the most chosen
        item (1/N at best, 1 when every row picks the same item).
    """
    rows = _rows(weights)
    counts = torch.bincount(rows.argmax(dim=1), minlength=rows.shape[1])  # (N,)
    return dict(item_usage=float((counts > 0).sum()) / rows.shape[1],
                top_item_share=float(counts.max()) / rows.shape[0])


def mean_pairwise_cosine(features: Tensor) -> float:
    """Mean cosine between the flattened features of every pair of different windows.

    Each window's tensor is flattened into one vector and L2-normalised; the mean over the
    B(B-1) ordered pairs i != j is ``(||sum_i x_i||^2 - sum_i ||x_i||^2) / (B(B-1))``, which
    needs no B x B matrix. An all-zero window has cosine 0 with every other.

    Args:
        features (Tensor): Shape (B, ...), B >= 2.

    Returns:
        float: In [-1, 1]; 1 when all windows are the same up to scale.
    """
    if features.shape[0] < 2:
        raise ValueError('the mean pairwise cosine needs at least two windows, got '
                         f'{features.shape[0]}')
    # (B, ...) -> (B, D): one unit vector per window
    unit = F.normalize(features.detach().double().flatten(1), dim=1)
    total = unit.sum(dim=0).pow(2).sum()
    self_pairs = unit.pow(2).sum()
    num_windows = unit.shape[0]
    return float((total - self_pairs) / (num_windows * (num_windows - 1)))


def mean_dimension_std(features: Tensor) -> float:
    """Mean over dimensions of the standard deviation across windows of the unit features.

    Each window's tensor is flattened and L2-normalised (as in :func:`mean_pairwise_cosine`);
    the population standard deviation of every dimension over the B windows is then averaged
    over the D dimensions. 0 when every window gives the same direction (a collapsed target);
    about ``1 / sqrt(D)`` for directions spread evenly over the sphere (SimSiam's collapse
    check).

    Args:
        features (Tensor): Shape (B, ...), B >= 2.

    Returns:
        float: In [0, 1].
    """
    if features.shape[0] < 2:
        raise ValueError('the spread across windows needs at least two windows, got '
                         f'{features.shape[0]}')
    # (B, ...) -> (B, D): one unit vector per window
    unit = F.normalize(features.detach().double().flatten(1), dim=1)
    return float(unit.std(dim=0, unbiased=False).mean())


def mean_paired_cosine(first: Tensor, second: Tensor) -> float:
    """Mean over windows of the cosine between ``first[b]`` and ``second[b]``, each flattened.

    Args:
        first (Tensor): Shape (B, ...).
        second (Tensor): Same shape as ``first``.

    Returns:
        float: In [-1, 1].
    """
    if first.shape != second.shape:
        raise ValueError(f'shapes differ: {tuple(first.shape)} vs {tuple(second.shape)}')
    # (B, ...) -> (B, D)
    cosine = F.cosine_similarity(first.detach().double().flatten(1),
                                 second.detach().double().flatten(1), dim=1, eps=1e-12)
    return float(cosine.mean())


def addressing_stats(weights: Tensor) -> Dict[str, float]:
    """Everything the diagnostics report about one set of addressing weights.

    Args:
        weights (Tensor): Shape (B, ..., N), rows summing to 1, B >= 2 windows.

    Returns:
        dict[str, float]: ``num_items`` N, ``uniform_weight`` 1/N, ``mean_max_weight`` (mean
        over rows of :func:`max_weight`), ``normalised_entropy`` (mean over rows),
        ``item_usage`` and ``top_item_share`` (:func:`item_usage`), ``window_cosine``
        (:func:`mean_pairwise_cosine` of the windows' whole weight tensors).
    """
    num_items = weights.shape[-1]
    stats = dict(num_items=num_items, uniform_weight=1. / num_items,
                 mean_max_weight=float(max_weight(weights).mean()),
                 normalised_entropy=float(normalised_entropy(weights).mean()))
    stats.update(item_usage(weights))
    stats['window_cosine'] = mean_pairwise_cosine(weights)
    return stats


def summary_stats(values: Tensor) -> Dict[str, float]:
    """Spread of a score over windows: min, median, max and interquartile range.

    Quantiles interpolate linearly between order statistics (numpy's default), so the median of
    an even count is the mean of the two middle values.

    Args:
        values (Tensor): Any shape, at least one value.

    Returns:
        dict[str, float]: ``min``, ``median``, ``max``, ``iqr`` (75th minus 25th percentile).
    """
    flat = values.detach().double().flatten()
    if flat.numel() == 0:
        raise ValueError('summary_stats needs at least one value')
    quartiles = torch.quantile(flat, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return dict(min=float(flat.min()), median=float(quartiles[1]), max=float(flat.max()),
                iqr=float(quartiles[2] - quartiles[0]))


def explained_variance(target: Tensor, prediction: Tensor) -> float:
    """R^2 of a prediction over windows: ``1 - sum (y - y_hat)^2 / sum (y - mean_b y)^2``.

    1 for a perfect prediction, 0 for predicting the mean over the windows, below 0 for worse.
    Used for level 1 with y = f_sk, y_hat = f_rgb: how much of the flow's features the RGB
    student learnt to predict.

    Args:
        target (Tensor): Shape (B, ...), B >= 2, not constant over the windows.
        prediction (Tensor): Same shape.

    Returns:
        float: R^2.
    """
    if target.shape != prediction.shape:
        raise ValueError(f'shapes differ: {tuple(target.shape)} vs {tuple(prediction.shape)}')
    if target.shape[0] < 2:
        raise ValueError(f'R^2 needs at least two windows, got {target.shape[0]}')
    y = target.detach().double()
    total = (y - y.mean(dim=0)).pow(2).sum()
    if not float(total) > 0:
        raise ValueError('the target is constant over the windows: R^2 is undefined')
    return float(1 - (y - prediction.detach().double()).pow(2).sum() / total)


def frame_covariance_eigenvalues(vectors: Tensor) -> Tensor:
    """Eigenvalues, ascending, of the (biased) covariance of the frame vectors of windows.

    Args:
        vectors (Tensor): Shape (B, T, C): C-dimensional vectors of T frames per window.

    Returns:
        Tensor: Shape (C,), float64.
    """
    if vectors.ndim != 3:
        raise ValueError(f'vectors must be (B, T, C), got shape {tuple(vectors.shape)}')
    # (B, T, C) -> (B*T, C): every frame a sample
    frames = vectors.detach().double().reshape(-1, vectors.shape[-1])
    centred = frames - frames.mean(dim=0)
    return torch.linalg.eigvalsh(centred.T @ centred / frames.shape[0])
