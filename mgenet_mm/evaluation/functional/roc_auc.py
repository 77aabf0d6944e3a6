"""The area under the ROC curve of binary labels, computed exactly from counts.

Every frame-level AUC of the project comes from :func:`binary_roc_auc`. It is the number
``sklearn.metrics.roc_auc_score`` gives (the trapezoidal area under the ROC curve, tied scores
counting one half), computed from integer counts so that the only rounding is the final
division; scikit-learn's float sums agree with it to about 1e-15 (tests compare the two). A
plain function of numpy arrays: importing scikit-learn (over a second, with scipy.stats) is not
needed to evaluate.
"""
from __future__ import annotations

import numpy as np

__all__ = ['binary_roc_auc']


def binary_roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of scores against binary labels (1 or True = positive, higher score = positive).

    With P positives and N negatives, the area is ``sum over score levels s of
    FP(s) * (TP(>s) + TP(s) / 2) / (P N)``, where TP(s) and FP(s) count the positives and
    negatives scored exactly s and TP(>s) the positives scored above s: each (positive, negative)
    pair ranked right counts 1, each tie 1/2. Summed here as the integer ``2 * area * P * N``.

    Args:
        labels (np.ndarray): (F,) 0/1 or bool labels.
        scores (np.ndarray): (F,) scores; NaN is not allowed.

    Returns:
        float: The AUC in [0, 1].

    Raises:
        ValueError: Labels and scores of different lengths, labels other than 0/1, NaN scores,
            or labels of a single class (the AUC is undefined).
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f'binary_roc_auc: labels {labels.shape} and scores {scores.shape} must '
                         'be two 1-d arrays of one length')
    positive = labels.astype(bool)
    if labels.dtype != bool and not np.array_equal(positive, labels):
        raise ValueError('binary_roc_auc: labels must be 0/1 or bool, got values '
                         f'{np.unique(labels)[:5].tolist()}')
    if np.isnan(scores).any():
        raise ValueError(f'binary_roc_auc: {int(np.isnan(scores).sum())} NaN scores')
    num_positive = int(positive.sum())
    num_negative = positive.size - num_positive
    if num_positive == 0 or num_negative == 0:
        raise ValueError('binary_roc_auc: the labels have a single class; the AUC is undefined')
    order = np.argsort(scores, kind='stable')  # ascending
    sorted_scores, sorted_positive = scores[order], positive[order]
    # Last index of each run of equal scores: one ROC point per distinct score.
    ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    positives_upto = np.cumsum(sorted_positive, dtype=np.int64)[ends]  # (L,) TP(<= s)
    positives_at = np.diff(positives_upto, prepend=0)  # (L,) TP(s)
    negatives_at = np.diff(ends + 1 - positives_upto, prepend=0)  # (L,) FP(s)
    # 2 * area * P * N = sum FP(s) * (2 TP(>s) + TP(s)), TP(>s) = P - TP(<=s)
    twice_pairs = int(np.dot(negatives_at, 2 * (num_positive - positives_upto) + positives_at))
    return twice_pairs / (2 * num_positive * num_negative)
