"""binary_roc_auc: the trapezoidal ROC area from exact counts."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mgenet_mm.evaluation.functional import binary_roc_auc


def test_by_hand():
    # positives 0.9, 0.4; negatives 0.5, 0.1: pairs right (0.9>0.5, 0.9>0.1, 0.4>0.1), wrong
    # (0.4<0.5) -> 3 / 4
    assert binary_roc_auc([1, 0, 1, 0], [0.9, 0.5, 0.4, 0.1]) == 0.75
    # a tie between a positive and a negative counts one half: (1 + 0.5) / 2
    assert binary_roc_auc([1, 1, 0], [0.3, 0.7, 0.3]) == 0.75
    assert binary_roc_auc(np.array([True, False]), [2.0, 1.0]) == 1.0
    assert binary_roc_auc([True, False], [1.0, 2.0]) == 0.0
    assert binary_roc_auc([1, 0, 1, 0], [5.0, 5.0, 5.0, 5.0]) == 0.5


@pytest.mark.parametrize('size,decimals', [(7, 0), (1000, 1), (50000, 3), (200000, None)])
def test_equals_scikit_learn(size, decimals):
    rng = np.random.default_rng(size)
    labels = rng.random(size) < 0.3
    labels[:2] = [True, False]
    scores = rng.normal(size=size) + 0.3 * labels
    if decimals is not None:
        scores = np.round(scores, decimals)  # many ties
    assert abs(binary_roc_auc(labels, scores) - roc_auc_score(labels, scores)) < 1e-12
    # the orientation: 1 - AUC for the negated scores, exactly the same pairs
    assert abs(binary_roc_auc(labels, -scores) - (1 - roc_auc_score(labels, scores))) < 1e-12


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='single class'):
        binary_roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match='NaN'):
        binary_roc_auc([1, 0], [np.nan, 0.2])
    with pytest.raises(ValueError, match='0/1 or bool'):
        binary_roc_auc([2, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match='one length'):
        binary_roc_auc([1, 0, 1], [0.1, 0.2])
