"""The checks VADAUCMetric runs before inference, on hand-built names, lengths and arguments."""
from pathlib import Path

import numpy as np
import pytest

from mgenet_mm.evaluation.metrics.vad_metric_checks import (check_gt_lengths,
                                                            check_gt_pose_pairing,
                                                            check_metric_arguments,
                                                            check_seg_len)

GT = {'a': 'gt/a.npy', 'b': 'gt/b.npy'}


def test_pairing_accepts_the_same_clips_and_the_excluded_ones() -> None:
    check_gt_pose_pairing(GT, ['b', 'a'])
    # 'c' has a pose file but is excluded by the metric: its windows are dropped.
    check_gt_pose_pairing(GT, ['a', 'b', 'c'], exclude_clips=['c'])


def test_pairing_names_a_gt_clip_without_a_pose_file(tmp_path: Path) -> None:
    (tmp_path / 'b_alphapose_tracked_person.json.bak').write_text('{}')
    (tmp_path / 'bb_alphapose_tracked_person.json').write_text('{}')  # another clip's file
    with pytest.raises(ValueError) as error:
        check_gt_pose_pairing(GT, ['a'], pose_dirs=[str(tmp_path)])
    message = str(error.value)
    near_miss = tmp_path / 'b_alphapose_tracked_person.json.bak'
    assert message.startswith(f'clip b has a ground-truth mask (gt/b.npy) but no pose file in '
                              f'{tmp_path} (there: {near_miss}, not a pose file name)')
    assert 'bb_alphapose' not in message and 'an empty JSON object {}' in message
    with pytest.raises(ValueError, match=r"clip a has .*; 2 such clips: \['a', 'b'\]"):
        check_gt_pose_pairing(GT, [])


def test_pairing_names_a_pose_file_without_gt() -> None:
    with pytest.raises(ValueError, match='clip c has a pose file in pose/test but no '
                       'ground-truth mask to evaluate it against in gt'):
        check_gt_pose_pairing(GT, ['a', 'b', 'c'], pose_dirs=['pose/test'], gt_dir='gt')


def test_lengths_must_equal_the_clips_frame_counts() -> None:
    check_gt_lengths({'a': 10, 'b': 7}, GT, {'a': 10})  # b's count is unknown: not checked
    with pytest.raises(ValueError, match=r'clip a: ground-truth mask gt/a.npy has 5010 frames, '
                       r'but videos/a.avi has 10\. The mask must have one entry per frame'):
        check_gt_lengths({'a': 5010, 'b': 7}, GT, {'a': 10, 'b': 7}, {'a': 'videos/a.avi'})
    with pytest.raises(ValueError, match=r"clip a: .* has 9 frames, but its video has 10; "
                       r"2 such clips: \['a', 'b'\]"):
        check_gt_lengths({'a': 9, 'b': 8}, GT, {'a': 10, 'b': 7})


def test_seg_len_must_match() -> None:
    check_seg_len(24, None)  # a dataset that does not say
    check_seg_len(24, np.int64(24))
    with pytest.raises(ValueError, match='seg_len=16 but the dataset cuts windows of seg_len=24'):
        check_seg_len(16, 24)


def test_arguments_accept_the_documented_types() -> None:
    check_metric_arguments(dict(gt_dir='gt', gt_format='ubnormal', seg_len=np.int64(16),
                                clips=('a', 'b'), use_dataset_clips=False, exclude_clips=[],
                                score_weights=dict(mo=1, app=0.1), normalize=True, sigmas=(),
                                kind_dir=None, kind_names={1: 'motion'}, event_dir='ev',
                                out_dir=None, prefix='vad'))
    check_metric_arguments(dict(clips='pose/test', sigmas=[1, 2.5]))
    with pytest.raises(ValueError, match=r"VADAUCMetric: seg_len must be a positive integer "
                       r"\(the window length T\), got '24' \(str\); set seg_len of the "
                       r'evaluator in the config'):
        check_metric_arguments(dict(seg_len='24'))
    with pytest.raises(ValueError, match='score_weights must be .*got .*True'):
        check_metric_arguments(dict(score_weights=dict(mo=True)))
