"""Windows of tracked-person skeletons, read from per-clip pose JSON files."""
from __future__ import annotations

import logging
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.dataset.base_dataset import force_full_init
from mmengine.logging import print_log

from mmaction.registry import DATASETS
from .pose_utils import (POSE_FILE_SUFFIXES, clip_ids, coco17_to_coco18, degenerate_windows,
                         pose_files_in, read_tracked_pose_json, stgnf_window_starts)


class _WindowItems(list):
    """A batch of window items with their keypoints also as one (B, T, V, C) array."""

    stacked_keypoints: np.ndarray


@DATASETS.register_module()
class PoseWindowDataset(BaseDataset):
    """Person windows of T frames from tracked-pose JSON files (STG-NF layout).

    One JSON file per clip, ``<clip>_alphapose_tracked_person.json`` (ShanghaiTech
    ``01_0014``, UBnormal ``abnormal_scene_5_scenario_2_smoke`` or any other clip name), holding
    ``{person_id: {frame: {"keypoints": [x, y, c] * 17, "scores": s}}}``. Clips are read in sorted
    file order, persons in numeric order, frames in numeric order (the official loader sorts the
    frame keys as strings, which only works because its files zero-pad them).

    Windows are cut exactly as the official STG-NF code cuts them (see
    :func:`~mgenet_mm.datasets.pose_utils.stgnf_window_starts`), which makes the windows, their
    order and their metadata identical to the reference. Keypoints are converted from COCO-17 to
    the 18-joint layout at load time and kept once per recorded frame: memory grows with the
    number of frames, never with windows x T. Each item's ``keypoint`` is a fresh (T, 18, 3) copy;
    normalisation and augmentation are transforms.

    Skipped and counted (logged once, and kept in :attr:`skip_counts`): persons with fewer
    recorded frames than a window, tried windows with more than ``max_missing`` missing frames,
    and degenerate windows whose y coordinates do not vary (the official normalisation divides
    by their standard deviation). Errors naming the file: anything
    :func:`~mgenet_mm.datasets.pose_utils.read_tracked_pose_json` refuses (ids and frame keys
    are digits, each number once; every keypoint value a finite number), a misnamed pose file
    (:func:`~mgenet_mm.datasets.pose_utils.pose_files_in`), and a training set
    (``test_mode=False``) without a single window.

    :attr:`metainfo` carries ``clips`` (every clip with a pose file, windows or not),
    ``pose_dirs`` and ``seg_len``: mmengine's evaluator hands it to the metric as
    ``dataset_meta``, and :class:`~mgenet_mm.evaluation.VADAUCMetric` checks its ground truth
    against them before inference.

    Args:
        pose_dir (str): Folder of per-clip pose JSON files (relative to ``data_root`` if given).
        seg_len (int): Window length T (24 on ShanghaiTech, 16 on UBnormal).
        stride (int): Step between tried windows, in recorded frames (train 6, test 1).
        max_missing (int): Missing frames tolerated inside a window.
        clips (Sequence[str], optional): Only these clips (names without the pose suffix).
        exclude_clips (Sequence[str]): Leave these clips out (e.g. ShanghaiTech-HR).
        video_resolution (tuple): (width, height) used to detect degenerate windows the way
            the normalisation transform will see them.
        pipeline (list): Transforms.
        data_root (str, optional): Root the relative ``pose_dir`` is joined to.
        test_mode (bool): Passed to :class:`BaseDataset`.
    """

    METAINFO = dict(task='video anomaly detection', keypoint_layout='coco18')

    def __init__(self,
                 pose_dir: str,
                 seg_len: int = 24,
                 stride: int = 1,
                 max_missing: int = 2,
                 clips: Optional[Sequence[str]] = None,
                 exclude_clips: Sequence[str] = (),
                 video_resolution: Tuple[float, float] = (856., 480.),
                 pipeline: List[Union[dict, Callable]] = [],
                 data_root: Optional[str] = None,
                 test_mode: bool = False,
                 **kwargs) -> None:
        for key, value in (('seg_len', seg_len), ('stride', stride),
                           ('max_missing', max_missing)):
            # bool is an int; a string would fail below with a TypeError naming nothing.
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f'{type(self).__name__}: {key} must be an integer, got '
                                 f'{value!r} ({type(value).__name__})')
        for key, value in (('clips', clips), ('exclude_clips', exclude_clips)):
            # A string is a sequence of characters: clips='01_0014' would select nothing.
            if isinstance(value, str):
                raise ValueError(f'{type(self).__name__}: {key} must be a list of clip names, '
                                 f'got the string {value!r} (write [{value!r}])')
        if seg_len < 2 or stride < 1 or not 0 <= max_missing < seg_len:
            raise ValueError(f'bad window settings seg_len={seg_len}, stride={stride}, '
                             f'max_missing={max_missing}')
        self.pose_dir = pose_dir
        self.seg_len = seg_len
        self.stride = stride
        self.max_missing = max_missing
        self.clips = None if clips is None else set(clips)
        self.exclude_clips = set(exclude_clips)
        self.video_resolution = tuple(video_resolution)
        self.skip_counts: Dict[str, int] = {}
        #: The folders the pose files were looked for in (set by ``_pose_files``).
        self._pose_dirs: Tuple[str, ...] = ()
        # (F, 18, 3) float32 keypoints of every kept recorded frame, tracks back to back.
        self.keypoints = np.zeros((0, 18, 3), dtype=np.float32)
        super().__init__(data_root=data_root or '', pipeline=pipeline, test_mode=test_mode,
                         serialize_data=False, **kwargs)

    # ------------------------------------------------------------------ parsing
    def _pose_files(self) -> List[Tuple[str, str]]:
        pose_dir = self.pose_dir
        if self.data_root and not osp.isabs(pose_dir):
            pose_dir = osp.join(self.data_root, pose_dir)
        if not osp.isdir(pose_dir):
            raise FileNotFoundError(f'pose folder not found: {pose_dir}')
        self._pose_dirs = (pose_dir, )
        files = [(clip, path) for clip, path in pose_files_in(pose_dir)
                 if (self.clips is None or clip in self.clips) and clip not in self.exclude_clips]
        if not files:
            raise FileNotFoundError(f'no pose files (*{POSE_FILE_SUFFIXES[0]}) in {pose_dir}')
        return files

    def load_data_list(self) -> List[dict]:
        counts = dict(clips=0, persons=0, short_persons=0, windows_missing_frames=0,
                      degenerate_windows=0, windows=0)
        keypoint_blocks: List[np.ndarray] = []
        data_list: List[dict] = []
        row_offset = 0
        pose_files = self._pose_files()
        for clip, path in pose_files:
            counts['clips'] += 1
            scene_id, clip_id = clip_ids(clip)
            for person_id, (frames, keypoints, _) in sorted(self._read_tracks(path).items()):
                counts['persons'] += 1
                starts, dropped = stgnf_window_starts(frames, self.seg_len, self.stride,
                                                      self.max_missing)
                counts['windows_missing_frames'] += dropped
                if len(frames) < self.seg_len:
                    counts['short_persons'] += 1
                    continue
                track = coco17_to_coco18(keypoints)  # (n, 18, 3)
                degenerate = self._degenerate(track, starts)
                counts['degenerate_windows'] += int(degenerate.sum())
                for start in starts[~degenerate].tolist():
                    data_list.append(
                        dict(row=row_offset + start, clip_name=clip, scene_id=scene_id,
                             clip_id=clip_id, person_id=person_id,
                             start_frame=int(frames[start]), seg_len=self.seg_len))
                keypoint_blocks.append(track)
                row_offset += len(track)
        counts['windows'] = len(data_list)
        if keypoint_blocks:
            self.keypoints = np.concatenate(keypoint_blocks, axis=0)
        self.skip_counts = counts
        print_log(f'{type(self).__name__} {self.pose_dir}: ' +
                  ', '.join(f'{key} {value}' for key, value in counts.items()),
                  logger='current', level=logging.INFO)
        self._check_has_windows(len(data_list))
        # What the metric checks its ground truth against before any inference (mmengine's
        # evaluator hands metainfo over as its dataset_meta): which clips have a pose file
        # (a clip with nobody in it has an empty one), where they were looked for, and T.
        self._metainfo.update(clips=tuple(clip for clip, _ in pose_files),
                              pose_dirs=tuple(self._pose_dirs), seg_len=self.seg_len)
        return data_list

    def _check_has_windows(self, num_windows: int) -> None:
        """A training set without windows is an error here, not a ZeroDivisionError in the
        sampler; a test set without windows is valid (every clip empty)."""
        if num_windows or self.test_mode:
            return
        counts = self.skip_counts
        raise ValueError(
            f'{type(self).__name__}: no training windows in {", ".join(self._pose_dirs)}: of '
            f'{counts["persons"]} persons in {counts["clips"]} clips, {counts["short_persons"]} '
            f'have fewer recorded frames than a window (seg_len={self.seg_len}), '
            f'{counts["windows_missing_frames"]} windows have more than '
            f'max_missing={self.max_missing} missing frames, {counts["degenerate_windows"]} '
            'have no vertical spread' + (f', {counts["windows_past_video_end"]} run past the '
                                         'end of their video'
                                         if counts.get('windows_past_video_end') else '') +
            '; use a smaller seg_len or check the pose files')

    def _read_tracks(self, path: str) -> Dict[int, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """One clip's tracks: person id -> (frames (n,), COCO-17 keypoints (n, 17, 3), scores
        (n,)). Subclasses read other pose layouts here (e.g. per-person CSV trajectories)."""
        return read_tracked_pose_json(path)

    def _degenerate(self, track: np.ndarray, starts: np.ndarray) -> np.ndarray:
        return degenerate_windows(track, starts, self.seg_len, self.video_resolution)

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        # A shallow copy: every value is a str or an int (BaseDataset's deep copy of the same
        # dict took longer than the rest of a test window's loading).
        info = dict(self.data_list[idx])
        info['sample_idx'] = idx if idx >= 0 else len(self) + idx  # as BaseDataset sets it
        row = info['row']
        info['keypoint'] = self.keypoints[row:row + self.seg_len].copy()  # (T, 18, 3)
        return info

    def __getitems__(self, indices: Sequence[int]) -> List[dict]:
        """A batch of items at once: what torch's ``DataLoader`` asks a dataset for, if it can.

        With an empty pipeline and this class's :meth:`get_data_info`, the windows are gathered
        by one fancy index into a (B, T, 18, 3) array instead of B slices and copies; each
        item's ``keypoint`` is a view of it, its other keys those of :meth:`get_data_info`. The
        returned list carries the array as ``stacked_keypoints``, which
        :func:`~mgenet_mm.datasets.pose_window_collate` uses instead of stacking the items
        again. Otherwise (transforms, or a subclass with its own items) it is
        ``[self[i] for i in indices]``, what the loader does without this method.

        Args:
            indices (Sequence[int]): Item indices (>= 0), e.g. one batch of a sampler.

        Returns:
            list[dict]: The items, in ``indices`` order.
        """
        if len(self.pipeline.transforms) or \
                type(self).get_data_info is not PoseWindowDataset.get_data_info:
            return [self[i] for i in indices]
        if not self._fully_initialized:
            self.full_init()
        indices = [int(i) for i in indices]
        stacked = self.window_keypoints(indices)  # (B, T, 18, 3), a new array
        items = _WindowItems(dict(self.data_list[i], sample_idx=i, keypoint=window)
                             for i, window in zip(indices, stacked))
        items.stacked_keypoints = stacked
        return items

    def window_keypoints(self, indices: Optional[Sequence[int]] = None) -> np.ndarray:
        """Raw (n, T, 18, 3) keypoints of many windows at once, by fancy indexing.

        For batch evaluation without the per-item pipeline; normalise with
        :func:`~mgenet_mm.datasets.pose_utils.normalize_windows`. Call it on chunks of indices
        to keep memory bounded.
        """
        rows = np.fromiter((self.data_list[i]['row'] for i in (
            range(len(self)) if indices is None else indices)), dtype=np.int64)
        # (n, 1) + (T,) -> (n, T) row indices of every frame of every window
        return self.keypoints[rows[:, None] + np.arange(self.seg_len)]

    def window_metadata(self) -> np.ndarray:
        """(N, 4) int64 rows (scene, clip, person, start frame), the official metadata layout."""
        return np.array([[d['scene_id'], d['clip_id'], d['person_id'], d['start_frame']]
                         for d in self.data_list], dtype=np.int64).reshape(-1, 4)
