"""The fusion-weight grid: its points, the choice of the best one, the table and bad grids."""
import math

import pytest

from mgenet_mm.evaluation.functional.weight_grid import (check_weight_grid, choose_weights,
                                                         format_weight_grid, weight_grid)


def test_points_are_the_product_the_other_weights_kept() -> None:
    points = weight_grid(dict(mo=1.0, app=0.25, mm=0.1), dict(app=[0, 0.5], mm=[0.1, 1, 2]))
    assert len(points) == 6
    assert points[0] == dict(mo=1.0, app=0.0, mm=0.1)
    assert points[1] == dict(mo=1.0, app=0.0, mm=1.0)  # the last component varies fastest
    assert points[5] == dict(mo=1.0, app=0.5, mm=2.0)
    assert all(point['mo'] == 1.0 for point in points)
    # a grid component the weights do not name joins the mix
    assert weight_grid(dict(mo=1.0), dict(app=[0.3])) == [dict(mo=1.0, app=0.3)]


def test_best_is_the_largest_finite_auc_first_on_ties() -> None:
    assert choose_weights([0.5, 0.7, 0.6]) == 1
    assert choose_weights([0.7, 0.6, 0.7]) == 0
    assert choose_weights([math.nan, 0.4, math.nan]) == 1
    with pytest.raises(ValueError, match='no point of the weight grid'):
        choose_weights([math.nan, math.nan])


@pytest.mark.parametrize('grid, weights, message', [
    ({}, dict(mo=1.0), 'non-empty dict'),
    (dict(app=[0.1]), None, 'set score_weights too'),
    (dict(app=[]), dict(mo=1.0), r"weight_grid\['app'\] must be a non-empty list"),
    (dict(app='0.1'), dict(mo=1.0), r"weight_grid\['app'\] must be a non-empty list"),
    (dict(app=[0.1, -1]), dict(mo=1.0), 'finite numbers >= 0, got -1'),
    (dict(app=[float('inf')]), dict(mo=1.0), 'finite numbers >= 0'),
    (dict(app=[True]), dict(mo=1.0), 'finite numbers >= 0, got True'),
])
def test_bad_grids_are_named(grid, weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_weight_grid(grid, weights)


def test_table_marks_the_best_point() -> None:
    grid = dict(app=[0, 1], mm=[0, 0.5, 2])
    points = [dict(weights=w, micro_auc=auc) for w, auc in
              zip(weight_grid(dict(mo=1.0), grid), [0.70, 0.71, 0.72, 0.69, 0.80, 0.75])]
    lines = format_weight_grid(points, grid).splitlines()
    assert len(lines) == 3 and lines[0].split()[-3:] == ['0', '0.5', '2']
    assert lines[2].split() == ['1', '69.00', '80.00*', '75.00']
    assert '*' not in lines[1]
    single = format_weight_grid(points[:2], dict(mm=[0, 0.5]))
    assert single.splitlines() == ['mm=0: 70.00', 'mm=0.5: 71.00 *']
