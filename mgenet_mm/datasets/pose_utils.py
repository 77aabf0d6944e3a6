"""Plain-array helpers for tracked-person pose windows, in the STG-NF conventions.

Nothing here knows about mmengine: the dataset, the transforms and the video API all use these
functions, and each is testable on small arrays.
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
import re
from itertools import chain
from typing import Any, Dict, List, NoReturn, Optional, Tuple

import numpy as np

try:  # optional: a faster JSON reader (see _parse_pose_json_fast)
    import orjson as _orjson
except ImportError:  # pragma: no cover - installed by requirements/runtime.txt
    _orjson = None

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


#: Windows normalised together: the float64 work arrays of 64 windows (a few hundred KB) stay in
#: the CPU cache; whole 1,024-window batches run about 40 % slower.
_NORMALIZE_CHUNK = 64


def normalize_windows(windows: np.ndarray,
                      video_resolution: Tuple[float, float] = (856., 480.),
                      eps: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """Per-window normalisation of STG-NF.

    x and y are divided by the video resolution, the mean over frames and joints is subtracted,
    and both are divided by the standard deviation of y over the window. The confidence channel
    is left as it is.

    The numbers are those of the plain numpy formulation on the (N, T, V, C) array, to the bit:
    ``out[..., :2].mean(axis=(1, 2))`` adds the T * V values of a window one after the other
    (numpy's inner loop runs over the 2 channels there), ``out[..., 1].std(axis=(1, 2))`` adds
    them pairwise. The same two orders are used here, on contiguous per-channel arrays and a
    chunk of windows at a time, which runs 2-3 times faster than reductions whose inner loop
    has length 2 or 3. Every reduction is per window, so a window's numbers do not depend on
    the others in the batch.

    Args:
        windows (np.ndarray): (N, T, V, C) windows, C >= 2.
        video_resolution (tuple): (width, height) the coordinates are divided by.
        eps (float): A window whose y standard deviation is <= eps is degenerate (the official
            normalisation would divide by zero there).

    Returns:
        tuple: the normalised (N, T, V, C) float32 windows (degenerate ones left centred but
        unscaled) and a (N,) bool mask of the degenerate windows.
    """
    n, t, v, c = windows.shape
    flat = windows.reshape(n, t * v, c)  # (N, T, V, C) -> (N, T*V, C)
    out = np.empty((n, t, v, c), dtype=np.float32)
    out_flat = out.reshape(n, t * v, c)  # a view: (N, T*V, C)
    degenerate = np.zeros(n, dtype=bool)
    resolution = np.asarray(video_resolution, dtype=np.float64)[:, None]  # (2, 1)
    for begin in range(0, n, _NORMALIZE_CHUNK):
        end = min(n, begin + _NORMALIZE_CHUNK)
        degenerate[begin:end] = _normalize_chunk(flat[begin:end], out_flat[begin:end],
                                                 resolution, eps)
    return out, degenerate


def _normalize_chunk(flat: np.ndarray, out: np.ndarray, resolution: np.ndarray,
                     eps: float) -> np.ndarray:
    """Normalise (n, T*V, C) windows into ``out`` (same shape, float32); returns (n,) bool."""
    n, count, _ = flat.shape
    # (T*V, 2, n): one row per (frame, joint), each row the x and y of every window.
    xy = np.ascontiguousarray(flat[..., :2].transpose(1, 2, 0), dtype=np.float64)
    xy /= resolution
    # A reduction over axis 0 of a C-contiguous (T*V, 2n) array adds row after row: the
    # sequential order of the mean above (2n >= 2, so numpy never turns it pairwise).
    mean = xy.reshape(count, 2 * n).sum(axis=0) / count  # (2n,)
    xy -= mean.reshape(2, n)
    y = np.ascontiguousarray(xy[:, 1, :].T)  # (T*V, n) -> (n, T*V), contiguous per window
    y_std = y.std(axis=1)  # (n,), pairwise over each contiguous row, as the std above
    degenerate = ~(y_std > eps)
    xy /= np.where(degenerate, 1.0, y_std)
    out[..., :2] = xy.transpose(2, 0, 1)  # (T*V, 2, n) -> (n, T*V, 2)
    # Through float64 as before (exact for float32 input, the usual case).
    out[..., 2:] = flat[..., 2:].astype(np.float64)
    return degenerate


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


#: Largest person id and frame number a pose file may hold (int32). A day of video at 1,000 fps
#: has 86,400,000 frames: a larger key is a damaged file, not a frame.
MAX_POSE_INDEX = 2**31 - 1

#: Endings of compressed files: ``<clip>_alphapose_tracked_person.json.gz`` is not read.
_COMPRESSED_SUFFIXES = ('.gz', '.bz2', '.xz', '.zst', '.lz4', '.zip', '.7z')

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def pose_files_in(folder: str) -> List[Tuple[str, str]]:
    """(clip, path) of every pose file of a folder, in sorted file-name order.

    A file that only looks like a pose file (its suffix in another case, ``.JSON``, or
    compressed, ``.json.gz``) is an error rather than left out: left out, its clip would be
    scored as a clip with nobody in it. So are two files of one clip
    (``01_0014_alphapose_tracked_person.json`` and ``01_0014.json``).

    Args:
        folder (str): An existing folder.

    Returns:
        list: ``(clip name, file path)`` pairs.

    Raises:
        ValueError: A misnamed pose file or a clip with two pose files, naming the files.
    """
    found: Dict[str, str] = {}
    for file_name in sorted(os.listdir(folder)):
        path = osp.join(folder, file_name)
        if not file_name.endswith(POSE_FILE_SUFFIXES):
            stem = file_name
            for suffix in _COMPRESSED_SUFFIXES:
                if stem.lower().endswith(suffix):
                    stem = stem[:-len(suffix)]
                    break
            if not file_name.startswith('.') and stem.lower().endswith(POSE_FILE_SUFFIXES):
                raise ValueError(
                    f'{path}: not read as a pose file: pose file names end in '
                    f'{" or ".join(POSE_FILE_SUFFIXES)} (lower case, not compressed); rename '
                    f'or decompress it, or move it out of {folder}')
            continue
        clip = clip_name_from_pose_file(file_name)
        if clip in found:
            raise ValueError(f'clip {clip} has two pose files: {found[clip]} and {path}; keep '
                             'one')
        found[clip] = path
    return list(found.items())


def _parse_index(key: str) -> Optional[int]:
    """A person id or frame key as a number: ASCII digits only, at most MAX_POSE_INDEX.

    ``int()`` alone would also take ``'-5'``, ``' 5'``, ``'1_000'`` and ``'\u0665'``.
    """
    if not (key.isascii() and key.isdigit()):
        return None
    number = int(key)
    return number if number <= MAX_POSE_INDEX else None


class _RepeatedKey(ValueError):
    """A key written twice in one JSON object (``json`` itself keeps the last silently)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_repeats(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


def _is_finite_number(value: Any) -> bool:
    # bool is a subclass of int, and json reads `true` as True: compare the exact type. NaN
    # and inf fail the comparison; it also holds for ints beyond float64, without overflow.
    return type(value) in (int, float) and abs(value) <= _FLOAT32_MAX


def _bad_value_message(path: str, person_key: str, frame_key: str, index: int,
                       value: Any) -> str:
    if type(value) in (int, float):
        problem = ('is not finite' if isinstance(value, float) and not math.isfinite(value)
                   else 'is out of float32 range')
        hint = ('write a finite number (a joint that was not seen: confidence 0), or leave the '
                'frame out (it then counts as missing)')
    else:
        problem = f'is {"null" if value is None else type(value).__name__}, not a number'
        hint = 'every value is a number: x, y, confidence for each of the 17 joints'
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + '...'
    return (f'{path}: person {person_key}, frame {frame_key}: keypoint value {index} '
            f'({shown}) {problem}; {hint}')


def read_tracked_pose_json(path: str) -> Dict[int, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Read one clip's tracked-person JSON (STG-NF / AlphaPose-tracking layout).

    Layout: ``{person_id: {frame: {"keypoints": [x, y, c] * 17, "scores": s}}}``. Person ids and
    frame keys are ASCII digits, possibly zero-padded to any width, read as numbers
    0 .. :data:`MAX_POSE_INDEX`; keypoint values and the optional ``scores`` are finite numbers
    (not strings, booleans or null). An empty object ``{}`` is a clip with nobody in it.

    Args:
        path (str): The JSON file.

    Returns:
        dict: person id -> (frames (n,) int64 sorted, keypoints (n, 17, 3) float32,
        scores (n,) float32, NaN where a frame has no ``scores``).

    Raises:
        ValueError: Malformed JSON (with line, column and character position), a key written
            twice in one object, a person id or frame key that is not digits or out of range,
            two keys that are the same number (``"1"`` and ``"01"``), a wrong layout, or a
            value that is not a finite number, always naming the file (and the keys).
    """
    with open(path, 'rb') as f:
        data = f.read()
    raw = _parse_pose_json_fast(data)
    if raw is not None:
        try:
            persons = _persons_from_object(path, raw)
        except ValueError:  # reported below, as the checked reader words it
            persons = None
        if persons is not None and data.count(b'"') == 2 * _pose_json_string_count(raw):
            return persons
    return _persons_from_object(path, _parse_pose_json_checked(path))


def _parse_pose_json_fast(data: bytes) -> Optional[Any]:
    """Parse a pose file's bytes with the fastest reader at hand, or None.

    orjson where it is installed (about twice as fast as ``json`` on pose files), else ``json``
    without the repeated-key hook. None for anything they refuse, and for text with a
    backslash (an escape), where counting quotes would not count strings; the checked reader
    then takes over and gives the error or the result. A key written twice, which these readers
    accept silently, shows as more quotes in the text than strings in the result (see
    :func:`_pose_json_string_count`).
    """
    if b'\\' in data:
        return None
    try:
        if _orjson is not None:
            return _orjson.loads(data)
        return json.loads(data.decode('utf-8'))
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        return None


def _pose_json_string_count(raw: Dict[str, Any]) -> int:
    """The number of strings (keys and string values) in a pose file read by
    :func:`_persons_from_object` without error: keypoints and scores hold numbers then."""
    count = len(raw)
    for track in raw.values():
        count += len(track)
        for entry in track.values():
            count += len(entry)
            if len(entry) > 1 + ('scores' in entry):  # fields beyond keypoints and scores
                count += sum(_strings_in(value) for key, value in entry.items()
                             if key not in ('keypoints', 'scores'))
    return count


def _strings_in(value: Any) -> int:
    """Strings in a parsed JSON value: its string values and its objects' keys."""
    if isinstance(value, str):
        return 1
    if isinstance(value, dict):
        return len(value) + sum(_strings_in(item) for item in value.values())
    if isinstance(value, list):
        return sum(_strings_in(item) for item in value)
    return 0


def _parse_pose_json_checked(path: str) -> Any:
    """Parse a pose file with ``json``, refusing repeated keys; errors name the file."""
    try:
        with open(path, 'r', encoding='utf-8') as f:
            raw = json.load(f, object_pairs_hook=_object_without_repeats)
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}: malformed JSON at line {error.lineno}, column {error.colno} '
                         f'(char {error.pos}): {error.msg}') from None
    except _RepeatedKey as error:
        raise ValueError(f'{path}: key {error.key!r} is written twice in one JSON object (a '
                         'person id or frame listed twice; a JSON reader keeps only the last): '
                         'write each once') from None
    except UnicodeDecodeError as error:
        raise ValueError(f'{path}: not a UTF-8 JSON file ({error})') from None
    return raw


def _persons_from_object(path: str, raw: Any
                         ) -> Dict[int, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The checks and arrays of :func:`read_tracked_pose_json` on a parsed pose file."""
    if not isinstance(raw, dict):
        raise ValueError(f'{path}: expected an object {{person_id: {{frame: ...}}}}, '
                         f'got {type(raw).__name__}')
    persons = {}
    person_keys: Dict[int, str] = {}
    for person_key, track in raw.items():
        person_id = _parse_index(person_key)
        if person_id is None:
            raise ValueError(f'{path}: person id {person_key!r} is not an integer (ids are '
                             f'digits only, 0 .. {MAX_POSE_INDEX})')
        if person_id in person_keys:
            raise ValueError(f'{path}: person ids {person_keys[person_id]!r} and '
                             f'{person_key!r} are both person {person_id}: give each person '
                             'one id')
        person_keys[person_id] = person_key
        if not isinstance(track, dict):
            raise ValueError(f'{path}: person {person_key} is not an object of frames')
        persons[person_id] = _read_track(path, person_key, track)
    return persons


def _read_track(path: str, person_key: str,
                track: Dict[str, Any]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One person's ``{frame: entry}`` object as sorted (frames, keypoints, scores) arrays."""
    frames, keypoints, scores = [], [], []
    for frame_key, entry in track.items():
        frame = _parse_index(frame_key)
        if frame is None:
            raise ValueError(f'{path}: person {person_key}, frame key {frame_key!r} is not a '
                             f'frame number (digits only, 0 .. {MAX_POSE_INDEX})')
        if not isinstance(entry, dict) or 'keypoints' not in entry:
            raise ValueError(f'{path}: person {person_key}, frame {frame_key}: expected an '
                             'object {"keypoints": [x, y, c] * 17, "scores": s}, got '
                             f'{json.dumps(entry)[:80]}')
        values = entry['keypoints']
        if not isinstance(values, list) or len(values) != 51:
            raise ValueError(f'{path}: person {person_key}, frame {frame_key}: expected 51 '
                             f'keypoint values (17 x [x, y, c]), got '
                             f'{len(values) if isinstance(values, list) else values!r}')
        score = entry.get('scores', math.nan)
        if 'scores' in entry and not _is_finite_number(score):
            raise ValueError(f'{path}: person {person_key}, frame {frame_key}: "scores" is '
                             f'{score!r}, not a finite number')
        frames.append(frame)
        keypoints.append(values)
        scores.append(score)
    # One pass over every value at C speed; the slow search below runs only for a bad file.
    if not set(map(type, chain.from_iterable(keypoints))) <= {int, float}:
        _raise_first_bad_value(path, person_key, track)
    try:
        # Beyond float32 becomes inf (no warning wanted: it is reported below, by value).
        with np.errstate(over='ignore'):
            keypoints_np = np.asarray(keypoints, dtype=np.float32)  # (n, 51)
    except OverflowError:  # an integer beyond float64
        _raise_first_bad_value(path, person_key, track)
    if not np.isfinite(keypoints_np).all():
        _raise_first_bad_value(path, person_key, track)
    frames_np = np.asarray(frames, dtype=np.int64)
    order = np.argsort(frames_np, kind='stable')
    frames_np = frames_np[order]
    if len(frames_np) > 1 and np.any(np.diff(frames_np) == 0):
        duplicate = int(frames_np[1:][np.diff(frames_np) == 0][0])
        keys = [key for key in track if _parse_index(key) == duplicate]
        raise ValueError(f'{path}: person {person_key} has frame {duplicate} twice (keys '
                         f'{keys[0]!r} and {keys[1]!r}): write each frame once')
    # (n, 51) -> (n, 17, 3): 17 joints of (x, y, confidence)
    keypoints_np = keypoints_np.reshape(-1, 17, 3)[order]
    return frames_np, keypoints_np, np.asarray(scores, dtype=np.float32)[order]


def _raise_first_bad_value(path: str, person_key: str, track: Dict[str, Any]) -> NoReturn:
    for frame_key, entry in track.items():
        for index, value in enumerate(entry['keypoints']):
            if not _is_finite_number(value):
                raise ValueError(_bad_value_message(path, person_key, frame_key, index, value))
    raise AssertionError('no bad keypoint value found')  # unreachable: called on a bad track
