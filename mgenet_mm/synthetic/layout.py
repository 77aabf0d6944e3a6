"""Where a benchmark's files go: one home for the paths the writer writes and the checks read.

ShanghaiTech's layout, plus a validation split in the test split's layout::

    training/videos/<clip>.avi                  pose/train/<clip>_alphapose_tracked_person.json
    testing/{videos/<clip>.avi,frames/<clip>/}     pose/test/...  gt/test_frame_{mask,kinds,events}/
    validation/{videos/<clip>.avi,frames/<clip>/}  pose/val/...   gt/val_frame_{mask,kinds,events}/
                                                                  gt/{test,val}_region_tracks/
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, Optional, Tuple

#: Split -> (folder of its videos and frames, pose subfolder, prefix of its GT folders or None).
SPLITS: Dict[str, Tuple[str, str, Optional[str]]] = {
    'train': ('training', 'train', None),
    'test': ('testing', 'test', 'test'),
    'val': ('validation', 'val', 'val'),
}
#: Per-frame ground-truth arrays of an evaluation split: mask (1 = abnormal), kinds, events.
GT_ARRAYS = ('mask', 'kinds', 'events')
#: File in every ``gt/<split>_frame_events`` folder: event code -> ``<kind>/<event>``.
EVENT_NAMES_FILE = 'names.json'
#: Folder suffix of the region ground truth (RBDC/TBDC): ``gt/<split>_region_tracks/<clip>.txt``.
REGION_TRACKS = 'region_tracks'


def is_evaluation(split: str) -> bool:
    """Test and validation splits have frames and ground truth; training has neither."""
    return SPLITS[split][2] is not None


def video_path(split: str, name: str) -> str:
    return f'{SPLITS[split][0]}/videos/{name}.avi'


def frame_folder(split: str, name: str) -> str:
    return f'{SPLITS[split][0]}/frames/{name}'


def frame_key_width(split: str, n_frames: int) -> int:
    """Digits of the frame keys and frame files: 4 in training pose files, 3 elsewhere (as
    STG-NF's extraction writes them), more for long clips."""
    return max(4 if split == 'train' else 3, len(str(n_frames - 1)))


def pose_path(split: str, name: str) -> str:
    return f'pose/{SPLITS[split][1]}/{name}_alphapose_tracked_person.json'


def gt_folder(split: str, array: str) -> str:
    """``gt/<split>_frame_<array>`` of an evaluation split, e.g. ``gt/val_frame_mask``."""
    if not is_evaluation(split):
        raise ValueError(f'the {split} split has no ground truth')
    if array not in GT_ARRAYS:
        raise ValueError(f'unknown ground-truth array {array!r}; one of {GT_ARRAYS}')
    return f'gt/{SPLITS[split][2]}_frame_{array}'


def gt_path(split: str, array: str, name: str) -> str:
    return osp.join(gt_folder(split, array), f'{name}.npy').replace(osp.sep, '/')


def region_path(split: str, name: str) -> str:
    """``gt/<split>_region_tracks/<clip>.txt``: the clip's anomalous regions, in UBnormal's
    RBDC/TBDC track layout (:mod:`mgenet_mm.evaluation.functional.region_gt`)."""
    if not is_evaluation(split):
        raise ValueError(f'the {split} split has no ground truth')
    return f'gt/{SPLITS[split][2]}_{REGION_TRACKS}/{name}.txt'
