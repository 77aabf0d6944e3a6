"""Clip-level bootstrap of frame AUCs: against sklearn on explicitly resampled frames."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mgenet_mm.evaluation.functional import (clip_bootstrap_aucs, clip_pair_counts, kind_aucs,
                                             resample_clips)

KINDS = {1: 'motion', 2: 'appearance', 3: 'scene'}


def _clips(num_clips, frames=200, seed=0, separation=1.0):
    """Clips with one abnormal stretch each (kind cycling 1..3) every other clip; abnormal
    frames score ``separation`` higher on average."""
    rng = np.random.default_rng(seed)
    scores, labels, kinds = {}, {}, {}
    for i in range(num_clips):
        kind = np.zeros(frames, dtype=np.int64)
        if i % 2:
            start = rng.integers(0, frames // 2)
            kind[start:start + frames // 4] = 1 + (i // 2) % 3
        name = f'{i:02d}_0001'
        kinds[name] = kind
        labels[name] = (kind > 0).astype(np.uint8)
        scores[name] = rng.normal(size=frames) + separation * (kind > 0) + rng.normal()
    return scores, labels, kinds


def _concat(d, names):
    return np.concatenate([d[n] for n in names])


def test_point_is_sklearn_and_per_kind_is_kind_aucs() -> None:
    scores, labels, kinds = _clips(12, frames=50)
    result = clip_bootstrap_aucs(scores, labels, kinds, KINDS, num_resamples=50)
    names = sorted(scores)
    expected = roc_auc_score(_concat(labels, names), _concat(scores, names))
    assert result['micro_auc']['point'] == pytest.approx(expected, abs=1e-12)
    by_kind = kind_aucs(scores, kinds, KINDS)
    for label in KINDS.values():
        assert result[f'micro_auc/{label}']['point'] == pytest.approx(
            by_kind[f'micro_auc/{label}'], abs=1e-12)


def test_pair_counts_by_hand() -> None:
    # Clip 0: positive 0.5, negative 0.5 (a tie); clip 1: positive 2.0, negatives 0.0 and 3.0.
    scores = [np.array([0.5, 0.5]), np.array([2.0, 0.0, 3.0])]
    positive = [np.array([True, False]), np.array([True, False, False])]
    negative = [~p for p in positive]
    pairs = clip_pair_counts(scores, positive, negative)
    # P[0,0]: 0.5 vs 0.5 -> 0.5; P[0,1]: 0.5 vs {0, 3} -> 1; P[1,0]: 2 vs 0.5 -> 1;
    # P[1,1]: 2 vs {0, 3} -> 1.
    np.testing.assert_array_equal(pairs, [[0.5, 1.0], [1.0, 1.0]])


def test_every_resample_equals_sklearn_on_its_frames() -> None:
    scores, labels, kinds = _clips(6, frames=30, seed=3)
    num = 40
    result = clip_bootstrap_aucs(scores, labels, kinds, KINDS, num_resamples=num, seed=7,
                                 return_samples=True)
    names = sorted(scores)
    drawn = resample_clips(len(names), num, seed=7)
    for b in range(num):
        chosen = [names[i] for i in drawn[b]]
        gt, s, k = _concat(labels, chosen), _concat(scores, chosen), _concat(kinds, chosen)
        got = result['micro_auc']['samples'][b]
        if gt.min() == gt.max():
            assert np.isnan(got)
        else:
            assert got == pytest.approx(roc_auc_score(gt, s), abs=1e-12)
        for code, label in KINDS.items():
            key = f'micro_auc/{label}'
            keep = (k == 0) | (k == code)
            got = result[key]['samples'][b]
            if (k == code).any() and (k == 0).any():
                assert got == pytest.approx(roc_auc_score(k[keep] == code, s[keep]), abs=1e-12)
            else:
                assert np.isnan(got)


def test_interval_contains_point_and_is_reproducible() -> None:
    scores, labels, kinds = _clips(20)
    first = clip_bootstrap_aucs(scores, labels, kinds, KINDS, seed=1)
    again = clip_bootstrap_aucs(dict(reversed(list(scores.items()))), labels, kinds, KINDS,
                                seed=1)
    other = clip_bootstrap_aucs(scores, labels, kinds, KINDS, seed=2)
    for key, entry in first.items():
        assert entry['low'] <= entry['point'] <= entry['high'], key
        assert entry['low'] < entry['high'] and entry['level'] == 0.95
        assert entry['num_defined'] + entry['num_skipped'] == 1000
        assert again[key] == entry  # dict order does not matter, the seed decides
    assert other['micro_auc']['low'] != first['micro_auc']['low']


def test_interval_is_the_percentile_interval() -> None:
    scores, labels, _ = _clips(10, frames=40)
    result = clip_bootstrap_aucs(scores, labels, num_resamples=200, level=0.8,
                                 return_samples=True)['micro_auc']
    defined = result['samples'][~np.isnan(result['samples'])]
    assert result['low'] == pytest.approx(np.percentile(defined, 10))
    assert result['high'] == pytest.approx(np.percentile(defined, 90))


def test_interval_narrows_with_more_clips() -> None:
    small = clip_bootstrap_aucs(*_clips(10, seed=5)[:2])['micro_auc']
    large = clip_bootstrap_aucs(*_clips(160, seed=5)[:2])['micro_auc']
    assert large['high'] - large['low'] < 0.5 * (small['high'] - small['low'])


def test_identical_clips_collapse_the_interval() -> None:
    scores, labels, _ = _clips(2, frames=60)
    clip = '01_0001'  # has an abnormal stretch
    copies = {f'{i:02d}_0002': scores[clip] for i in range(8)}
    result = clip_bootstrap_aucs(copies, {n: labels[clip] for n in copies})['micro_auc']
    assert result['low'] == result['point'] == result['high']
    assert result['point'] == pytest.approx(roc_auc_score(labels[clip], scores[clip]))
    assert result['num_skipped'] == 0


def test_one_class_resamples_are_skipped_and_counted() -> None:
    # One all-normal clip and one with both classes: a resample drawing the normal clip twice
    # has no abnormal frame; its AUC is undefined, and it is counted, not scored.
    scores = {'a': np.array([0.0, 1.0, 2.0]), 'b': np.array([0.5, 3.0, 1.5])}
    labels = {'a': np.zeros(3, dtype=np.uint8), 'b': np.array([0, 1, 0], dtype=np.uint8)}
    result = clip_bootstrap_aucs(scores, labels, num_resamples=400, seed=0,
                                 return_samples=True)['micro_auc']
    drawn = resample_clips(2, 400, seed=0)
    only_a = int((drawn == 0).all(axis=1).sum())
    assert 0 < only_a < 400
    assert result['num_skipped'] == only_a and result['num_defined'] == 400 - only_a
    assert np.isnan(result['samples']).sum() == only_a
    # The point estimate uses the set itself: 3.0 beats all 4 negatives.
    assert result['point'] == 1.0
    # Every defined resample ranks b's abnormal frame above everything: the interval is [1, 1].
    assert result['low'] == result['high'] == 1.0


def test_codes_absent_or_without_normal_frames_give_no_key() -> None:
    scores, labels, kinds = _clips(4, frames=40)
    result = clip_bootstrap_aucs(scores, labels, kinds, {1: 'motion', 9: 'never'},
                                 num_resamples=20)
    assert 'micro_auc/motion' in result and 'micro_auc/never' not in result
    all_normal = {n: np.zeros_like(v) for n, v in labels.items()}
    assert clip_bootstrap_aucs(scores, all_normal, num_resamples=20) == {}


def test_bad_input() -> None:
    scores, labels, kinds = _clips(3, frames=10)
    with pytest.raises(ValueError, match="clip '00_0001'.*no labels"):
        clip_bootstrap_aucs(scores, {})
    with pytest.raises(ValueError, match="clip '01_0001': labels"):
        clip_bootstrap_aucs(scores, dict(labels, **{'01_0001': labels['01_0001'][:5]}))
    with pytest.raises(ValueError, match='code_names'):
        clip_bootstrap_aucs(scores, labels, kinds)
    with pytest.raises(ValueError, match='per-frame codes'):
        clip_bootstrap_aucs(scores, labels, {}, KINDS)
    with pytest.raises(ValueError, match='level'):
        clip_bootstrap_aucs(scores, labels, level=95)
    with pytest.raises(ValueError, match='NaN'):
        clip_bootstrap_aucs(dict(scores, **{'00_0001': np.full(10, np.nan)}), labels)


def test_benchmark_sized_set() -> None:
    """A benchmark-sized set runs through both breakdowns (no time bound: shared machines)."""
    scores, labels, kinds = _clips(30, frames=200)
    events = {n: k * 3 + (k > 0) * (int(n[:2]) % 3) for n, k in kinds.items()}
    event_names = {code: f'event{code}' for code in range(1, 12)}
    by_kind = clip_bootstrap_aucs(scores, labels, kinds, KINDS)
    by_event = clip_bootstrap_aucs(scores, labels, events, event_names)
    assert by_kind and by_event
