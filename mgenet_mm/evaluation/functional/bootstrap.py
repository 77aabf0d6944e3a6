"""Clip-level bootstrap intervals of frame-level AUCs.

The frames of one clip are strongly correlated (smoothing, one event spans many frames), so
resampling frames would give intervals far too narrow. Here the *clips* are resampled with
replacement, their frames concatenated, and the micro AUC computed on each resample, overall
and per anomaly kind or event code (normal frames against the frames of that code, as
:func:`~mgenet_mm.evaluation.functional.kind_aucs` does). The interval is the percentile
interval of the resampled AUCs.

Speed: a resample's AUC is a Mann-Whitney count, a sum over (positive, negative) frame pairs.
Grouping the pairs by the clips they come from, with ``P[c, d]`` the pairs of positive frames of
clip ``c`` and negative frames of clip ``d`` ranked right (ties count one half, as
``sklearn.metrics.roc_auc_score`` counts them), a resample that takes clip ``c`` ``w[c]``
times has the AUC ``w @ P @ w / ((w @ pos) * (w @ neg))``. ``P`` is computed once; every
resample is then one small matrix product, exact (half-integer sums in float64), with no
concatenation or sorting per resample.

Typical use, on the final per-frame scores of ``vad_frame_scores.npz``::

    scores = dict(np.load('vad_frame_scores.npz'))
    masks = {clip: np.load(f'gt/test_frame_mask/{clip}.npy') for clip in scores}
    kinds = {clip: np.load(f'gt/test_frame_kinds/{clip}.npy') for clip in scores}
    result = clip_bootstrap_aucs(scores, masks, kinds, {1: 'motion', 2: 'appearance'})
    result['micro_auc']  # {'point': ..., 'low': ..., 'high': ..., 'num_defined': ...}
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import numpy as np

__all__ = ['resample_clips', 'clip_pair_counts', 'clip_bootstrap_aucs']


def resample_clips(num_clips: int, num_resamples: int, seed: int = 0) -> np.ndarray:
    """Draw bootstrap resamples of clip indices.

    Args:
        num_clips: Number of clips C.
        num_resamples: Number of resamples B.
        seed: Seed of the ``numpy.random.Generator`` (PCG64).

    Returns:
        (B, C) int64 array: row b lists the C clips (with repetitions) of resample b.
    """
    if num_clips < 1 or num_resamples < 1:
        raise ValueError(f'need at least one clip and one resample, got {num_clips} clips and '
                         f'{num_resamples} resamples')
    rng = np.random.default_rng(seed)
    return rng.integers(0, num_clips, size=(num_resamples, num_clips), dtype=np.int64)


def clip_pair_counts(scores: List[np.ndarray], positive: List[np.ndarray],
                     negative: List[np.ndarray]) -> np.ndarray:
    """Correctly ranked (positive, negative) frame pairs, grouped by the pair's clips.

    Args:
        scores: Per clip, (F_c,) anomaly scores (higher = more abnormal).
        positive: Per clip, (F_c,) bool, the positive frames.
        negative: Per clip, (F_c,) bool, the negative frames (disjoint from ``positive``).

    Returns:
        (C, C) float64 ``P`` with ``P[c, d]`` = number of pairs (positive frame of clip c,
        negative frame of clip d) where the positive scores higher, plus one half per tie.
    """
    num = len(scores)
    pos_scores = [np.asarray(s, dtype=np.float64)[p] for s, p in zip(scores, positive)]
    pos_all = np.concatenate(pos_scores) if num else np.zeros(0)
    # Clip of every positive frame, to sum the per-frame counts back per clip.
    pos_clip = np.repeat(np.arange(num), [len(p) for p in pos_scores])
    counts = np.zeros((num, num), dtype=np.float64)
    for d in range(num):
        neg = np.sort(np.asarray(scores[d], dtype=np.float64)[negative[d]])
        if neg.size == 0 or pos_all.size == 0:
            continue
        below = np.searchsorted(neg, pos_all, side='left')
        ties = np.searchsorted(neg, pos_all, side='right') - below
        counts[:, d] = np.bincount(pos_clip, weights=below + 0.5 * ties, minlength=num)
    return counts


def _summarise(point: float, samples: np.ndarray, level: float,
               return_samples: bool) -> Dict[str, Any]:
    defined = samples[~np.isnan(samples)]
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = (np.percentile(defined, [tail, 100.0 - tail]) if defined.size else
                 (None, None))
    result: Dict[str, Any] = dict(
        point=point, low=None if low is None else float(low),
        high=None if high is None else float(high), level=level,
        num_defined=int(defined.size), num_skipped=int(samples.size - defined.size))
    if return_samples:
        result['samples'] = samples
    return result


def clip_bootstrap_aucs(anomaly_scores: Mapping[str, np.ndarray],
                        labels: Mapping[str, np.ndarray],
                        codes: Optional[Mapping[str, np.ndarray]] = None,
                        code_names: Optional[Mapping[int, str]] = None,
                        *,
                        num_resamples: int = 1000,
                        level: float = 0.95,
                        seed: int = 0,
                        return_samples: bool = False) -> Dict[str, Dict[str, Any]]:
    """Point estimates and clip-bootstrap percentile intervals of frame-level micro AUCs.

    The clips are taken in sorted name order, so the result does not depend on the order of
    the dicts; the same ``seed`` gives the same resamples (:func:`resample_clips`), whichever
    codes are evaluated.

    Args:
        anomaly_scores: Clip name -> (F,) final per-frame anomaly scores (higher = more
            abnormal), e.g. the arrays of ``vad_frame_scores.npz``.
        labels: Clip name -> (F,) 0/1 ground truth, 1 = abnormal, for the same clips.
        codes: Optional clip name -> (F,) int per-frame codes, 0 = normal (kinds of
            ``gt/test_frame_kinds`` or events of ``gt/test_frame_events``).
        code_names: Code (> 0) -> name of the result key; required with ``codes``.
        num_resamples: Number of bootstrap resamples B.
        level: Coverage of the percentile interval, in (0, 1).
        seed: Seed of the resampling.
        return_samples: Also return each key's (B,) resampled AUCs (NaN where undefined).

    Returns:
        ``micro_auc`` (all frames, labels 1 against 0) and ``micro_auc/<name>`` per code
        present in the whole set with normal frames too (code frames against code-0 frames),
        each a dict with ``point`` (the AUC of the set itself, equal to ``roc_auc_score`` on
        the concatenated frames), ``low`` and ``high`` (the percentile interval over the
        resamples where the AUC is defined; ``None`` if none is), ``level``, ``num_defined``
        (resamples with both classes) and ``num_skipped`` (resamples with one class only:
        no value, left out of the interval). A key whose point estimate is undefined (one
        class in the whole set) is absent.

    Raises:
        ValueError: On clips missing from ``labels`` or ``codes``, length mismatches,
            non-binary labels, NaN scores, a bad ``level``, or ``codes`` without
            ``code_names``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f'level must be in (0, 1), got {level}')
    if codes is not None and code_names is None:
        raise ValueError('codes need code_names (code -> name of the result key)')
    names = sorted(anomaly_scores)
    if not names:
        raise ValueError('no clips to bootstrap')
    scores, gts, clip_codes = [], [], []
    for name in names:
        values = np.asarray(anomaly_scores[name], dtype=np.float64).reshape(-1)
        if np.isnan(values).any():
            raise ValueError(f'clip {name!r}: anomaly scores contain NaN')
        if name not in labels:
            raise ValueError(f'clip {name!r} has scores but no labels')
        gt = np.asarray(labels[name]).reshape(-1)
        if gt.shape != values.shape or not np.isin(gt, (0, 1)).all():
            raise ValueError(f'clip {name!r}: labels must be 0/1 with one per score '
                             f'({values.size} scores, labels of shape {gt.shape})')
        scores.append(values)
        gts.append(gt.astype(bool))
        if codes is not None:
            if name not in codes:
                raise ValueError(f'clip {name!r} has scores but no per-frame codes')
            code = np.asarray(codes[name]).reshape(-1).astype(np.int64)
            if code.shape != values.shape:
                raise ValueError(f'clip {name!r}: {code.size} per-frame codes for '
                                 f'{values.size} scores')
            clip_codes.append(code)

    # What is told apart from what: key -> (positive frames, negative frames) per clip.
    tasks = {'micro_auc': (list(gts), [~g for g in gts])}
    if codes is not None:
        for code, label in sorted(code_names.items()):
            tasks[f'micro_auc/{label}'] = ([c == code for c in clip_codes],
                                           [c == 0 for c in clip_codes])

    weights = np.zeros((num_resamples, len(names)), dtype=np.float64)  # (B, C) times drawn
    drawn = resample_clips(len(names), num_resamples, seed)  # (B, C) clip indices
    np.add.at(weights, (np.arange(num_resamples)[:, None], drawn), 1.0)
    results: Dict[str, Dict[str, Any]] = {}
    for key, (positive, negative) in tasks.items():
        num_pos = np.array([p.sum() for p in positive], dtype=np.float64)  # (C,)
        num_neg = np.array([n.sum() for n in negative], dtype=np.float64)  # (C,)
        if num_pos.sum() == 0 or num_neg.sum() == 0:
            continue  # undefined on the set itself: no key, as in kind_aucs
        pairs = clip_pair_counts(scores, positive, negative)  # (C, C)
        point = float(pairs.sum() / (num_pos.sum() * num_neg.sum()))
        correct = np.einsum('bc,cd,bd->b', weights, pairs, weights)  # (B,)
        total = (weights @ num_pos) * (weights @ num_neg)  # (B,)
        with np.errstate(invalid='ignore', divide='ignore'):
            samples = np.where(total > 0, correct / np.where(total > 0, total, 1.0), np.nan)
        results[key] = _summarise(point, samples, level, return_samples)
    return results
