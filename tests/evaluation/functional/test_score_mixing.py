"""Eq. 16 score mixing: one definition for the metric (set ranges) and one video (fixed ranges)."""
import numpy as np
import pytest

from mgenet_mm.evaluation.functional import (component_ranges, min_max, missing_components,
                                             mix_scores)


def _scores() -> dict:
    rng = np.random.default_rng(3)
    return {'mo': rng.normal(5, 2, 30), 'app': rng.normal(0, 1, 30), 'mm': np.full(30, 0.3)}


def test_mix_by_hand_with_the_set_ranges_and_with_fixed_ones() -> None:
    scores = _scores()
    weights = dict(mo=1.0, app=0.1, mm=0.1)
    mo, app = scores['mo'], scores['app']
    expected = ((mo - mo.min()) / (mo.max() - mo.min())
                + 0.1 * (app - app.min()) / (app.max() - app.min()))  # mm is constant: 0
    np.testing.assert_allclose(mix_scores(scores, weights), expected, rtol=0, atol=1e-12)
    # The recorded ranges of the same set give the same numbers, bit for bit.
    np.testing.assert_array_equal(mix_scores(scores, weights, component_ranges(scores)),
                                  mix_scores(scores, weights))
    wide = {'mo': (0.0, 10.0), 'app': (-5.0, 5.0), 'mm': (0.0, 1.0)}
    np.testing.assert_allclose(mix_scores(scores, weights, wide),
                               mo / 10 + 0.1 * (app + 5) / 10 + 0.1 * 0.3, atol=1e-12)
    raw = mix_scores(scores, dict(mo=2.0), normalize=False)
    np.testing.assert_array_equal(raw, 2.0 * mo)
    assert raw.dtype == np.float64


def test_one_component_is_used_raw_and_absent_ones_are_left_out() -> None:
    nll = np.array([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(mix_scores({'nll': nll}, None), nll)
    scores = _scores()
    del scores['mm']
    weights = dict(mo=1.0, app=0.1, mm=0.1)
    np.testing.assert_array_equal(mix_scores(scores, weights),
                                  mix_scores(scores, dict(mo=1.0, app=0.1)))
    assert missing_components(weights, scores) == ['mm']
    assert missing_components(weights, list(weights)) == []


def test_errors() -> None:
    scores = _scores()
    with pytest.raises(ValueError, match='set score_weights'):
        mix_scores(scores, None)
    with pytest.raises(KeyError, match='score_weights names'):
        mix_scores(scores, dict(other=1.0))
    with pytest.raises(KeyError, match="no normalisation range for component 'app'"):
        mix_scores(scores, dict(mo=1.0, app=0.1), {'mo': (0.0, 1.0)})
    with pytest.raises(ValueError, match='non-finite'):
        mix_scores({'mo': np.array([0.0, np.inf])}, dict(mo=1.0))


def test_min_max_and_ranges() -> None:
    np.testing.assert_allclose(min_max(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(min_max(np.array([2.0, 4.0]), (0.0, 8.0)), [0.25, 0.5])
    np.testing.assert_array_equal(min_max(np.array([1.0, 2.0]), (3.0, 3.0)), [0.0, 0.0])
    ranges = component_ranges({'a': np.array([2.0, -1.0]), 'empty': np.zeros(0)})
    assert ranges == {'a': (-1.0, 2.0)} and type(ranges['a'][0]) is float
