"""Eq. 16 of the MGENet paper: one anomaly score from several per-window components.

MGENet scores every window by several branches (``mo`` motion, ``app`` appearance, ``mm``
behaviour-scene mismatch) on unrelated scales. Each component is min-max normalised, then the
components are summed with the configured weights:
``s = sum_c w_c (s_c - low_c) / (high_c - low_c)``.

The ranges ``(low_c, high_c)`` are those of the evaluated set in
:class:`~mgenet_mm.evaluation.VADAUCMetric`; one video scored alone
(:func:`~mgenet_mm.apis.score_video`, the streaming scorer) takes the ranges a test run
recorded, or its own windows'. Both go through :func:`mix_scores`, so that a video scored with
the ranges of a set gets exactly the numbers the metric gave its windows.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ['component_ranges', 'min_max', 'missing_components', 'mix_scores']

ScoreRange = Tuple[float, float]


def min_max(values: np.ndarray, value_range: Optional[ScoreRange] = None) -> np.ndarray:
    """Scale scores to [0, 1] by a range; an empty range (constant component) gives zeros.

    Args:
        values: (N,) scores.
        value_range: ``(low, high)``; default the values' own range, which must be finite.

    Returns:
        np.ndarray: ``(values - low) / (high - low)``, same shape.

    Raises:
        ValueError: Without ``value_range``, the values hold inf or NaN.
    """
    if value_range is None:
        low, high = float(np.min(values)), float(np.max(values))
        if not np.isfinite([low, high]).all():
            raise ValueError('non-finite anomaly scores cannot be min-max normalised')
    else:
        low, high = value_range
    if high == low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def component_ranges(components: Mapping[str, np.ndarray]) -> Dict[str, ScoreRange]:
    """``(min, max)`` of every non-empty component, the ranges :func:`mix_scores` takes.

    Args:
        components: Component name -> (N,) scores.

    Returns:
        dict: Component name -> ``(low, high)`` as Python floats (empty components are left
        out).
    """
    return {name: (float(np.min(values)), float(np.max(values)))
            for name, values in components.items() if np.size(values)}


def missing_components(score_weights: Mapping[str, float],
                       components: Sequence[str]) -> List[str]:
    """Sorted names that carry a weight but are not among ``components``."""
    return sorted(set(score_weights) - set(components))


def mix_scores(components: Mapping[str, np.ndarray],
               score_weights: Optional[Mapping[str, float]],
               ranges: Optional[Mapping[str, ScoreRange]] = None,
               normalize: bool = True) -> np.ndarray:
    """Eq. 16: the weighted sum of the min-max normalised components.

    Components that carry a weight but are absent are left out of the sum (e.g. ``mm`` during
    validation before the BSMM is written); see :func:`missing_components` to report them.

    Args:
        components: Component name -> (N,) anomaly scores.
        score_weights: Component name -> weight. None: the windows must carry exactly one
            component, returned raw (e.g. STG-NF's ``nll``).
        ranges: Component name -> ``(low, high)`` of the normalisation. None: each
            component's own range over ``components`` (the metric's rule over the evaluated
            set), checked to be finite.
        normalize: Min-max normalise each component before weighting.

    Returns:
        np.ndarray: (N,) float64 mixed anomaly scores.

    Raises:
        ValueError: Several components and no ``score_weights``.
        KeyError: No weighted component is present, or ``ranges`` lacks a present one.
    """
    if score_weights is None:
        if len(components) != 1:
            raise ValueError(f'windows carry components {sorted(components)}: set '
                             'score_weights to mix them')
        return np.asarray(next(iter(components.values())), dtype=np.float64)
    present = [name for name in score_weights if name in components]
    if not present:
        raise KeyError(f'score_weights names {sorted(score_weights)}, windows carry '
                       f'{sorted(components)}')
    mixed = np.zeros(len(components[present[0]]), dtype=np.float64)
    for name in present:
        values = np.asarray(components[name], dtype=np.float64)
        if normalize:
            if ranges is None:
                values = min_max(values)
            elif name not in ranges:
                raise KeyError(f'no normalisation range for component {name!r}')
            else:
                values = min_max(values, ranges[name])
        mixed += score_weights[name] * values
    return mixed
