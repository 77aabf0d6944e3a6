"""Frame-level video anomaly detection (VAD) scoring, STG-NF protocol.

Pure numpy/scipy maths that turns per-window scores into per-frame scores and
frame-level AUCs exactly as the official STG-NF evaluation (Hirschorn & Avidan, ICCV 2023) does,
so that numbers obtained here are directly comparable with the published ones.

Protocol, in order (all per-frame values are *normality*: higher = more normal):

1. Every window's score lands on frame ``start + seg_len // 2`` of its clip. Each clip holds a
   (persons x frames) grid initialised to ``+inf``; a frame's normality is the minimum over persons,
   i.e. the most anomalous person decides. Because a person has at most one window per start
   frame, this equals the minimum over all windows of the clip landing on that frame, which is
   what :func:`windows_to_frame_scores` computes without building the grid.
2. Over the whole evaluated set (all clips concatenated, not per clip), ``+inf`` frames (nobody
   scored there) take the largest finite normality of the set (the least anomalous score), and
   ``-inf`` frames take the smallest finite one (:func:`fill_empty_frames`).
3. Per clip, ``scipy.ndimage.gaussian_filter1d(x, sigma)`` with its defaults (``mode='reflect'``,
   ``truncate=4.0``) is applied successively for sigma = 1, 2, ..., 6 (:func:`smooth_scores`).
4. Clips are concatenated in sorted clip-name order and the micro AUC is
   ``roc_auc_score(gt, -normality)`` with ``gt`` 1 = abnormal (:func:`compute_vad_aucs`; the
   AUC is :func:`~mgenet_mm.evaluation.functional.roc_auc.binary_roc_auc`, scikit-learn's number
   from exact counts). The official code computes ``roc_auc_score(1 - gt, normality)``, which is
   the same number.

Typical use::

    gt = {name: load_shanghaitech_gt(path) for name, path in mask_files.items()}
    result = score_vad_windows(-nll, metadata, gt, seg_len=24)
    result['micro_auc']
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .roc_auc import binary_roc_auc

__all__ = [
    'DEFAULT_SIGMAS',
    'parse_shanghaitech_clip_name',
    'format_shanghaitech_clip_name',
    'load_shanghaitech_gt',
    'load_ubnormal_gt',
    'ubnormal_clip_name',
    'windows_to_frame_scores',
    'fill_empty_frames',
    'smooth_scores',
    'padded_clip_auc',
    'compute_vad_aucs',
    'score_vad_windows',
    'kind_aucs',
]

#: Successive Gaussian sigmas of the STG-NF smoothing (``range(1, 7)`` in the official code).
DEFAULT_SIGMAS: Tuple[int, ...] = (1, 2, 3, 4, 5, 6)

PathLike = Union[str, Path]
ClipIdFn = Callable[[str], Tuple[int, int]]

_SHT_NAME = re.compile(r'^(\d+)_(\d+)(?:\.npy)?$')


# --------------------------------------------------------------------------------------------
# Clip names and ground truth
# --------------------------------------------------------------------------------------------
def parse_shanghaitech_clip_name(name: str) -> Tuple[int, int]:
    """Map a ShanghaiTech clip name to the (scene, clip) numbers stored in window metadata.

    Args:
        name: Clip name such as ``'01_0014'``; a trailing ``'.npy'`` (the mask file name) is
            accepted too.

    Returns:
        ``(scene, clip)`` as ints, e.g. ``(1, 14)``.

    Raises:
        ValueError: If the name is not ``<digits>_<digits>``.
    """
    match = _SHT_NAME.match(Path(str(name)).name)
    if match is None:
        raise ValueError(f'clip name {name!r} is not of the ShanghaiTech form <scene>_<clip>, '
                         f"e.g. '01_0014'")
    return int(match.group(1)), int(match.group(2))


def format_shanghaitech_clip_name(scene: int, clip: int) -> str:
    """Inverse of :func:`parse_shanghaitech_clip_name`: ``(1, 14) -> '01_0014'``."""
    return f'{int(scene):02d}_{int(clip):04d}'


def _check_binary_mask(mask: np.ndarray, path: PathLike) -> None:
    if mask.ndim != 1 or mask.size == 0:
        raise ValueError(f'{path}: expected a non-empty 1-D per-frame mask, got shape {mask.shape}')
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f'{path}: per-frame mask must contain only 0 and 1, '
                         f'found {np.unique(mask)[:10]}')


def _load_npy_mask(path: PathLike) -> np.ndarray:
    path = Path(path)
    try:
        # allow_pickle stays False: masks are plain arrays and pickles are not trusted input.
        mask = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(
            f'{path}: not a numpy .npy frame mask ({err}). UBnormal object-track annotations '
            f"('<id>,<start>,<end>' text) are not per-frame masks.") from err
    if not isinstance(mask, np.ndarray):
        raise ValueError(f'{path}: expected a single numpy array, got {type(mask).__name__}')
    _check_binary_mask(mask, path)
    return mask


def load_shanghaitech_gt(path: PathLike) -> np.ndarray:
    """Load a ShanghaiTech test frame mask (``<scene>_<clip>.npy``, already 1 = abnormal).

    Args:
        path: The ``.npy`` mask file.

    Returns:
        ``uint8`` array of shape (num_frames,), 1 = abnormal.

    Raises:
        ValueError: If the file is not a 1-D 0/1 numpy array (the message names the file).
    """
    return _load_npy_mask(path).astype(np.uint8)


def load_ubnormal_gt(path: PathLike) -> np.ndarray:
    """Load a UBnormal frame mask as distributed with STG-NF and convert it to 1 = abnormal.

    The ``<video>_tracks.txt`` files of that distribution are ``.npy`` arrays despite their name,
    with 1 = NORMAL and 0 = abnormal (the opposite of ShanghaiTech), hence the flip.

    Args:
        path: The ``*_tracks.txt`` file.

    Returns:
        ``uint8`` array of shape (num_frames,), 1 = abnormal.

    Raises:
        ValueError: If the file is not a 1-D 0/1 numpy array, e.g. one of UBnormal's own
            object-track text files; the message names the file.
    """
    return (1 - _load_npy_mask(path)).astype(np.uint8)


def ubnormal_clip_name(path: PathLike) -> str:
    """Clip name of a UBnormal GT or pose file: ``'.../abnormal_scene_1_scenario_1_tracks.txt'``
    -> ``'abnormal_scene_1_scenario_1'`` (also strips ``_alphapose_tracked_person.json``)."""
    name = Path(path).name
    for suffix in ('_tracks.txt', '_alphapose_tracked_person.json', '.npy'):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


# --------------------------------------------------------------------------------------------
# Windows -> frames
# --------------------------------------------------------------------------------------------
def _window_clip_index(metadata: np.ndarray, names: Sequence[str],
                       clip_names: Optional[Sequence[str]],
                       clip_id_fn: ClipIdFn) -> np.ndarray:
    """Index into ``names`` of every window's clip, vectorised over windows."""
    num = metadata.shape[0]
    lookup = {name: i for i, name in enumerate(names)}
    if clip_names is not None:
        window_names = np.asarray(clip_names)
        if window_names.shape != (num,):
            raise ValueError(f'clip_names must have one entry per window ({num}), '
                             f'got shape {window_names.shape}')
        # Few distinct clips: resolve each distinct name once, then broadcast back.
        uniq, inverse = np.unique(window_names, return_inverse=True)
        missing = [str(u) for u in uniq if str(u) not in lookup]
        if missing:
            raise ValueError(f'clip {missing[0]!r} has windows but no ground-truth mask / clip '
                             f'length ({len(missing)} such clips)')
        return np.array([lookup[str(u)] for u in uniq], dtype=np.int64)[inverse]

    # Official rule: a GT clip name is parsed to (scene, clip) ints which are matched against the
    # first two metadata columns; do it once per distinct pair.
    id_to_index: Dict[Tuple[int, int], int] = {}
    for i, name in enumerate(names):
        key = tuple(int(v) for v in clip_id_fn(name))
        if key in id_to_index:
            raise ValueError(f'clips {names[id_to_index[key]]!r} and {name!r} both map to '
                             f'(scene, clip) = {key}')
        id_to_index[key] = i
    # One int64 key per (scene, clip): a 1-D unique is ~10x faster than np.unique(axis=0).
    scene_col = metadata[:, 0].astype(np.int64)
    clip_col = metadata[:, 1].astype(np.int64)
    clip_min = int(clip_col.min())
    span = int(clip_col.max()) - clip_min + 1
    uniq_keys, inverse = np.unique(scene_col * span + (clip_col - clip_min), return_inverse=True)
    idx = np.empty(len(uniq_keys), dtype=np.int64)
    for j, key in enumerate(uniq_keys.tolist()):
        scene, clip = divmod(key, span)
        clip += clip_min
        if (scene, clip) not in id_to_index:
            raise ValueError(
                f'clip {format_shanghaitech_clip_name(scene, clip)!r} (scene {scene}, clip {clip}) '
                f'has windows but no ground-truth mask / clip length')
        idx[j] = id_to_index[(scene, clip)]
    return idx[inverse.reshape(-1)]


def windows_to_frame_scores(
    scores: np.ndarray,
    metadata: np.ndarray,
    clip_lengths: Mapping[str, int],
    seg_len: int,
    *,
    clip_names: Optional[Sequence[str]] = None,
    clip_id_fn: ClipIdFn = parse_shanghaitech_clip_name,
) -> Dict[str, np.ndarray]:
    """Place window normality scores on their middle frames and take the min over persons.

    Args:
        scores: (N,) window normality scores (higher = more normal, e.g. ``-nll``).
        metadata: (N, 4) integer array, one row per window: scene, clip, person, start frame
            (STG-NF layout). Only the person and start columns are used when ``clip_names`` is
            given; an (N, 2) array of (person, start) is then accepted as well.
        clip_lengths: Clip name -> number of frames (the GT mask length) for every clip to be
            evaluated. Clips listed here without any window come back all ``+inf``.
        seg_len: Window length T; a window starting at ``s`` scores frame ``s + T // 2``.
        clip_names: Optional (N,) clip name per window, for datasets whose clips are not
            ``<scene>_<clip>`` numbers (UBnormal, own videos). Names must be keys of
            ``clip_lengths``.
        clip_id_fn: Without ``clip_names``, maps each key of ``clip_lengths`` to the
            ``(scene, clip)`` ints found in metadata columns 0-1. Defaults to the ShanghaiTech
            rule ``'01_0014' -> (1, 14)``.

    Returns:
        Clip name -> float64 (num_frames,) normality per frame, before filling and smoothing,
        in sorted clip-name order. ``+inf`` marks frames that no window scored.

    Raises:
        ValueError: On mismatched shapes, NaN scores, a clip that has windows but is not in
            ``clip_lengths``, or a window whose middle frame lies outside its clip (the message
            names the clip).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    metadata = np.asarray(metadata)
    if seg_len < 1:
        raise ValueError(f'seg_len must be positive, got {seg_len}')
    num = scores.shape[0]
    if metadata.ndim != 2 or metadata.shape[0] != num:
        raise ValueError(f'metadata must be (N, 4) with N = {num} windows, got {metadata.shape}')
    if metadata.shape[1] < 4 and (clip_names is None or metadata.shape[1] != 2):
        raise ValueError('metadata needs 4 columns (scene, clip, person, start), or 2 (person, '
                         f'start) with clip_names, got {metadata.shape[1]}')
    if not np.issubdtype(metadata.dtype, np.integer):
        if not np.array_equal(metadata, np.round(metadata)):
            raise ValueError('metadata must hold integers (scene, clip, person, start)')
        metadata = metadata.astype(np.int64)

    names = sorted(clip_lengths)
    lengths = np.array([int(clip_lengths[n]) for n in names], dtype=np.int64)
    if (lengths <= 0).any():
        bad = names[int(np.argmax(lengths <= 0))]
        raise ValueError(f'clip {bad!r} has no frames (length {clip_lengths[bad]})')
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    flat = np.full(int(offsets[-1]), np.inf, dtype=np.float64)
    result_slices = {n: slice(int(offsets[i]), int(offsets[i + 1])) for i, n in enumerate(names)}
    if num == 0:
        return {n: flat[s].copy() for n, s in result_slices.items()}

    clip_idx = _window_clip_index(metadata, names, clip_names, clip_id_fn)
    nan = np.isnan(scores)
    if nan.any():
        # A NaN would propagate through min and smoothing into a meaningless AUC; refuse early.
        raise ValueError(f'{int(nan.sum())} window scores are NaN (first in clip '
                         f'{names[clip_idx[int(np.argmax(nan))]]!r})')

    start = metadata[:, 3] if metadata.shape[1] >= 4 else metadata[:, 1]
    frame = start.astype(np.int64) + seg_len // 2
    outside = (frame < 0) | (frame >= lengths[clip_idx])
    if outside.any():
        first = int(np.argmax(outside))
        name = names[clip_idx[first]]
        raise ValueError(
            f'clip {name!r}: window middle frame {int(frame[first])} (start '
            f'{int(start[first])} + {seg_len // 2}) is outside its ground-truth mask of '
            f'{int(lengths[clip_idx[first]])} frames ({int(outside.sum())} windows outside)')

    # Min over every window landing on a frame == min over persons (one window per person and
    # frame). Duplicated (person, start) rows, which the official code resolves by "last write
    # wins", resolve here to the most anomalous one, which does not depend on row order.
    np.minimum.at(flat, offsets[clip_idx] + frame, scores)
    return {n: flat[s].copy() for n, s in result_slices.items()}


# --------------------------------------------------------------------------------------------
# Filling and smoothing
# --------------------------------------------------------------------------------------------
def fill_empty_frames(
        frame_scores: Mapping[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], float]:
    """Replace infinite frame normalities using values of the whole set, as STG-NF does.

    ``+inf`` (nobody scored the frame) becomes the largest finite normality over all clips, the
    least anomalous score of the set; ``-inf`` becomes the smallest finite one. The replacement is
    global over the set, not per clip, and happens after the min over persons and before
    smoothing. If the set holds no finite value at all, 0.0 is used so that the metric still runs.

    Args:
        frame_scores: Clip name -> (num_frames,) normality per frame.

    Returns:
        ``(filled, fill_value)``: new arrays (float64, inputs untouched) and the value given to
        empty frames.

    Raises:
        ValueError: If any frame score is NaN (the message names the clip).
    """
    filled = {n: np.array(v, dtype=np.float64).reshape(-1) for n, v in frame_scores.items()}
    high, low = -np.inf, np.inf
    for name, values in filled.items():
        if np.isnan(values).any():
            raise ValueError(f'clip {name!r}: frame scores contain NaN')
        finite = values[np.isfinite(values)]
        if finite.size:
            high, low = max(high, float(finite.max())), min(low, float(finite.min()))
    if not np.isfinite(high):
        high = low = 0.0
    for values in filled.values():
        values[values == np.inf] = high
        values[values == -np.inf] = low
    return filled, high


def smooth_scores(frame_scores: Mapping[str, np.ndarray],
                  sigmas: Iterable[float] = DEFAULT_SIGMAS) -> Dict[str, np.ndarray]:
    """Gaussian-smooth each clip independently, once per sigma in turn.

    Matches the official ``for sig in range(1, 7): x = gaussian_filter1d(x, sigma=sig)`` with
    scipy's defaults (``mode='reflect'``, ``truncate=4.0``) on float64 data.

    Args:
        frame_scores: Clip name -> (num_frames,) finite scores.
        sigmas: Successive standard deviations, in frames. Empty = no smoothing.

    Returns:
        Clip name -> smoothed float64 copy.
    """
    sigmas = tuple(sigmas)
    out = {}
    for name, values in frame_scores.items():
        smoothed = np.array(values, dtype=np.float64).reshape(-1)
        for sigma in sigmas:
            smoothed = gaussian_filter1d(smoothed, sigma=sigma)
        out[name] = smoothed
    return out


# --------------------------------------------------------------------------------------------
# AUCs
# --------------------------------------------------------------------------------------------
def padded_clip_auc(gt: np.ndarray, anomaly: np.ndarray) -> float:
    """Frame AUC of one clip with the usual macro-AUC padding, defined for one-class clips too.

    One normal frame scored strictly below every frame of the clip and one abnormal frame scored
    strictly above are appended before the AUC. This is the padding used by the common
    macro-AUC implementations (they append label 0 with score 0 and label 1 with score 1 or
    ``float_max`` to min-max-normalised scores); placing the pads outside the clip's own score
    range makes it independent of the score scale. Effects: a clip with only normal frames
    scores the fraction of (normal, pad-abnormal) pairs ranked right, i.e. 1.0; same for an
    all-abnormal clip; a two-class clip is pulled slightly towards 1 by the always-correct pad
    pairs.
    The padding is applied to every clip so that all clips are scored by the same rule.

    Args:
        gt: (F,) 0/1 labels, 1 = abnormal.
        anomaly: (F,) finite anomaly scores, higher = more abnormal.

    Returns:
        The padded ROC AUC.
    """
    anomaly = np.asarray(anomaly, dtype=np.float64)
    # Pads at +-(2 * max|s| + 1): strictly outside [min, max] whatever the scale or sign.
    bound = 2.0 * float(np.abs(anomaly).max(initial=0.0)) + 1.0
    labels = np.concatenate(([0], np.asarray(gt).astype(np.int64), [1]))
    padded = np.concatenate(([-bound], anomaly, [bound]))
    return binary_roc_auc(labels, padded)


def _micro_auc(gt: np.ndarray, anomaly: np.ndarray, what: str) -> float:
    if gt.min() == gt.max():
        raise ValueError(f'{what}: the ground truth of the whole set has a single class '
                         f'({int(gt[0])}); the frame AUC is undefined')
    return binary_roc_auc(gt, anomaly)


def compute_vad_aucs(
    frame_scores: Mapping[str, np.ndarray],
    gt_by_clip: Mapping[str, np.ndarray],
    *,
    sigmas: Iterable[float] = DEFAULT_SIGMAS,
    clip_order: Optional[Sequence[str]] = None,
) -> Dict[str, object]:
    """Frame-level micro/macro AUCs from per-frame normality (output of
    :func:`windows_to_frame_scores`).

    Args:
        frame_scores: Clip name -> (num_frames,) normality per frame before filling/smoothing;
            ``+inf`` marks empty frames. Every clip must have a GT mask of the same length.
            Clips in ``gt_by_clip`` but absent here are evaluated as entirely empty.
        gt_by_clip: Clip name -> (num_frames,) 0/1 mask, 1 = abnormal (use
            :func:`load_ubnormal_gt` for UBnormal files).
        sigmas: Successive Gaussian sigmas (default 1..6, the official protocol).
        clip_order: Concatenation order of clips; default sorted clip names (the official order
            for ShanghaiTech). The AUCs do not depend on it, only the concatenated arrays do.

    Returns:
        Dict with

        - ``micro_auc``: AUC over all frames concatenated, after filling and smoothing (the
          number reported by STG-NF).
        - ``micro_auc_unsmoothed``: the same without smoothing (filling still applied).
        - ``macro_auc``: mean over clips of :func:`padded_clip_auc` of the smoothed scores.
        - ``per_clip_auc``: clip name -> padded AUC.
        - ``anomaly_scores``: clip name -> final per-frame ANOMALY score (``-normality`` after
          filling and smoothing; higher = more abnormal), for plotting.
        - ``normality``: (total_frames,) final normality, clips concatenated in ``clips`` order.
        - ``gt``: (total_frames,) concatenated masks, 1 = abnormal.
        - ``clips``: clip names in concatenation order.
        - ``fill_value``: normality given to empty frames.
        - ``num_frames``, ``num_clips``, ``num_empty_frames``, ``num_abnormal_frames``.

    Raises:
        ValueError: If a scored clip has no GT mask, lengths differ, scores hold NaN, or the GT
            of the whole set has a single class.
    """
    names = list(clip_order) if clip_order is not None else sorted(gt_by_clip)
    if len(set(names)) != len(names):
        raise ValueError('clip_order lists a clip twice')
    unknown = [n for n in frame_scores if n not in gt_by_clip]
    if unknown:
        raise ValueError(f'clip {unknown[0]!r} has scores but no ground-truth mask '
                         f'({len(unknown)} such clips)')
    missing_order = [n for n in gt_by_clip if n not in set(names)]
    if missing_order:
        raise ValueError(f'clip {missing_order[0]!r} has a ground-truth mask but is not in '
                         'clip_order')

    gts: Dict[str, np.ndarray] = {}
    raw: Dict[str, np.ndarray] = {}
    for name in names:
        gt = np.asarray(gt_by_clip[name]).reshape(-1)
        _check_binary_mask(gt, f'clip {name!r}')
        gts[name] = gt.astype(np.int64)
        values = frame_scores.get(name)
        if values is None:
            raw[name] = np.full(gt.shape[0], np.inf)
            continue
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.shape[0] != gt.shape[0]:
            raise ValueError(f'clip {name!r}: {values.shape[0]} frame scores but its ground-truth '
                             f'mask has {gt.shape[0]} frames')
        raw[name] = values

    num_empty = int(sum(int(np.isposinf(v).sum()) for v in raw.values()))
    filled, fill_value = fill_empty_frames(raw)
    smoothed = smooth_scores(filled, sigmas)

    gt_all = np.concatenate([gts[n] for n in names])
    normality = np.concatenate([smoothed[n] for n in names])
    unsmoothed = np.concatenate([filled[n] for n in names])
    per_clip = {n: padded_clip_auc(gts[n], -smoothed[n]) for n in names}
    return {
        'micro_auc': _micro_auc(gt_all, -normality, 'micro AUC'),
        'micro_auc_unsmoothed': _micro_auc(gt_all, -unsmoothed, 'micro AUC'),
        'macro_auc': float(np.mean(list(per_clip.values()))),
        'per_clip_auc': per_clip,
        'anomaly_scores': {n: -smoothed[n] for n in names},
        'normality': normality,
        'gt': gt_all,
        'clips': names,
        'fill_value': fill_value,
        'num_frames': int(gt_all.shape[0]),
        'num_clips': len(names),
        'num_empty_frames': num_empty,
        'num_abnormal_frames': int(gt_all.sum()),
    }


def kind_aucs(anomaly_scores: Mapping[str, np.ndarray],
              kinds_by_clip: Mapping[str, np.ndarray],
              kind_names: Mapping[int, str]) -> Dict[str, float]:
    """Micro and macro AUC of each anomaly kind against the normal frames.

    For kind k, only the normal frames (kind 0) and the frames of kind k take part: frames of
    other kinds are left out, so each number says how well that kind alone is told from normal
    behaviour.

    Args:
        anomaly_scores: Clip name -> final per-frame anomaly scores (after smoothing).
        kinds_by_clip: Clip name -> (F,) int per-frame kind, 0 = normal.
        kind_names: Kind id (> 0) -> name used in the result keys.

    Returns:
        ``micro_auc/<name>`` and ``macro_auc/<name>`` (mean padded AUC over the clips that
        contain the kind) for every kind present; ``num_frames/<name>``.

    Raises:
        ValueError: A clip's kinds and scores differ in length (naming the clip).
    """
    results: Dict[str, float] = {}
    names = sorted(anomaly_scores)
    for name in names:
        if name not in kinds_by_clip or len(kinds_by_clip[name]) != len(anomaly_scores[name]):
            raise ValueError(f'clip {name!r}: per-frame kinds missing or of another length than '
                             'its scores')
    scores = np.concatenate([np.asarray(anomaly_scores[n], dtype=np.float64) for n in names])
    kinds = np.concatenate([np.asarray(kinds_by_clip[n]).astype(np.int64) for n in names])
    for kind, label in sorted(kind_names.items()):
        keep = (kinds == 0) | (kinds == kind)
        positives = int((kinds == kind).sum())
        if positives == 0 or positives == int(keep.sum()):
            continue
        results[f'micro_auc/{label}'] = binary_roc_auc(kinds[keep] == kind, scores[keep])
        per_clip = []
        for name in names:
            clip_kinds = np.asarray(kinds_by_clip[name]).astype(np.int64)
            if not (clip_kinds == kind).any():
                continue
            clip_keep = (clip_kinds == 0) | (clip_kinds == kind)
            per_clip.append(padded_clip_auc((clip_kinds[clip_keep] == kind).astype(np.int64),
                                            np.asarray(anomaly_scores[name])[clip_keep]))
        results[f'macro_auc/{label}'] = float(np.mean(per_clip))
        results[f'num_frames/{label}'] = positives
    return results


def score_vad_windows(
    scores: np.ndarray,
    metadata: np.ndarray,
    gt_by_clip: Mapping[str, np.ndarray],
    seg_len: int,
    *,
    clip_names: Optional[Sequence[str]] = None,
    clip_id_fn: ClipIdFn = parse_shanghaitech_clip_name,
    sigmas: Iterable[float] = DEFAULT_SIGMAS,
) -> Dict[str, object]:
    """One call from window scores to the AUCs: :func:`windows_to_frame_scores` with clip lengths
    taken from the GT masks, then :func:`compute_vad_aucs`.

    Args:
        scores: (N,) window normality scores (higher = more normal, e.g. ``-nll``).
        metadata: (N, 4) scene, clip, person, start per window (see
            :func:`windows_to_frame_scores`).
        gt_by_clip: Clip name -> 0/1 mask, 1 = abnormal; defines the evaluated clips.
        seg_len: Window length T.
        clip_names: Optional (N,) clip name per window (UBnormal, own videos).
        clip_id_fn: Clip name -> (scene, clip) ints, used without ``clip_names``.
        sigmas: Successive Gaussian sigmas.

    Returns:
        The dict of :func:`compute_vad_aucs` plus ``num_windows``.
    """
    lengths = {n: int(np.asarray(m).reshape(-1).shape[0]) for n, m in gt_by_clip.items()}
    frames = windows_to_frame_scores(scores, metadata, lengths, seg_len,
                                     clip_names=clip_names, clip_id_fn=clip_id_fn)
    result = compute_vad_aucs(frames, gt_by_clip, sigmas=sigmas)
    result['num_windows'] = int(np.asarray(scores).reshape(-1).shape[0])
    return result
