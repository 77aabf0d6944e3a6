"""Per-person CSV skeleton trajectories, as MPED-RNN, TrajREC and MoCoDAD distribute them.

The pose-based peers ship their extracted skeletons of HR-Avenue, HR-ShanghaiTech (HR-STC) and
UBnormal as one CSV file per tracked person (layout of MPED-RNN, Morais et al., CVPR 2019, reused
by TrajREC, Stergiou et al., WACV 2024, and MoCoDAD, Flaborea et al., ICCV 2023):

- one row per frame in which the person was tracked: the frame number, then the 17 COCO keypoints
  as ``x1, y1, x2, y2, ..., x17, y17`` in pixels (35 comma-separated numbers, no header, written
  as ``%.4f``); a joint that was not detected is ``0, 0``;
- no confidence column: here a joint gets confidence 1, and 0 where it is ``(0, 0)``;
- the file name is the person id (``0001.csv``, ``00001.csv``).

Folders (``layout``):

- ``'flat'`` (MoCoDAD): ``<root>/<scene>-<clip>/<person>.csv``, e.g. ``01-0014/00001.csv``;
  the clip is named ``<scene>_<clip>`` (``01_0014``), the name of its mask in the distribution's
  ``test_frame_mask/<scene>_<clip>.npy``;
- ``'nested'`` (MPED-RNN, TrajREC): ``<root>/<camera>/<video>/<person>.csv``, e.g.
  ``testing/trajectories/01/0014/0001.csv``, clip ``01_0014`` (mask
  ``frame_level_masks/01/01_0014.npy``, GT format ``'shanghaitech_by_camera'``); a video folder
  whose name already holds the camera (the training split's ``00/01_001``) keeps its name.

Frame numbers: MPED-RNN's and TrajREC's evaluations index the frame masks with them directly
(0-based); MoCoDAD's places frame ``f`` at mask index ``f - 1`` (``compute_var_matrix`` in its
``utils/eval_utils.py``), i.e. its files count from 1. ``frame_offset`` is subtracted from every
frame number (0 or 1); a frame number below it is an error naming the file.
"""
from __future__ import annotations

import os
import os.path as osp
import warnings
from typing import Dict, List, Tuple

import numpy as np

from mmaction.registry import DATASETS
from .pose_window_dataset import PoseWindowDataset

__all__ = ['read_trajectory_csv', 'read_trajectory_folder', 'trajectory_clip_folders',
           'TrajectoryCSVDataset', 'CSV_LAYOUTS']

CSV_LAYOUTS = ('flat', 'nested')
NUM_COLUMNS = 1 + 17 * 2  # frame, then x, y of the 17 COCO joints

Track = Tuple[np.ndarray, np.ndarray, np.ndarray]


def read_trajectory_csv(path: str, frame_offset: int = 0) -> Track:
    """Read one person's trajectory CSV.

    Args:
        path: The ``<person>.csv`` file.
        frame_offset: Subtracted from the frame numbers (1 for files that count from 1).

    Returns:
        ``(frames, keypoints, scores)``: (n,) int64 sorted 0-based frame numbers, (n, 17, 3)
        float32 COCO-17 keypoints (x, y, confidence 1, or 0 for a joint at (0, 0)), and (n,)
        float32 track scores (NaN: the CSV has none).

    Raises:
        ValueError: Not a numeric CSV of 35 columns, a frame number that is not an integer,
            below ``frame_offset`` or repeated, or a non-finite coordinate, naming the file (and
            the row, counted from 1).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)  # numpy warns on an empty file
            table = np.loadtxt(path, delimiter=',', ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise ValueError(f'{path}: not a numeric trajectory CSV ({err})') from None
    if table.size == 0:
        empty = np.zeros(0)
        return (empty.astype(np.int64), np.zeros((0, 17, 3), np.float32),
                empty.astype(np.float32))
    if table.shape[1] != NUM_COLUMNS:
        raise ValueError(f'{path}: {table.shape[1]} columns, expected {NUM_COLUMNS} (frame, '
                         'then x, y of 17 COCO joints)')
    bad = ~np.isfinite(table).all(axis=1)
    if bad.any():
        raise ValueError(f'{path}: row {int(np.argmax(bad)) + 1} holds a value that is not a '
                         'finite number')
    frames = table[:, 0]
    not_integer = frames != np.round(frames)
    if not_integer.any():
        row = int(np.argmax(not_integer))
        raise ValueError(f'{path}: row {row + 1}: frame number {frames[row]} is not an integer')
    frames = frames.astype(np.int64) - frame_offset
    if (frames < 0).any():
        row = int(np.argmax(frames < 0))
        raise ValueError(f'{path}: row {row + 1}: frame number {frames[row] + frame_offset} is '
                         f'below frame_offset={frame_offset} (files counting from 0 need '
                         'frame_offset=0)')
    order = np.argsort(frames, kind='stable')
    frames = frames[order]
    repeated = np.flatnonzero(np.diff(frames) == 0)
    if repeated.size:
        raise ValueError(f'{path}: frame {frames[repeated[0]] + frame_offset} appears twice')
    xy = table[order, 1:].reshape(-1, 17, 2)  # (n, 34) -> (n, 17, 2)
    # MPED-RNN writes an undetected joint as (0, 0): no confidence there.
    confidence = (xy != 0).any(axis=-1, keepdims=True).astype(np.float64)  # (n, 17, 1)
    keypoints = np.concatenate([xy, confidence], axis=-1).astype(np.float32)  # (n, 17, 3)
    return frames, keypoints, np.full(len(frames), np.nan, dtype=np.float32)


def read_trajectory_folder(folder: str, frame_offset: int = 0) -> Dict[int, Track]:
    """All persons of one clip folder: person id -> track (see :func:`read_trajectory_csv`).

    Raises:
        ValueError: A CSV whose name is not a person number, or two files of one person
            (``1.csv`` and ``01.csv``), naming them.
    """
    persons: Dict[int, Track] = {}
    paths: Dict[int, str] = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith('.csv'):
            continue
        path = osp.join(folder, name)
        stem = name[:-len('.csv')]
        if not stem.isdigit():
            raise ValueError(f'{path}: a trajectory file is named after its person number '
                             f'(e.g. 00001.csv), got {name!r}')
        person = int(stem)
        if person in persons:
            raise ValueError(f'{paths[person]} and {path} are both person {person}')
        persons[person] = read_trajectory_csv(path, frame_offset)
        paths[person] = path
    return persons


def trajectory_clip_folders(root: str, layout: str = 'flat') -> List[Tuple[str, str]]:
    """(clip name, folder) of every clip under a trajectory root, sorted by clip name.

    Raises:
        ValueError: An unknown layout, or two folders giving one clip name.
        FileNotFoundError: The root is missing or holds no clip folder.
    """
    if layout not in CSV_LAYOUTS:
        raise ValueError(f'trajectory layout must be one of {CSV_LAYOUTS}, got {layout!r}')
    if not osp.isdir(root):
        raise FileNotFoundError(f'trajectory folder not found: {root}')
    found: Dict[str, str] = {}

    def add(clip: str, folder: str) -> None:
        if clip in found:
            raise ValueError(f'{found[clip]} and {folder} are both clip {clip!r}')
        found[clip] = folder

    for name in sorted(os.listdir(root)):
        folder = osp.join(root, name)
        if not osp.isdir(folder):
            continue
        if layout == 'flat':
            add(name.replace('-', '_'), folder)
            continue
        for video in sorted(os.listdir(folder)):
            if osp.isdir(osp.join(folder, video)):
                add(video if '_' in video else f'{name}_{video}', osp.join(folder, video))
    if not found:
        shape = ('<scene>-<clip>/<person>.csv' if layout == 'flat' else
                 '<camera>/<video>/<person>.csv')
        raise FileNotFoundError(f'no clip folders in {root} (layout {layout!r}: {shape})')
    return sorted(found.items())


@DATASETS.register_module()
class TrajectoryCSVDataset(PoseWindowDataset):
    """Pose windows of the peers' per-person CSV trajectories (see the module docstring).

    Everything but the reading is :class:`PoseWindowDataset`: the same STG-NF windows, COCO-17 ->
    18 conversion, skips and counts, and items, so that STG-NF (and MGENet's pose branch) train
    and test on MPED-RNN's, TrajREC's or MoCoDAD's published skeletons without re-extracting
    poses. Joints at (0, 0) stay there with confidence 0, as the peers feed them.

    Args:
        pose_dir (str): The trajectory root, e.g. ``'testing/trajectories'`` (relative to
            ``data_root`` if given).
        layout (str): ``'flat'`` (``<scene>-<clip>/<person>.csv``, MoCoDAD) or ``'nested'``
            (``<camera>/<video>/<person>.csv``, MPED-RNN, TrajREC).
        frame_offset (int): Subtracted from the frame numbers: 0 (MPED-RNN, TrajREC) or 1
            (MoCoDAD, whose files count from 1).
        **kwargs: :class:`PoseWindowDataset` arguments.
    """

    def __init__(self, pose_dir: str, layout: str = 'flat', frame_offset: int = 0,
                 **kwargs) -> None:
        if layout not in CSV_LAYOUTS:
            raise ValueError(f'TrajectoryCSVDataset: layout must be one of {CSV_LAYOUTS}, got '
                             f'{layout!r}')
        if isinstance(frame_offset, bool) or frame_offset not in (0, 1):
            raise ValueError(f'TrajectoryCSVDataset: frame_offset must be 0 or 1, got '
                             f'{frame_offset!r}')
        self.layout = layout
        self.frame_offset = frame_offset
        super().__init__(pose_dir=pose_dir, **kwargs)

    def _pose_files(self) -> List[Tuple[str, str]]:
        root = self.pose_dir
        if self.data_root and not osp.isabs(root):
            root = osp.join(self.data_root, root)
        self._pose_dirs = (root, )
        clips = [(clip, folder) for clip, folder in trajectory_clip_folders(root, self.layout)
                 if (self.clips is None or clip in self.clips) and clip not in self.exclude_clips]
        if not clips:
            raise FileNotFoundError(f'no trajectory clip folders selected in {root}')
        return clips

    def _read_tracks(self, path: str) -> Dict[int, Track]:
        return read_trajectory_folder(path, self.frame_offset)
