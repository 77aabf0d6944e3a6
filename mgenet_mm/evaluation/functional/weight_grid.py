"""Choosing the fusion weights of eq. 16 on a validation split: a grid and its best point.

The paper gives no procedure for the weights of eq. 16. The benchmark chooses them on its
validation split, never on the test split: one inference pass gives every window's components,
and each point of a grid of weights is then only a mix (:func:`mix_scores`) and an AUC.
:class:`~mgenet_mm.evaluation.VADAUCMetric` evaluates such a grid with ``weight_grid``; this
module holds the grid's points, the choice of the best one and its table.
"""
from __future__ import annotations

import itertools
import math
import numbers
from typing import Any, Dict, List, Mapping, Optional, Sequence

__all__ = ['check_weight_grid', 'choose_weights', 'format_weight_grid', 'weight_grid']


def check_weight_grid(grid: Any, score_weights: Optional[Mapping[str, float]]) -> None:
    """A grid is a non-empty dict of component name -> non-empty list of weights >= 0.

    Args:
        grid: The ``weight_grid`` of a metric.
        score_weights: The metric's ``score_weights``: a grid varies some of them, so they
            must be set.

    Raises:
        ValueError: What is wrong, naming the component.
    """
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f'weight_grid must be a non-empty dict of component name -> list of '
                         f'weights, got {grid!r}')
    if score_weights is None:
        raise ValueError('weight_grid varies the score_weights of eq. 16: set score_weights too '
                         "(e.g. dict(mo=1.0, app=0.25, mm=0.1))")
    for name, values in grid.items():
        if not isinstance(name, str):
            raise ValueError(f'weight_grid: component names are strings, got {name!r}')
        if (isinstance(values, (str, bytes)) or not isinstance(values, Sequence)
                or not values):
            raise ValueError(f'weight_grid[{name!r}] must be a non-empty list of weights, got '
                             f'{values!r}')
        for value in values:
            if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                    or not math.isfinite(value) or value < 0):
                raise ValueError(f'weight_grid[{name!r}]: weights are finite numbers >= 0, '
                                 f'got {value!r}')


def weight_grid(score_weights: Mapping[str, float],
                grid: Mapping[str, Sequence[float]]) -> List[Dict[str, float]]:
    """Every point of the grid: the product of its values, the other weights as given.

    Args:
        score_weights: Component name -> weight; the components the grid does not name keep
            theirs.
        grid: Component name -> the weights to try (checked by :func:`check_weight_grid`).

    Returns:
        list[dict]: One ``score_weights`` per point, the last grid component varying fastest
        (``itertools.product`` order over the grid's keys).
    """
    check_weight_grid(grid, score_weights)
    names = list(grid)
    points = []
    for values in itertools.product(*(grid[name] for name in names)):
        point = {name: float(weight) for name, weight in score_weights.items()}
        point.update({name: float(weight) for name, weight in zip(names, values)})
        points.append(point)
    return points


def choose_weights(aucs: Sequence[float]) -> int:
    """The index of the best point: the largest AUC; on a tie the first in grid order.

    Args:
        aucs: One AUC per grid point (NaN, e.g. a split without anomalies, never wins).

    Raises:
        ValueError: No point has a finite AUC.
    """
    best = None
    for index, auc in enumerate(aucs):
        if math.isfinite(auc) and (best is None or auc > aucs[best]):
            best = index
    if best is None:
        raise ValueError('no point of the weight grid has a finite AUC (does the split hold '
                         'abnormal frames?)')
    return best


def format_weight_grid(rows: Sequence[Mapping[str, Any]], grid: Mapping[str, Sequence[float]],
                       key: str = 'micro_auc') -> str:
    """The grid's AUCs (%) as text: a table for a two-component grid, else one line a point.

    Args:
        rows: One ``dict(weights=..., <key>=...)`` per point, in :func:`weight_grid` order.
        grid: The grid the rows come from.
        key: The AUC shown.
    """
    names = list(grid)
    best = choose_weights([row[key] for row in rows])
    if len(names) == 2:
        first, second = names
        lines = [f'{first} \\ {second}'.ljust(12) +
                 ''.join(f'{value:>8g}' for value in grid[second])]
        width = len(grid[second])
        for i, value in enumerate(grid[first]):
            cells = []
            for j in range(width):
                index = i * width + j
                mark = '*' if index == best else ' '
                cells.append(f'{100 * rows[index][key]:7.2f}{mark}')
            lines.append(f'{value:<12g}' + ''.join(cells))
    else:
        lines = [', '.join(f'{name}={rows[index]["weights"][name]:g}' for name in names) +
                 f': {100 * rows[index][key]:.2f}' + (' *' if index == best else '')
                 for index in range(len(rows))]
    return '\n'.join(lines)
