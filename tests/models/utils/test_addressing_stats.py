"""Addressing and feature statistics on hand-built weights, against values computed by hand."""
import math

import numpy as np
import pytest
import torch

from mgenet_mm.models.utils.addressing_stats import (addressing_stats, explained_variance,
                                                     frame_covariance_eigenvalues, item_usage,
                                                     max_weight,
                                                     mean_dimension_std, mean_paired_cosine,
                                                     mean_pairwise_cosine, normalised_entropy,
                                                     summary_stats)


def _one_hot(items, num_items: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(items), num_items).float()


def test_uniform_rows():
    # 3 windows x 5 tokens, 8 items, every row uniform
    weights = torch.full((3, 5, 8), 1 / 8)
    stats = addressing_stats(weights)
    assert stats['num_items'] == 8
    assert stats['uniform_weight'] == pytest.approx(0.125)
    assert stats['mean_max_weight'] == pytest.approx(0.125)
    assert stats['normalised_entropy'] == pytest.approx(1.0)
    assert stats['window_cosine'] == pytest.approx(1.0)  # identical windows
    # argmax of a uniform row is its first item: one item used by every row
    assert stats['item_usage'] == pytest.approx(1 / 8)
    assert stats['top_item_share'] == pytest.approx(1.0)


def test_one_hot_rows_usage_and_top_share():
    # 4 windows of 1 row over 4 items, picking items 0, 0, 2, 3: usage 3/4, top share 2/4
    weights = _one_hot([0, 0, 2, 3], 4)[:, None, :]  # (4, 1, 4)
    assert torch.equal(max_weight(weights), torch.ones(4, 1, dtype=torch.float64))
    assert torch.equal(normalised_entropy(weights), torch.zeros(4, 1, dtype=torch.float64))
    assert item_usage(weights) == dict(item_usage=0.75, top_item_share=0.5)
    stats = addressing_stats(weights)
    # pairs (i, j), i != j: only windows 0 and 1 agree (cosine 1), the others are orthogonal
    assert stats['window_cosine'] == pytest.approx(2 / 12)
    # a (B, N) tensor (the BSMM read) is one row per window, same statistics
    assert addressing_stats(weights[:, 0]) == stats


def test_entropy_of_a_hand_computed_row():
    # p = (1/2, 1/4, 1/4, 0): H = 1.5 log 2, log N = log 4 = 2 log 2 -> 0.75; max 0.5
    row = torch.tensor([[0.5, 0.25, 0.25, 0.0]])
    assert float(normalised_entropy(row)) == pytest.approx(0.75)
    assert float(max_weight(row)) == 0.5
    # rows are averaged: with a one-hot row (entropy 0) the mean is 0.375
    both = torch.cat([row, _one_hot([1], 4)])[:, None, :]  # (2, 1, 4)
    stats = addressing_stats(both)
    assert stats['normalised_entropy'] == pytest.approx(0.375)
    assert stats['mean_max_weight'] == pytest.approx(0.75)
    # a single item leaves nothing to choose
    assert float(normalised_entropy(torch.ones(1, 1))) == 0.0


def test_usage_counts_every_token_row():
    # window 0: tokens pick items 0, 1; window 1: tokens pick 1, 1 -> items 0, 1 of 3 used,
    # item 1 chosen by 3 of 4 rows
    weights = torch.stack([_one_hot([0, 1], 3), _one_hot([1, 1], 3)])  # (2, 2, 3)
    assert item_usage(weights) == dict(item_usage=pytest.approx(2 / 3),
                                       top_item_share=pytest.approx(0.75))
    # flattened windows (1,0,0,0,1,0) and (0,1,0,0,1,0): cosine 1/2
    assert mean_pairwise_cosine(weights) == pytest.approx(0.5)


def test_mean_pairwise_cosine_by_hand_and_against_the_gram_matrix():
    # (1, 0), (0, 1), (2, 2): cosines 0, 1/sqrt2, 1/sqrt2 -> mean sqrt2 / 3; scale-free
    features = torch.tensor([[1., 0.], [0., 1.], [2., 2.]])
    assert mean_pairwise_cosine(features) == pytest.approx(math.sqrt(2) / 3)
    # an independent route: the explicit Gram matrix of the flattened, normalised windows
    rng = np.random.default_rng(0)
    many = rng.normal(size=(7, 3, 4))
    unit = many.reshape(7, -1) / np.linalg.norm(many.reshape(7, -1), axis=1, keepdims=True)
    gram = unit @ unit.T
    expected = (gram.sum() - np.trace(gram)) / (7 * 6)
    assert mean_pairwise_cosine(torch.from_numpy(many)) == pytest.approx(expected)
    # opposite windows
    assert mean_pairwise_cosine(torch.tensor([[1., 2.], [-1., -2.]])) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match='two windows'):
        mean_pairwise_cosine(torch.ones(1, 4))


def test_mean_paired_cosine():
    first = torch.tensor([[[1., 0.]], [[1., 1.]]])  # (2, 1, 2)
    second = torch.tensor([[[3., 0.]], [[0., 1.]]])
    # window 0: same direction (1), window 1: 45 degrees (1/sqrt2)
    assert mean_paired_cosine(first, second) == pytest.approx((1 + 1 / math.sqrt(2)) / 2)
    with pytest.raises(ValueError, match='shapes differ'):
        mean_paired_cosine(first, second[:, :, :1])


def test_summary_stats():
    # 1, 2, 3, 4: median 2.5; quartiles 1.75 and 3.25 (linear interpolation) -> IQR 1.5
    assert summary_stats(torch.tensor([4., 1., 3., 2.])) == dict(min=1.0, median=2.5, max=4.0,
                                                                 iqr=1.5)
    values = np.random.default_rng(1).normal(size=101)
    stats = summary_stats(torch.from_numpy(values))
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    assert stats['median'] == pytest.approx(q50) and stats['iqr'] == pytest.approx(q75 - q25)
    assert stats['min'] == values.min() and stats['max'] == values.max()
    with pytest.raises(ValueError, match='at least one'):
        summary_stats(torch.zeros(0))


def test_mean_dimension_std_by_hand():
    # two windows along the axes: each dimension takes 1 and 0 over the windows, std 0.5
    assert mean_dimension_std(torch.tensor([[3., 0.], [0., 2.]])) == pytest.approx(0.5)
    # one direction at different scales: collapsed, 0
    assert mean_dimension_std(torch.tensor([[1., 2.], [2., 4.], [0.5, 1.]])) == pytest.approx(0.)
    # (B, t, C) flattened per window, against numpy
    features = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(0))
    flat = features.reshape(5, 12).double().numpy()
    unit = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    assert mean_dimension_std(features) == pytest.approx(unit.std(axis=0).mean())
    with pytest.raises(ValueError, match='at least two windows'):
        mean_dimension_std(torch.ones(1, 4))


def test_explained_variance_by_hand():
    target = torch.tensor([[1., 2.], [3., 0.], [5., 4.]])
    assert explained_variance(target, target) == 1.0
    mean = target.mean(dim=0, keepdim=True).expand_as(target)
    assert explained_variance(target, mean) == pytest.approx(0.0, abs=1e-12)
    prediction = torch.tensor([[1., 1.], [3., 1.], [4., 4.]])
    # residual sum 1 + 1 + 1 = 3; total: column means 3 and 2 -> (4 + 0 + 4) + (0 + 4 + 4) = 16
    assert explained_variance(target, prediction) == pytest.approx(1 - 3 / 16)
    with pytest.raises(ValueError, match='constant'):
        explained_variance(torch.ones(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match='shapes differ'):
        explained_variance(target, target[:2])


def test_frame_covariance_eigenvalues_pool_every_frame():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 4, 3)) * np.array([1., 2., 0.1])
    expected = np.linalg.eigvalsh(np.cov(vectors.reshape(-1, 3).T, bias=True))
    np.testing.assert_allclose(frame_covariance_eigenvalues(torch.from_numpy(vectors)).numpy(),
                               expected, rtol=1e-10)
    with pytest.raises(ValueError, match=r'\(B, T, C\)'):
        frame_covariance_eigenvalues(torch.ones(3, 4))
