"""Checks, summaries and a montage of a generated benchmark, read back from its files.

:func:`check_layout` validates a benchmark against its meta.json (the layout of
``docs/data_preparation.md``); :func:`summarize_benchmark` counts clips, tracks and STG-NF
windows; :func:`make_montage` tiles test frames for a look.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..datasets.pose_utils import read_tracked_pose_json, stgnf_window_starts
from ..evaluation.functional.region_gt import load_region_tracks
from .layout import (EVENT_NAMES_FILE, GT_ARRAYS, SPLITS, frame_folder, frame_key_width,
                     gt_folder, gt_path, is_evaluation, pose_path, region_path, video_path)
from .vocabulary import EVENT_CODES, KIND_CODES


def _splits(meta: Dict) -> List[str]:
    """The splits a meta.json holds (benchmarks written before the validation split have none)."""
    return [split for split in SPLITS if split in meta]


def expected_files(meta: Dict) -> List[str]:
    """Every file (relative path) a benchmark with this meta.json consists of."""
    files = ['meta.json']
    for split in _splits(meta):
        for name, clip in meta[split].items():
            files += [video_path(split, name), pose_path(split, name)]
            if is_evaluation(split):
                files += [gt_path(split, array, name) for array in GT_ARRAYS]
                files.append(region_path(split, name))
                width = frame_key_width('test', clip['frames'])
                folder = frame_folder(split, name)
                files += [f'{folder}/{t:0{width}d}.jpg' for t in range(clip['frames'])]
        if is_evaluation(split) and meta[split]:
            files.append(f'{gt_folder(split, "events")}/{EVENT_NAMES_FILE}')
    return sorted(files)


def _video_frames(path: str) -> Tuple[int, int, int]:
    cap = cv2.VideoCapture(path)
    try:
        return (int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()


def check_layout(root: str) -> List[str]:
    """Validate a generated benchmark against docs/data_preparation.md and its meta.json.

    Checks: the file set is exactly :func:`expected_files`; videos have the planned frame count
    and size; test and validation frames are contiguous 0-based JPEGs of the right size; masks,
    kinds and events have one entry per frame and agree (the events are the clip's own); pose
    JSON has integer person ids, frame keys of the right width inside the clip, 17 x 3 values
    and scores.

    Args:
        root: Benchmark root.

    Returns:
        list: Problems found (empty when the layout is valid).
    """
    problems: List[str] = []
    meta_path = osp.join(root, 'meta.json')
    if not osp.isfile(meta_path):
        return [f'{meta_path}: missing']
    with open(meta_path) as f:
        meta = json.load(f)
    expected = set(expected_files(meta))
    found = set()
    for dirpath, _, names in os.walk(root):
        for name in names:
            found.add(osp.relpath(osp.join(dirpath, name), root).replace(os.sep, '/'))
    for path in sorted(expected - found)[:20]:
        problems.append(f'missing {path}')
    for path in sorted(found - expected)[:20]:
        problems.append(f'unexpected {path}')
    size = tuple(meta['size'])
    for split in _splits(meta):
        for name, clip in meta[split].items():
            problems += _check_clip(root, split, name, clip, size)
    return problems


def _check_clip(root: str, split: str, name: str, clip: Dict,
                size: Tuple[int, int]) -> List[str]:
    """Video, pose file, first frame and ground truth of one clip (see :func:`check_layout`)."""
    problems: List[str] = []
    n = clip['frames']
    video = osp.join(root, video_path(split, name))
    if osp.isfile(video):
        count, w, h = _video_frames(video)
        if count != n or (w, h) != size:
            problems.append(f'{video}: {count} frames of {w}x{h}, expected {n} of '
                            f'{size[0]}x{size[1]}')
    pose = osp.join(root, pose_path(split, name))
    if osp.isfile(pose):
        problems += _check_pose(pose, n, frame_key_width(split, n), size)
    if not is_evaluation(split):
        return problems
    first = osp.join(root, frame_folder(split, name), f'{0:0{frame_key_width("test", n)}d}.jpg')
    if osp.isfile(first):
        img = cv2.imread(first)
        if img is None or img.shape[1::-1] != size:
            problems.append(f'{first}: unreadable or not {size[0]}x{size[1]}')
    arrays = {}
    for array in GT_ARRAYS:
        path = osp.join(root, gt_path(split, array, name))
        if osp.isfile(path):
            arrays[array] = np.load(path)
            if arrays[array].shape != (n,):
                problems.append(f'{path}: shape {arrays[array].shape}, expected ({n},)')
                del arrays[array]
    mask = arrays.get('mask')
    if mask is None:
        return problems
    problems += _check_regions(osp.join(root, region_path(split, name)), mask)
    if not np.isin(mask, (0, 1)).all():
        problems.append(f'{name}: mask values outside {{0, 1}}')
    if int(mask.sum()) != clip['abnormal_frames']:
        problems.append(f'{name}: mask has {int(mask.sum())} abnormal frames, '
                        f'meta says {clip["abnormal_frames"]}')
    for array in ('kinds', 'events'):
        if array in arrays and not np.array_equal(arrays[array] > 0, mask > 0):
            problems.append(f'{name}: {array} and mask disagree')
    events = arrays.get('events')
    if events is not None and clip.get('event') and mask.any() and \
            set(np.unique(events[events > 0]).tolist()) != {EVENT_CODES[clip['event']]}:
        problems.append(f'{name}: events are not all {clip["event"]!r}')
    return problems


def _check_regions(path: str, mask: np.ndarray) -> List[str]:
    """The region file reads (frames inside the clip, positive boxes, one region per track and
    frame) and its regions lie on abnormal frames only."""
    if not osp.isfile(path):
        return []
    try:
        regions = load_region_tracks(path, len(mask))
    except ValueError as err:
        return [str(err)]
    if len(regions.frames) and not mask[regions.frames].all():
        return [f'{path}: regions on frames the mask marks normal']
    return []


def _check_pose(path: str, n_frames: int, key_width: int, size: Tuple[int, int]) -> List[str]:
    problems = []
    with open(path) as f:
        data = json.load(f)
    for pid, track in data.items():
        if not pid.isdigit():
            problems.append(f'{path}: person id {pid!r} is not an integer')
        for key, entry in track.items():
            if len(key) != key_width or not key.isdigit() or int(key) >= n_frames:
                problems.append(f'{path}: person {pid} frame key {key!r} (width {key_width}, '
                                f'< {n_frames} expected)')
                break
            values = entry.get('keypoints')
            if not isinstance(values, list) or len(values) != 51 or 'scores' not in entry:
                problems.append(f'{path}: person {pid} frame {key}: bad entry')
                break
            # (51,) flat AlphaPose values -> (17, 3) rows of x, y, confidence
            xy = np.asarray(values, dtype=np.float64).reshape(17, 3)
            if (xy[:, 0].min() < 0 or xy[:, 0].max() > size[0] - 1 or xy[:, 1].min() < 0
                    or xy[:, 1].max() > size[1] - 1 or xy[:, 2].min() < 0 or xy[:, 2].max() > 1):
                problems.append(f'{path}: person {pid} frame {key}: values out of range')
                break
    return problems


def summarize_benchmark(root: str, seg_len: int = 24, train_stride: int = 6,
                        test_stride: int = 1) -> Dict:
    """Counts of clips, frames, tracks and STG-NF windows (the official window rule).

    Args:
        root: Benchmark root.
        seg_len: Window length T.
        train_stride: Window stride of training clips.
        test_stride: Window stride of test clips.

    Returns:
        dict: Per split: clips, frames, tracks, detections, windows; and abnormal test frames.
    """
    with open(osp.join(root, 'meta.json')) as f:
        meta = json.load(f)
    summary: Dict = {}
    for split in _splits(meta):
        stride = train_stride if split == 'train' else test_stride
        clips = meta[split]
        tracks = detections = windows = 0
        for name in clips:
            persons = read_tracked_pose_json(osp.join(root, pose_path(split, name)))
            for frames, _, _ in persons.values():
                tracks += 1
                detections += len(frames)
                windows += len(stgnf_window_starts(frames, seg_len, stride)[0])
        summary[split] = {'clips': len(clips), 'frames': sum(c['frames'] for c in clips.values()),
                          'tracks': tracks, 'detections': detections,
                          f'windows_T{seg_len}_stride{stride}': windows,
                          'windows_per_track': round(windows / max(tracks, 1), 1)}
    for split in _splits(meta):
        if not is_evaluation(split):
            continue
        clips = meta[split].values()
        summary[split]['abnormal_frames'] = sum(c['abnormal_frames'] for c in clips)
        summary[split]['kind_frames'] = {
            k: sum(c['kind_frames'][k] for c in clips) for k in KIND_CODES}
        summary[split]['clips_per_kind'] = {
            k: sum(c['category'] == k for c in clips) for k in KIND_CODES}
        summary[split]['clips_per_event'] = {
            e: sum(c['event'] == e for c in clips) for e in EVENT_CODES}
    return summary


def make_montage(root: str, picks: Optional[Sequence[Tuple[str, int]]] = None, columns: int = 4,
                 draw_pose: bool = True) -> np.ndarray:
    """A grid of test frames with their pose detections and ground-truth kinds, for a look.

    Args:
        root: Benchmark root.
        picks: (clip, frame) pairs; by default the middle abnormal frame of each test clip with
            an event, and the middle frame of the others.
        columns: Tiles per row.
        draw_pose: Overlay the pose JSON skeletons.

    Returns:
        np.ndarray: The montage (BGR).
    """
    with open(osp.join(root, 'meta.json')) as f:
        meta = json.load(f)
    if picks is None:
        picks = []
        for name, clip in meta['test'].items():
            mask = np.load(osp.join(root, 'gt', 'test_frame_mask', f'{name}.npy'))
            where = np.flatnonzero(mask)
            picks.append((name, int(where[len(where) // 2]) if len(where) else clip['frames'] // 2))
    bones = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13),
             (13, 15), (12, 14), (14, 16), (0, 1), (0, 2), (1, 3), (2, 4))
    names = {v: k for k, v in KIND_CODES.items()}
    tiles = []
    for name, t in picks:
        clip = meta['test'][name]
        width = max(3, len(str(clip['frames'] - 1)))
        img = cv2.imread(osp.join(root, 'testing', 'frames', name, f'{t:0{width}d}.jpg'))
        kinds = np.load(osp.join(root, 'gt', 'test_frame_kinds', f'{name}.npy'))
        if draw_pose:
            with open(osp.join(root, 'pose', 'test', f'{name}_alphapose_tracked_person.json')) as f:
                poses = json.load(f)
            for track in poses.values():
                for key, entry in track.items():
                    if int(key) != t:
                        continue
                    # (51,) -> (17, 3): x, y, confidence per joint
                    kp = np.asarray(entry['keypoints']).reshape(17, 3)
                    for a, b in bones:
                        if kp[a, 2] > 0.45 and kp[b, 2] > 0.45:
                            cv2.line(img, tuple(int(v) for v in kp[a, :2]),
                                     tuple(int(v) for v in kp[b, :2]), (0, 255, 255), 1,
                                     cv2.LINE_AA)
        kind = names[int(kinds[t])]
        colour = (0, 0, 255) if kind != 'normal' else (0, 160, 0)
        cv2.rectangle(img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), colour, 3)
        label = f'{name} #{t} {kind}'
        if clip['event']:
            label += f' ({clip["event"]})'
        cv2.putText(img, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3,
                    cv2.LINE_AA)
        cv2.putText(img, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(img)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)
