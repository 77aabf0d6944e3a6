"""Frame selections: evaluate a subset of each clip's frames (the human-related HR subsets).

The pose-based peers report AUCs on "human-related" subsets, which leave out the test frames whose
anomaly no skeleton can show (a thrown bag, a car). Whole clips are left out with
``exclude_clips`` (ShanghaiTech-HR); a *frame selection* keeps, per clip, a boolean mask of the
frames that take part:

- **HR-Avenue** (MPED-RNN's subset of CUHK Avenue, Morais et al., CVPR 2019): five test videos
  lose frames. The selection used by MoCoDAD (Flaborea et al., ICCV 2023) and COSKAD is written out
  in MoCoDAD's ``utils/eval_utils.py::get_avenue_mask`` as runs of kept (1) and dropped (0) frames;
  ``configs/stgnf/stgnf_hr-avenue.py`` carries them as ``runs``.
- **HR-UBnormal** (MoCoDAD): boolean masks ``hr_bool_masks/{testing,validating}/test_frame_mask/
  <clip>.npy`` (True = kept) distributed with MoCoDAD's UBnormal skeletons; a clip without a file
  keeps all its frames, as in MoCoDAD's and COSKAD's evaluation. Given here as ``dir``.

Dropped frames are removed from the per-frame scores and from the GT **before** the Gaussian
smoothing, as both MoCoDAD's and COSKAD's evaluations do (they index the clip's score and GT with
the mask, then smooth what is left); the empty-frame fill value is then taken over the kept
frames only.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, Mapping, Sequence, Tuple, Union

import numpy as np

__all__ = ['runs_to_mask', 'load_frame_selection', 'select_frames']

Runs = Sequence[Sequence[int]]


def runs_to_mask(runs: Runs, what: str = 'runs') -> np.ndarray:
    """Expand ``[[keep, count], ...]`` runs into a boolean mask.

    Args:
        runs: Pairs (1 = keep / 0 = drop, number of frames), in frame order.
        what: Name used in error messages (e.g. the clip).

    Returns:
        (sum of counts,) bool, True = kept.

    Raises:
        ValueError: On a pair that is not (0 or 1, positive int).
    """
    parts = []
    for index, run in enumerate(runs):
        if len(run) != 2:
            raise ValueError(f'{what}: run {index} must be [keep, count], got {run!r}')
        keep, count = run
        integers = all(isinstance(v, (int, np.integer)) for v in (keep, count))
        if not integers or keep not in (0, 1) or count <= 0:
            raise ValueError(f'{what}: run {index} must be [0 or 1, a positive frame count], got '
                             f'{list(run)!r}')
        parts.append(np.full(int(count), bool(keep)))
    if not parts:
        raise ValueError(f'{what}: no runs')
    return np.concatenate(parts)


def _load_mask_file(path: str) -> np.ndarray:
    try:
        mask = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f'{path}: not a numpy .npy frame selection ({err})') from err
    mask = np.asarray(mask)
    if mask.ndim != 1 or not np.isin(mask, (0, 1)).all():
        raise ValueError(f'{path}: a frame selection is a 1-D boolean (or 0/1) array, got dtype '
                         f'{mask.dtype}, shape {mask.shape}')
    return mask.astype(bool)


def load_frame_selection(spec: Mapping[str, Union[str, Mapping[str, Runs]]],
                         clip_lengths: Mapping[str, int]) -> Tuple[Dict[str, np.ndarray],
                                                                   Dict[str, int]]:
    """Per-clip boolean masks of the frames to evaluate.

    Args:
        spec: ``dict(runs={clip: [[keep, count], ...]})`` (selection written in the config) or
            ``dict(dir=folder)`` (``<folder>/<clip>.npy`` boolean masks, True = keep). Clips
            without a selection keep all their frames. Other keys: ``source`` (free text naming
            where the selection comes from, kept for the record).
        clip_lengths: Clip name -> number of frames of its GT mask, for every evaluated clip.

    Returns:
        ``(masks, counts)``: clip -> (F,) bool for the clips that have a selection, and
        ``selected_clips``, ``dropped_frames``, ``kept_frames`` (over all evaluated clips) and
        ``unused_selections`` (selections of clips that are not evaluated, ignored).

    Raises:
        ValueError: On an unknown key, both or neither of ``runs``/``dir``, a selection whose
            length differs from the clip's GT mask, or a clip left without any frame (naming
            the clip and, for files, the file).
        FileNotFoundError: If ``dir`` does not exist.
    """
    unknown = sorted(set(spec) - {'runs', 'dir', 'source'})
    if unknown or ('runs' in spec) == ('dir' in spec):
        raise ValueError(f'frame_selection must be dict(runs={{clip: [[keep, count], ...]}}) or '
                         f'dict(dir=folder of <clip>.npy masks), optionally with source=...; got '
                         f'keys {sorted(spec)}')
    raw: Dict[str, np.ndarray] = {}
    where: Dict[str, str] = {}
    if 'runs' in spec:
        for clip, runs in dict(spec['runs']).items():
            raw[str(clip)] = runs_to_mask(runs, f'frame_selection runs of clip {clip!r}')
            where[str(clip)] = f'frame_selection runs of clip {clip!r}'
    else:
        folder = str(spec['dir'])
        if not osp.isdir(folder):
            raise FileNotFoundError(f'frame selection folder not found: {folder}')
        for name in sorted(os.listdir(folder)):
            if name.endswith('.npy'):
                path = osp.join(folder, name)
                raw[name[:-4]] = _load_mask_file(path)
                where[name[:-4]] = path
    masks = {}
    for clip, mask in raw.items():
        if clip not in clip_lengths:
            continue
        if len(mask) != clip_lengths[clip]:
            raise ValueError(f'{where[clip]}: selects among {len(mask)} frames but clip {clip!r} '
                             f'has {clip_lengths[clip]} in its ground-truth mask')
        if not mask.any():
            raise ValueError(f'{where[clip]}: keeps no frame of clip {clip!r}; leave the clip '
                             'out with exclude_clips instead')
        masks[clip] = mask
    dropped = int(sum(int((~m).sum()) for m in masks.values()))
    counts = dict(selected_clips=len(masks), dropped_frames=dropped,
                  kept_frames=int(sum(clip_lengths.values())) - dropped,
                  unused_selections=len(set(raw) - set(clip_lengths)))
    return masks, counts


def select_frames(per_clip: Mapping[str, np.ndarray],
                  masks: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Keep the selected frames of every clip that has a selection (others are unchanged).

    Args:
        per_clip: Clip name -> (F,) per-frame values (scores, GT, kinds).
        masks: Clip name -> (F,) bool, True = kept (see :func:`load_frame_selection`).

    Returns:
        A new dict, clip -> (F_kept,) values.

    Raises:
        ValueError: If a clip's values and its mask differ in length.
    """
    out = {}
    for clip, values in per_clip.items():
        values = np.asarray(values)
        mask = masks.get(clip)
        if mask is None:
            out[clip] = values
            continue
        if values.shape[0] != mask.shape[0]:
            raise ValueError(f'clip {clip!r}: {values.shape[0]} frames but its frame selection '
                             f'has {mask.shape[0]}')
        out[clip] = values[mask]
    return out
