"""Plain-array helpers for tracked-person pose windows, in the STG-NF conventions.

Nothing here knows about mmengine: the dataset, the transforms and the video API all use these
functions, and each is testable on small arrays.
"""
from __future__ import annotations

import json
import re
from typing import Dict, Tuple

import numpy as np

#: Order of the 18 joints after appending the neck (index 17) to COCO-17: the OpenPose-style
#: order the official STG-NF graph is laid out in.
COCO18_ORDER = (0, 17, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)

#: File-name suffixes of per-clip pose files, longest first.
POSE_FILE_SUFFIXES = ('_alphapose_tracked_person.json', '_tracked_person.json', '.json')


def coco17_to_coco18(keypoints: np.ndarray) -> np.ndarray:
    """Append a neck joint (mean of the shoulders, COCO 5 and 6) and reorder to 18 joints.

    Args:
        keypoints (np.ndarray): (..., 17, C) keypoints, C = 2 or 3 (x, y[, confidence]).

    Returns:
        np.ndarray: (..., 18, C); the neck's confidence is the mean of the shoulders'.
    """
    if keypoints.shape[-2] != 17:
        raise ValueError(f'expected 17 COCO joints, got shape {keypoints.shape}')
    neck = (keypoints[..., 5:6, :] + keypoints[..., 6:7, :]) / 2  # (..., 1, C)
    with_neck = np.concatenate([keypoints, neck], axis=-2)  # (..., 18, C)
    return with_neck[..., COCO18_ORDER, :]


def normalize_windows(windows: np.ndarray,
                      video_resolution: Tuple[float, float] = (856., 480.),
                      eps: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """Per-window normalisation of STG-NF.

    x and y are divided by the video resolution, the mean over frames and joints is subtracted,
    and both are divided by the standard deviation of y over the window. The confidence channel
    is left as it is.

    Args:
        windows (np.ndarray): (N, T, V, C) windows, C >= 2.
        video_resolution (tuple): (width, height) the coordinates are divided by.
        eps (float): A window whose y standard deviation is <= eps is degenerate (the official
            normalisation would divide by zero there).

    Returns:
        tuple: the normalised (N, T, V, C) float32 windows (degenerate ones left centred but
        unscaled) and a (N,) bool mask of the degenerate windows.
    """
    out = windows.astype(np.float64, copy=True)
    out[..., :2] /= np.asarray(video_resolution, dtype=np.float64)
    out[..., :2] -= out[..., :2].mean(axis=(1, 2), keepdims=True)
    y_std = out[..., 1].std(axis=(1, 2))  # (N,)
    degenerate = ~(y_std > eps)
    scale = np.where(degenerate, 1.0, y_std)[:, None, None, None]
    out[..., :2] /= scale
    return out.astype(np.float32), degenerate


def stgnf_window_starts(frames: np.ndarray, seg_len: int, stride: int,
                        max_missing: int = 2) -> Tuple[np.ndarray, int]:
    """Row indices where the official STG-NF loader starts a window in one person's track.

    For a track of ``n`` recorded frames (sorted frame numbers ``frames``) it tries
    ``ceil((n - seg_len) / stride)`` windows (one fewer than a plain sliding window when
    ``n - seg_len`` is a multiple of the stride), the i-th starting at row ``i * stride``. A window
    is the next ``seg_len`` recorded rows and is kept when at least ``seg_len - max_missing`` of
    the frame numbers ``start .. start + seg_len - 1`` are among those rows.

    Args:
        frames (np.ndarray): (n,) strictly increasing frame numbers of the track.
        seg_len (int): Window length T.
        stride (int): Step between tried windows, in rows.
        max_missing (int): Missing frames tolerated inside a window.

    Returns:
        tuple: (k,) int64 start rows of the kept windows, and the number of tried windows
        that were dropped for missing frames.
    """
    n = len(frames)
    if n < seg_len:
        return np.zeros(0, dtype=np.int64), 0
    num_tried = int(np.ceil((n - seg_len) / stride))
    starts = np.arange(num_tried, dtype=np.int64) * stride  # (k,)
    # Frame numbers are sorted and unique, so the rows whose frame lies in
    # [f(start), f(start) + T - 1] are a prefix of the window's rows.
    last_inside = np.searchsorted(frames, frames[starts] + seg_len - 1, side='right')
    present = np.minimum(last_inside, starts + seg_len) - starts
    keep = present >= seg_len - max_missing
    return starts[keep], int((~keep).sum())


def degenerate_windows(track: np.ndarray, starts: np.ndarray, seg_len: int,
                       video_resolution: Tuple[float, float]) -> np.ndarray:
    """(k,) bool: windows of a track whose normalised y has zero spread, via running sums.

    The official normalisation divides by the window's y standard deviation; such windows are
    skipped. ``track`` is (n, V, 3) keypoints in pixels, ``starts`` (k,) start rows.
    """
    if len(starts) == 0:
        return np.zeros(0, dtype=bool)
    y = track[..., 1].astype(np.float64) / video_resolution[1]  # (n, V)
    zero = np.zeros(1)
    sum_y = np.concatenate([zero, np.cumsum(y.sum(axis=1))])  # (n + 1,)
    sum_y2 = np.concatenate([zero, np.cumsum((y * y).sum(axis=1))])
    count = seg_len * y.shape[1]
    window_sum = sum_y[starts + seg_len] - sum_y[starts]
    window_sum2 = sum_y2[starts + seg_len] - sum_y2[starts]
    variance = window_sum2 / count - (window_sum / count) ** 2
    # Running sums lose precision: anything below 1e-12 of the squared mean is no spread.
    return variance <= 1e-12 * np.maximum((window_sum / count) ** 2, 1e-12)


_SHT_NAME = re.compile(r'^(\d+)_(\d+)$')
_UBNORMAL_NAME = re.compile(r'^(?:abnormal|normal)_scene_(\d+)_scenario_(\d+)')


def clip_name_from_pose_file(file_name: str) -> str:
    """'01_0014_alphapose_tracked_person.json' -> '01_0014'."""
    for suffix in POSE_FILE_SUFFIXES:
        if file_name.endswith(suffix):
            return file_name[:-len(suffix)]
    raise ValueError(f'{file_name}: not a pose file (expected one of {POSE_FILE_SUFFIXES})')


def clip_ids(clip_name: str) -> Tuple[int, int]:
    """Numeric (scene, clip) ids of a clip name, as the official metadata carries them.

    ShanghaiTech '01_0014' -> (1, 14); UBnormal 'abnormal_scene_5_scenario_2_smoke' -> (5, 2);
    anything else -> (-1, -1) (clips are then told apart by name only).
    """
    match = _SHT_NAME.match(clip_name) or _UBNORMAL_NAME.match(clip_name)
    if match is None:
        return -1, -1
    return int(match.group(1)), int(match.group(2))


def read_tracked_pose_json(path: str) -> Dict[int, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Read one clip's tracked-person JSON (STG-NF / AlphaPose-tracking layout).

    Layout: ``{person_id: {frame: {"keypoints": [x, y, c] * 17, "scores": s}}}``; frame keys may
    be zero-padded strings of any width and are read as numbers.

    Args:
        path (str): The JSON file.

    Returns:
        dict: person id -> (frames (n,) int64 sorted, keypoints (n, 17, 3) float32,
        scores (n,) float32).

    Raises:
        ValueError: Malformed JSON (with line, column and character position), a wrong layout,
            or a duplicated frame number, always naming the file.
    """
    try:
        with open(path, 'r') as f:
            raw = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}: malformed JSON at line {error.lineno}, column {error.colno} '
                         f'(char {error.pos}): {error.msg}') from None
    except UnicodeDecodeError as error:
        raise ValueError(f'{path}: not a UTF-8 JSON file ({error})') from None
    if not isinstance(raw, dict):
        raise ValueError(f'{path}: expected an object {{person_id: {{frame: ...}}}}, '
                         f'got {type(raw).__name__}')
    persons = {}
    for person_key, track in raw.items():
        try:
            person_id = int(person_key)
        except ValueError:
            raise ValueError(f'{path}: person id {person_key!r} is not an integer') from None
        if not isinstance(track, dict):
            raise ValueError(f'{path}: person {person_key} is not an object of frames')
        frames, keypoints, scores = [], [], []
        for frame_key, entry in track.items():
            try:
                frames.append(int(frame_key))
                values = entry['keypoints']
                scores.append(float(entry.get('scores', np.nan)))
            except (ValueError, TypeError, KeyError) as error:
                raise ValueError(f'{path}: person {person_key}, frame {frame_key!r}: bad entry '
                                 f'({type(error).__name__}: {error})') from None
            if not isinstance(values, list) or len(values) != 51:
                raise ValueError(f'{path}: person {person_key}, frame {frame_key}: expected 51 '
                                 f'keypoint values (17 x [x, y, c]), got '
                                 f'{len(values) if isinstance(values, list) else values!r}')
            keypoints.append(values)
        frames_np = np.asarray(frames, dtype=np.int64)
        order = np.argsort(frames_np, kind='stable')
        frames_np = frames_np[order]
        if len(frames_np) > 1 and np.any(np.diff(frames_np) == 0):
            duplicate = frames_np[1:][np.diff(frames_np) == 0][0]
            raise ValueError(f'{path}: person {person_key} has frame {duplicate} twice')
        try:
            keypoints_np = np.asarray(keypoints, dtype=np.float32).reshape(-1, 17, 3)[order]
        except (ValueError, TypeError) as error:
            raise ValueError(f'{path}: person {person_key}: non-numeric keypoints '
                             f'({error})') from None
        persons[person_id] = (frames_np, keypoints_np,
                              np.asarray(scores, dtype=np.float32)[order])
    return persons
