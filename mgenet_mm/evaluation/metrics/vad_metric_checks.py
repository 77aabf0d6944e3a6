"""Checks of :class:`VADAUCMetric` that run before any inference.

Two kinds: the constructor's arguments (a config value of the wrong type fails when the
evaluator is built, naming the key, not with a ``TypeError`` after the whole inference), and
the agreement of the ground truth with the dataset, which mmengine's evaluator hands to the
metric as ``dataset_meta`` when the loop is built. Both parts of a run state which clips are
evaluated, their window length and, with a video or frame folder, their frame count: a clip
whose GT mask has no pose file would be scored as "nobody there", a mask longer than its clip
would add normal frames that do not exist; here they are errors.
"""
from __future__ import annotations

import numbers
import os
import os.path as osp
from typing import Any, Mapping, Optional, Sequence

__all__ = ['check_metric_arguments', 'check_gt_pose_pairing', 'check_gt_lengths',
           'check_seg_len']

#: Where a metric argument is set in a config (the error names it).
_CONFIG_KEY = 'the evaluator in the config (val_evaluator / test_evaluator)'


def _more_clips(clips: Sequence[str]) -> str:
    """The tail of a message that names the first of several clips: how many, and the first 10."""
    return f'; {len(clips)} such clips: {list(clips)[:10]}' if len(clips) > 1 else ''


def _is_int(value: Any) -> bool:
    # bool is an int subclass: seg_len=True is a mistake, not 1.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_names(value: Any) -> bool:
    return (isinstance(value, (list, tuple, set, frozenset))
            and all(isinstance(name, str) for name in value))


def _describe(value: Any) -> str:
    return f'{value!r} ({type(value).__name__})'


def check_metric_arguments(args: Mapping[str, Any], owner: str = 'VADAUCMetric') -> None:
    """Type-check the constructor arguments of :class:`VADAUCMetric`.

    Args:
        args (Mapping[str, Any]): Argument name -> value; names that are absent are not checked.
        owner (str): The class named in the messages.

    Raises:
        ValueError: The first argument of a wrong type, naming it, its value and what it takes.
    """
    rules = {
        'gt_dir': (lambda v: isinstance(v, str) and v != '', 'a folder path'),
        'gt_format': (lambda v: isinstance(v, str), 'a format name (a string)'),
        'seg_len': (lambda v: _is_int(v) and v >= 1, 'a positive integer (the window length T)'),
        'clips': (lambda v: v is None or isinstance(v, str) or _is_names(v),
                  'None, a list of clip names, a clip-list file or a pose folder'),
        'use_dataset_clips': (lambda v: isinstance(v, bool), 'True or False'),
        'exclude_clips': (_is_names, "a list of clip names (a string is not: write ['name'])"),
        'score_weights': (lambda v: v is None or (isinstance(v, Mapping) and all(
            isinstance(k, str) and _is_number(w) for k, w in v.items())),
            'None or a dict of component name -> number'),
        'normalize': (lambda v: isinstance(v, bool), 'True or False'),
        'sigmas': (lambda v: isinstance(v, (list, tuple)) and all(
            _is_number(s) and s > 0 for s in v), 'a list of positive numbers (may be empty)'),
        'kind_dir': (lambda v: v is None or isinstance(v, str), 'None or a folder path'),
        'kind_names': (lambda v: v is None or (isinstance(v, Mapping) and all(
            _is_int(k) and isinstance(n, str) for k, n in v.items())),
            'None or a dict of kind id (integer) -> name'),
        'event_dir': (lambda v: v is None or isinstance(v, str), 'None or a folder path'),
        'out_dir': (lambda v: v is None or isinstance(v, str), 'None or a folder path'),
        'prefix': (lambda v: v is None or isinstance(v, str), 'None or a string'),
    }
    for name, (valid, expected) in rules.items():
        if name in args and not valid(args[name]):
            raise ValueError(f'{owner}: {name} must be {expected}, got {_describe(args[name])}; '
                             f'set {name} of {_CONFIG_KEY}')


def check_seg_len(metric_seg_len: int, dataset_seg_len: Optional[int]) -> None:
    """The metric places a window's score on frame start + T // 2: T must be the dataset's.

    Raises:
        ValueError: The two differ, naming both.
    """
    if dataset_seg_len is not None and int(dataset_seg_len) != int(metric_seg_len):
        raise ValueError(f'VADAUCMetric seg_len={metric_seg_len} but the dataset cuts windows of '
                         f'seg_len={dataset_seg_len}: a window\'s score would land on the wrong '
                         'frame; set the evaluator\'s seg_len to the dataset\'s')


def _near_misses(clip: str, pose_dirs: Sequence[str]) -> list:
    """Files of the pose folders that start with the clip's name (a misnamed pose file?)."""
    found = []
    for folder in pose_dirs:
        if osp.isdir(folder):
            found += [osp.join(folder, f) for f in sorted(os.listdir(folder))
                      if f.startswith(clip) and f[len(clip):len(clip) + 1] in ('_', '.')]
    return found[:3]


def check_gt_pose_pairing(gt_files: Mapping[str, str], pose_clips: Sequence[str],
                          pose_dirs: Sequence[str] = (), exclude_clips: Sequence[str] = (),
                          gt_dir: str = '') -> None:
    """Every evaluated clip has a pose file and every pose file a ground-truth mask.

    Args:
        gt_files (Mapping[str, str]): Evaluated clip -> its GT mask file.
        pose_clips (Sequence[str]): The clips the dataset read a pose file of (windows or not).
        pose_dirs (Sequence[str]): Where the dataset looked for pose files (for the message).
        exclude_clips (Sequence[str]): Clips the metric leaves out (their windows are dropped).
        gt_dir (str): The GT folder (for the message).

    Raises:
        ValueError: A clip on one side only, naming the clips and files and what to do.
    """
    where = ', '.join(pose_dirs) or 'the dataset'
    poses = set(pose_clips) - set(exclude_clips)
    no_pose = sorted(set(gt_files) - poses)
    if no_pose:
        clip = no_pose[0]
        misses = _near_misses(clip, pose_dirs)
        raise ValueError(
            f'clip {clip} has a ground-truth mask ({gt_files[clip]}) but no pose file in '
            f'{where}' + (f' (there: {", ".join(misses)}, not a pose file name)' if misses
                          else '') +
            _more_clips(no_pose) +
            '. Give it a pose file (a clip with nobody in it is written as an empty JSON object '
            '{}), or leave it out with exclude_clips in both the dataset and the evaluator')
    no_gt = sorted(poses - set(gt_files))
    if no_gt:
        raise ValueError(
            f'clip {no_gt[0]} has a pose file in {where} but no ground-truth mask to evaluate '
            f'it against in {gt_dir or "the GT folder"}'
            + _more_clips(no_gt) +
            '. Add its mask, or leave it out with exclude_clips in both the dataset and the '
            'evaluator')


def check_gt_lengths(gt_lengths: Mapping[str, int], gt_files: Mapping[str, str],
                     clip_frames: Mapping[str, int],
                     clip_sources: Optional[Mapping[str, str]] = None) -> None:
    """Every GT mask has exactly as many frames as its clip's video or frame folder.

    Args:
        gt_lengths (Mapping[str, int]): Clip -> frames of its GT mask.
        gt_files (Mapping[str, str]): Clip -> its GT mask file (for the message).
        clip_frames (Mapping[str, int]): Clip -> frame count of its video / frame folder, for the
            clips where it is known.
        clip_sources (Mapping[str, str], optional): Clip -> that video or folder.

    Raises:
        ValueError: A mask of another length, naming the clip, both files and both counts.
    """
    wrong = sorted(name for name, length in gt_lengths.items()
                   if name in clip_frames and int(length) != int(clip_frames[name]))
    if wrong:
        clip = wrong[0]
        source = (clip_sources or {}).get(clip, 'its video')
        raise ValueError(
            f'clip {clip}: ground-truth mask {gt_files.get(clip, "")} has {gt_lengths[clip]} '
            f'frames, but {source} has {clip_frames[clip]}'
            + _more_clips(wrong) +
            '. The mask must have one entry per frame of its clip: it belongs to another clip '
            'or was cut wrongly')
