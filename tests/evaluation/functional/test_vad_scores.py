"""Tests of the STG-NF frame-level VAD scoring maths."""
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from sklearn.metrics import roc_auc_score

from mgenet_mm.evaluation.functional.vad_scores import (
    DEFAULT_SIGMAS, compute_vad_aucs, fill_empty_frames, format_shanghaitech_clip_name,
    load_shanghaitech_gt, load_ubnormal_gt, padded_clip_auc, parse_shanghaitech_clip_name,
    score_vad_windows, smooth_scores, ubnormal_clip_name, windows_to_frame_scores)

SHARED = Path(
    os.environ.get('MGENET_SHARED', Path(__file__).resolve().parents[3].parent / 'shared'))
STGNF = SHARED / 'fixtures' / 'stgnf_reference'
UBNORMAL_GT = SHARED / 'fixtures' / 'ubnormal_gt'
SHT_GT = SHARED / 'fixtures' / 'shanghaitech_gt' / 'test_frame_mask'

needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason=f'shared fixtures not found at {SHARED}')


def _meta(rows):
    """(scene, clip, person, start) rows -> (N, 4) int array."""
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4)


# ------------------------------------------------------------------------------------------
# Parity with the official STG-NF numbers
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def stgnf_reference():
    ref = np.load(STGNF / 'expected_sht.npz')
    masks = sorted((STGNF / 'gt' / 'test_frame_mask').glob('*.npy'))
    gt = {p.stem: load_shanghaitech_gt(p) for p in masks}
    return ref, gt


@needs_shared
def test_parity_with_stgnf_reference(stgnf_reference):
    ref, gt = stgnf_reference
    result = score_vad_windows(ref['normality'], ref['metadata'], gt, seg_len=24)

    assert result['clips'] == [str(c) for c in ref['clips']]
    expected = ref['frame_scores']
    assert result['normality'].shape == expected.shape
    rel = np.abs(result['normality'] - expected) / np.abs(expected)
    assert rel.max() < 1e-6
    assert abs(result['micro_auc'] - float(ref['auc'])) < 1e-6
    # The official formulation (normality against 1 = normal labels) gives the same number.
    official = roc_auc_score(1 - result['gt'], result['normality'])
    assert abs(official - result['micro_auc']) < 1e-12
    # Final anomaly scores are the negated normality, clip by clip.
    anomaly = np.concatenate([result['anomaly_scores'][c] for c in result['clips']])
    np.testing.assert_array_equal(anomaly, -result['normality'])
    assert result['num_windows'] == len(ref['normality'])
    assert result['num_frames'] == 2622 and result['num_clips'] == 6
    assert 0 < result['num_empty_frames'] < result['num_frames']  # the fill rule is exercised
    assert 0.5 < result['macro_auc'] <= 1.0
    assert 0.5 < result['micro_auc_unsmoothed'] < 1.0


@needs_shared
def test_parity_stepwise_and_rejects_per_clip_fill(stgnf_reference):
    ref, gt = stgnf_reference
    lengths = {name: len(mask) for name, mask in gt.items()}
    frames = windows_to_frame_scores(ref['normality'], ref['metadata'], lengths, 24)
    filled, fill_value = fill_empty_frames(frames)
    smoothed = smooth_scores(filled)
    ours = np.concatenate([smoothed[c] for c in sorted(smoothed)])
    np.testing.assert_allclose(ours, ref['frame_scores'], rtol=1e-6, atol=0)
    assert fill_value == max(v[np.isfinite(v)].max() for v in frames.values())

    # Filling each clip with its own maximum is a plausible misreading; the reference rejects it.
    per_clip = {}
    for name, values in frames.items():
        values = values.copy()
        values[np.isinf(values)] = values[np.isfinite(values)].max()
        per_clip[name] = values
    wrong = np.concatenate([smooth_scores(per_clip)[c] for c in sorted(per_clip)])
    assert np.max(np.abs(wrong - ref['frame_scores']) / np.abs(ref['frame_scores'])) > 1e-3


@needs_shared
def test_parity_with_string_clip_names(stgnf_reference):
    ref, gt = stgnf_reference
    meta = ref['metadata']
    names = [format_shanghaitech_clip_name(s, c) for s, c in meta[:, :2]]
    by_name = score_vad_windows(ref['normality'], meta[:, 2:], gt, seg_len=24, clip_names=names)
    np.testing.assert_allclose(by_name['normality'], ref['frame_scores'], rtol=1e-6, atol=0)


# ------------------------------------------------------------------------------------------
# Hand-checkable cases
# ------------------------------------------------------------------------------------------
def test_clip_name_mapping():
    assert parse_shanghaitech_clip_name('01_0014') == (1, 14)
    assert parse_shanghaitech_clip_name('12_0175.npy') == (12, 175)
    assert format_shanghaitech_clip_name(1, 14) == '01_0014'
    with pytest.raises(ValueError, match='abnormal_scene_1'):
        parse_shanghaitech_clip_name('abnormal_scene_1_scenario_1')
    name = ubnormal_clip_name('/x/abnormal_scene_1_scenario_10_tracks.txt')
    assert name == 'abnormal_scene_1_scenario_10'


@pytest.mark.parametrize('seg_len, middle', [(24, 12), (5, 2), (1, 0)])
def test_window_lands_on_middle_frame(seg_len, middle):
    frames = windows_to_frame_scores([-3.0], _meta([1, 14, 1, 4]), {'01_0014': 40}, seg_len)
    scores = frames['01_0014']
    assert scores[4 + middle] == -3.0
    assert np.isinf(np.delete(scores, 4 + middle)).all()


def test_min_over_persons_and_clip_separation():
    meta = _meta([[1, 14, 1, 0], [1, 14, 2, 0], [1, 14, 1, 1], [1, 15, 1, 0]])
    frames = windows_to_frame_scores([-1.0, -5.0, 2.0, 7.0], meta,
                                     {'01_0014': 6, '01_0015': 6}, seg_len=4)
    np.testing.assert_array_equal(frames['01_0014'], [np.inf, np.inf, -5.0, 2.0, np.inf, np.inf])
    np.testing.assert_array_equal(frames['01_0015'], [np.inf, np.inf, 7.0, np.inf, np.inf, np.inf])
    assert list(frames) == ['01_0014', '01_0015']


def test_empty_frames_get_least_anomalous_score_of_the_set():
    frames = {'a': np.array([1.0, np.inf, -np.inf]), 'b': np.array([5.0, -2.0, np.inf])}
    filled, fill_value = fill_empty_frames(frames)
    # The set's (not the clip's) largest finite normality fills +inf, its smallest fills -inf.
    assert fill_value == 5.0
    np.testing.assert_array_equal(filled['a'], [1.0, 5.0, -2.0])
    np.testing.assert_array_equal(filled['b'], [5.0, -2.0, 5.0])
    assert np.isinf(frames['a'][1])  # inputs untouched


def test_smoothing_applied_once_per_sigma():
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    expected = x.copy()
    for sigma in range(1, 7):
        expected = gaussian_filter1d(expected, sigma, mode='reflect', truncate=4.0)
    out = smooth_scores({'c': x})['c']
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)
    assert tuple(DEFAULT_SIGMAS) == (1, 2, 3, 4, 5, 6)
    # A single sigma-6 pass or sigmas 1..5 are different operations.
    assert not np.allclose(out, gaussian_filter1d(x, 6))
    assert not np.allclose(out, smooth_scores({'c': x}, range(1, 6))['c'])
    np.testing.assert_array_equal(smooth_scores({'c': x}, ())['c'], x)


def test_compute_vad_aucs_by_hand():
    gt = {'a': np.array([0, 0, 1, 1]), 'b': np.array([0, 1, 0, 1])}
    frames = {'a': np.array([4.0, 3.0, 1.0, 2.0]), 'b': np.array([0.0, 1.0, 2.0, 3.0])}
    res = compute_vad_aucs(frames, gt, sigmas=())
    anomaly = -np.concatenate([frames['a'], frames['b']])
    assert res['micro_auc'] == pytest.approx(roc_auc_score([0, 0, 1, 1, 0, 1, 0, 1], anomaly))
    assert res['micro_auc'] == res['micro_auc_unsmoothed']
    # 'a' perfectly separated -> 1; 'b' padded: normals {-pad, 0, -2}, abnormals {-1, -3, +pad}
    # -> 6 of 9 pairs ranked right.
    assert res['per_clip_auc']['a'] == 1.0
    assert res['per_clip_auc']['b'] == pytest.approx(6 / 9)
    assert res['macro_auc'] == pytest.approx((1 + 6 / 9) / 2)
    assert res['num_frames'] == 8 and res['num_clips'] == 2 and res['num_abnormal_frames'] == 4
    assert res['num_empty_frames'] == 0


def test_macro_auc_with_one_class_clip():
    # One-class clips: padding makes every real frame pair with an always-correct pad -> 1.0.
    assert padded_clip_auc(np.zeros(5), np.array([0.3, -1.0, 2.0, 2.0, 7.0])) == 1.0
    assert padded_clip_auc(np.ones(3), np.array([-4.0, 0.0, 4.0])) == 1.0
    # Two-class, inverted: normals {-pad, 1}, abnormals {0, +pad} -> 3 of 4 pairs right.
    assert padded_clip_auc(np.array([0, 1]), np.array([1.0, 0.0])) == pytest.approx(0.75)
    gt = {'normal_only': np.zeros(30, dtype=int),
          'mixed': np.r_[np.zeros(15), np.ones(15)].astype(int)}
    frames = {'normal_only': np.linspace(0, 1, 30),
              'mixed': np.r_[np.full(15, 2.0), np.full(15, -2.0)]}
    res = compute_vad_aucs(frames, gt)
    assert res['per_clip_auc']['normal_only'] == 1.0
    assert np.isfinite(res['macro_auc'])
    assert res['macro_auc'] == pytest.approx(np.mean(list(res['per_clip_auc'].values())))


def test_clip_without_persons_gets_normal_score_everywhere():
    gt = {'01_0001': np.array([0, 0, 1, 1, 0, 0]), '01_0002': np.array([1, 1, 0, 0])}
    meta = _meta([[1, 1, 0, 0], [1, 1, 0, 1], [1, 1, 0, 2], [1, 1, 0, 3]])
    res = score_vad_windows([9.0, -1.0, -2.0, 3.0], meta, gt, seg_len=2, sigmas=())
    assert res['fill_value'] == 9.0
    np.testing.assert_array_equal(res['anomaly_scores']['01_0002'], [-9.0] * 4)
    assert res['anomaly_scores']['01_0001'][0] == -9.0  # frame 0 is before any window's middle
    assert res['num_empty_frames'] == 2 + 4
    assert np.isfinite(res['micro_auc']) and np.isfinite(res['macro_auc'])
    # Same through compute_vad_aucs when the clip has no entry at all.
    frames = windows_to_frame_scores([9.0, -1.0, -2.0, 3.0], meta, {'01_0001': 6}, seg_len=2)
    again = compute_vad_aucs(frames, gt, sigmas=())
    np.testing.assert_array_equal(again['normality'], res['normality'])


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------
def test_windows_without_gt_mask_raise():
    with pytest.raises(ValueError, match='01_0015'):
        windows_to_frame_scores([0.0], _meta([1, 15, 1, 0]), {'01_0014': 30}, seg_len=4)
    with pytest.raises(ValueError, match='my_video'):
        windows_to_frame_scores([0.0], np.array([[1, 0]]), {'other': 30}, seg_len=4,
                                clip_names=['my_video'])
    with pytest.raises(ValueError, match="'x'"):
        compute_vad_aucs({'x': np.zeros(3)}, {'y': np.array([0, 1, 0])})


def test_mask_shorter_than_windows_raise():
    with pytest.raises(ValueError, match='01_0014.*middle frame 12'):
        windows_to_frame_scores([0.0, 1.0], _meta([[1, 14, 1, 0], [1, 14, 1, 2]]),
                                {'01_0014': 12}, seg_len=24)
    with pytest.raises(ValueError, match="'a'.*5 frame scores.*4 frames"):
        compute_vad_aucs({'a': np.zeros(5)}, {'a': np.array([0, 1, 0, 1])})


def test_nan_scores_raise():
    with pytest.raises(ValueError, match='NaN.*01_0014'):
        windows_to_frame_scores([0.0, np.nan], _meta([[1, 14, 1, 0], [1, 14, 1, 1]]),
                                {'01_0014': 30}, seg_len=4)
    with pytest.raises(ValueError, match="'a'.*NaN"):
        compute_vad_aucs({'a': np.array([0.0, np.nan])}, {'a': np.array([0, 1])})


def test_single_class_set_raises():
    with pytest.raises(ValueError, match='single class'):
        compute_vad_aucs({'a': np.arange(4.0)}, {'a': np.zeros(4, dtype=int)})


# ------------------------------------------------------------------------------------------
# Ground-truth loaders
# ------------------------------------------------------------------------------------------
@needs_shared
def test_ubnormal_gt_loader_flips_convention():
    path = UBNORMAL_GT / 'abnormal_scene_10_scenario_1_tracks.txt'
    raw = np.load(path)  # the distributed file: 1 = normal
    mask = load_ubnormal_gt(path)
    assert mask.dtype == np.uint8 and mask.shape == raw.shape
    np.testing.assert_array_equal(mask, 1 - raw)
    assert mask.sum() == (raw == 0).sum() > 0
    normal_video = load_ubnormal_gt(UBNORMAL_GT / 'normal_scene_10_scenario_2_tracks.txt')
    assert normal_video.sum() == 0


@needs_shared
def test_ubnormal_gt_loader_names_bad_file(tmp_path):
    # Some files of the distribution are UBnormal's own '<id>,<start>,<end>' track text.
    track_text = UBNORMAL_GT / 'abnormal_scene_10_scenario_2_tracks.txt'
    with pytest.raises(ValueError, match='abnormal_scene_10_scenario_2_tracks.txt'):
        load_ubnormal_gt(track_text)
    bad = tmp_path / 'bad_tracks.txt'
    np.save(bad.with_suffix('.npy'), np.array([0.0, 0.5]))
    bad.with_suffix('.npy').rename(bad)
    with pytest.raises(ValueError, match='bad_tracks.txt'):
        load_ubnormal_gt(bad)


@needs_shared
def test_shanghaitech_gt_loader_keeps_convention():
    path = sorted(SHT_GT.glob('*.npy'))[0]
    np.testing.assert_array_equal(load_shanghaitech_gt(path), np.load(path))


# ------------------------------------------------------------------------------------------
# Speed
# ------------------------------------------------------------------------------------------
def test_shanghaitech_sized_set_is_scored():
    """ShanghaiTech-sized synthetic set: 76,619 windows over 107 clips (its speed is measured by
    tools/analysis/benchmark_stgnf.py, not asserted here: the test machines are shared)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(250, 700, size=107)
    names = [format_shanghaitech_clip_name(1 + i // 20, i) for i in range(107)]
    gt = {n: (np.arange(n_frames) > n_frames // 2).astype(np.uint8)
          for n, n_frames in zip(names, lengths)}
    clip = rng.integers(0, 107, size=76_619)
    meta = np.stack([1 + clip // 20, clip, rng.integers(0, 5, size=clip.size),
                     rng.integers(0, lengths[clip] - 24 + 1)], axis=1)
    res = score_vad_windows(rng.normal(size=clip.size), meta, gt, seg_len=24)
    assert res['num_windows'] == 76_619 and res['num_clips'] == 107
    assert res['num_frames'] == int(lengths.sum())
