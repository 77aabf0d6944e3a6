"""Person windows joined with the frames they come from: the input of MGENet."""
from __future__ import annotations

import logging
import os
import os.path as osp
import re
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

import cv2
import numpy as np
from mmengine.logging import print_log

from mmaction.registry import DATASETS
from ..fileio import read_clip_list
from .pose_utils import POSE_FILE_SUFFIXES, clip_ids, pose_files_in
from .pose_window_dataset import PoseWindowDataset

LAYOUTS = ('shanghaitech', 'ubnormal', 'own')

#: Video file extensions tried per layout, in order (``video_exts`` overrides them).
DEFAULT_VIDEO_EXTS = {
    'shanghaitech': ('.avi', ),
    'ubnormal': ('.mp4', ),
    'own': ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv'),
}

#: Image extensions a frame folder may use.
FRAME_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')

SPLIT_SUBSETS = ('train', 'val', 'test')


def count_video_frames(path: str, backend: str = 'cv2') -> int:
    """Frame count of a video without decoding it.

    ``'cv2'`` reads the container header (``CAP_PROP_FRAME_COUNT``, milliseconds) and falls back
    to decord's index when the header has no count; ``'decord'`` uses decord's frame index, the
    count its decoder will see (it demuxes the whole file, about ten times slower).

    Raises:
        ValueError: The file cannot be opened or holds no frames, naming it.
    """
    count = 0
    if backend == 'cv2':
        capture = cv2.VideoCapture(path)
        try:
            if not capture.isOpened():
                raise ValueError(f'cannot read video {path}: OpenCV could not open it')
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            capture.release()
    elif backend != 'decord':
        raise ValueError(f"frame_counter must be 'cv2' or 'decord', got {backend!r}")
    if count <= 0:
        try:
            import decord
            count = len(decord.VideoReader(path, num_threads=1))
        except Exception as error:  # decord raises its own DECORDError for broken files
            raise ValueError(f'cannot read video {path}: {type(error).__name__}: '
                             f'{str(error).splitlines()[0] if str(error) else ""}') from None
    if count <= 0:
        raise ValueError(f'cannot read video {path}: it holds no frames')
    return count


def scan_frame_folder(folder: str, exts: Sequence[str] = FRAME_EXTS) -> Tuple[str, int]:
    """Template and count of a folder of frames ``0 .. n-1`` (``000.jpg``, ``001.jpg`` ...).

    The zero-padding width is read from frame 0's file name; every frame 0 .. n-1 must exist
    under that template (``{:03d}`` also covers ``1000.jpg``).

    Returns:
        tuple: ``filename_tmpl`` (e.g. ``'{:03d}.jpg'``) and the number of frames.

    Raises:
        FileNotFoundError: The folder is missing or holds no frames.
        ValueError: Frames are not numbered 0 .. n-1, naming the folder and the first gap.
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'frame folder not found: {folder}')
    try:
        names = os.listdir(folder)
    except OSError as error:
        raise FileNotFoundError(f'cannot read frame folder {folder}: {error}') from None
    by_ext: Dict[str, List[str]] = defaultdict(list)
    for name in names:
        stem, ext = osp.splitext(name)
        if ext.lower() in exts:
            by_ext[ext].append(stem)
    if not by_ext:
        raise FileNotFoundError(f'no frames ({"/".join(exts)}) in {folder}')
    # A folder of one image type; a stray thumbnail of another type does not count.
    ext, stems = max(by_ext.items(), key=lambda item: len(item[1]))
    numbers = {}
    for stem in stems:
        if not stem.isdigit():
            raise ValueError(f'frame folder {folder}: {stem}{ext} is not a frame number')
        numbers[int(stem)] = stem
    if 0 not in numbers:
        raise ValueError(f'frame folder {folder}: no frame 0 (frames are numbered from 0, '
                         f'e.g. 000{ext})')
    filename_tmpl = '{:0%dd}%s' % (len(numbers[0]), ext)
    count = len(stems)
    names_set = set(names)
    for index in range(count):
        if filename_tmpl.format(index) not in names_set:
            raise ValueError(f'frame folder {folder}: frames are not numbered 0..{count - 1} '
                             f'as {filename_tmpl!r} (no {filename_tmpl.format(index)})')
    return filename_tmpl, count


def _read_names(names: Union[str, Sequence[str], None], what: str) -> Set[str]:
    """Clip names from a list or a text file (one per line, see
    :func:`~mgenet_mm.fileio.read_clip_list`)."""
    if names is None:
        return set()
    if isinstance(names, str):
        return set(read_clip_list(names, what))
    return set(names)


def split_clips(clips: Sequence[str],
                subset: str,
                ratios: Sequence[float] = (5, 2, 3),
                seed: int = 0,
                normal_pattern: str = r'^normal_',
                scene_groups: Optional[Dict[str, Sequence[int]]] = None,
                groups: Optional[Sequence[str]] = None,
                moved_clips: Union[str, Sequence[str], None] = None,
                moved_groups: Sequence[str] = ()) -> List[str]:
    """Deterministic train/val/test split of videos for an unsupervised experiment.

    The scene experiment of the MGENet paper (section 4.6, Table 4) keeps a subset of UBnormal
    scenes, groups them by scene type, declares some abnormal behaviours normal in some groups
    ("videos containing these behaviours and no other anomalies are moved from the test set to
    the training set") and splits the videos 5:2:3 into train, validation and test. Our reading,
    since training is unsupervised:

    - only clips of the chosen ``groups`` take part (all clips without ``scene_groups``);
    - ``moved_clips`` (names, or a text file of names) in a ``moved_groups`` scene are normal
      and always in the training subset; elsewhere they stay abnormal;
    - the other clips are split per (scene, normal/abnormal) stratum by a seeded permutation:
      normal clips (name matching ``normal_pattern``) ``ratios[0]:ratios[1]:ratios[2]`` into
      train/val/test, abnormal clips ``ratios[1]:ratios[2]`` into val/test (the training set
      holds normal videos only).

    Stratifying by scene keeps every scene in every subset. The three subsets partition the
    clips when everything but ``subset`` is the same.

    Args:
        clips (Sequence[str]): Candidate clip names (their numeric scene id is read from the
            name, see :func:`~mgenet_mm.datasets.pose_utils.clip_ids`).
        subset (str): ``'train'``, ``'val'`` or ``'test'``.
        ratios (Sequence[float]): train : val : test.
        seed (int): Seed of the permutation.
        normal_pattern (str): Regular expression (``re.search``) of normal video names.
        scene_groups (dict, optional): Group name -> scene ids.
        groups (Sequence[str], optional): Group names to use (a string of one-letter names
            works); default all groups.
        moved_clips (str | Sequence[str], optional): Clips moved to training as normal.
        moved_groups (Sequence[str]): Groups where ``moved_clips`` are normal.

    Returns:
        list[str]: The sorted clip names of ``subset``.
    """
    if subset not in SPLIT_SUBSETS:
        raise ValueError(f'split subset must be one of {SPLIT_SUBSETS}, got {subset!r}')
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise ValueError(f'split ratios must be three non-negative numbers, got {ratios}')
    scene_of = {clip: clip_ids(clip)[0] for clip in clips}
    if scene_groups is not None:
        groups = list(scene_groups) if groups is None else list(groups)
        unknown = [g for g in list(groups) + list(moved_groups) if g not in scene_groups]
        if unknown:
            raise KeyError(f'split: unknown scene groups {unknown}; known {sorted(scene_groups)}')
        used = {scene for g in groups for scene in scene_groups[g]}
        moved_scenes = {scene for g in moved_groups if g in groups for scene in scene_groups[g]}
        clips = [c for c in clips if scene_of[c] in used]
    elif moved_groups or groups is not None:
        raise ValueError('split: groups and moved_groups need scene_groups')
    else:
        moved_scenes = set()
    moved_names = _read_names(moved_clips, 'split moved_clips')
    moved = {c for c in clips if c in moved_names and scene_of[c] in moved_scenes}

    normal = re.compile(normal_pattern)
    strata: Dict[Tuple[int, bool], List[str]] = defaultdict(list)
    for clip in sorted(set(clips) - moved):
        strata[(scene_of[clip], bool(normal.search(clip)))].append(clip)
    rng = np.random.default_rng(seed)
    chosen = sorted(moved) if subset == 'train' else []
    for (_, is_normal), names in sorted(strata.items()):
        weights = np.asarray(ratios if is_normal else (0, ratios[1], ratios[2]), dtype=float)
        order = [names[i] for i in rng.permutation(len(names))]
        if weights.sum() == 0:
            continue
        # Half-up rounding of the cumulative cut points, so a stratum of one clip lands in the
        # first subset with a share of at least one half.
        cuts = np.floor(np.cumsum(weights) / weights.sum() * len(names) + 0.5).astype(int)
        start = 0 if subset == 'train' else cuts[SPLIT_SUBSETS.index(subset) - 1]
        chosen.extend(order[start:cuts[SPLIT_SUBSETS.index(subset)]])
    return sorted(chosen)


@DATASETS.register_module()
class MGENetWindowDataset(PoseWindowDataset):
    """Pose windows of :class:`PoseWindowDataset`, each joined with its clip's frames.

    The dataset only parses: per window it tells where the frames are, and the pipeline decodes
    them with mmaction2's loading transforms (``DecordInit``/``DecordDecode``,
    ``OpenCVInit``/``OpenCVDecode`` for videos, ``RawFrameDecode`` for frame folders), after
    :class:`~mgenet_mm.datasets.transforms.WindowFrameIndices` has set the window's frames.

    Layouts (folders relative to ``data_root``; frame numbers are 0-based everywhere):

    - ``'shanghaitech'``: videos ``<video_dir>/<clip>.avi`` (``training/videos``), or frame
      folders ``<frame_dir>/<clip>/<NNN>.jpg`` (``testing/frames``);
    - ``'ubnormal'``: videos ``<video_dir>/Scene<s>/<clip>.mp4``, ``s`` read from the clip name
      (``abnormal_scene_5_scenario_2_smoke`` -> ``Scene5``); ``video_dir`` is usually the
      dataset root itself (``''``);
    - ``'own'``: videos ``<video_dir>/<clip>.<ext>`` (mp4, avi, mov, ...) or frame folders
      ``<frame_dir>/<clip>/``.

    Give exactly one of ``video_dir`` and ``frame_dir``: one dataset reads one kind of source, so
    that one decoding pipeline fits all its items. Frame folders must hold frames 0 .. n-1 under
    one zero-padded template (detected from frame 0).

    Checked at load time, once per clip: the video file or frame folder exists and can be read
    (an error names it), and its frame count, read cheaply (the container header with
    ``frame_counter='cv2'``, decord's index with ``'decord'``, or the number of files). A window
    covers the T consecutive frames ``start_frame .. start_frame + T - 1``. A window whose last
    frame is up to ``max_frame_overrun`` frames past the clip's last frame is skipped and counted
    (``skip_counts['windows_past_video_end']``): containers are often a frame or two shorter than
    the pose extractor's numbering. A window further past the end means the pose file does not
    describe this video: an error names the clip, both files and the frame numbers.

    Items. ``data_list`` stays lean: per window ``row``, ``clip_index``, ``person_id`` and
    ``start_frame`` (small ints); per clip, :attr:`clip_infos` holds the strings once.
    :meth:`get_data_info` adds the clip's fields: ``clip_name``, ``scene_id``, ``clip_id``,
    ``scene_key`` (``'01'`` on ShanghaiTech, ``'Scene5'`` on UBnormal, the clip name for own
    videos), ``total_frames``, ``seg_len``, and ``filename`` (videos) or ``frame_dir``,
    ``filename_tmpl``, ``modality`` (frame folders); plus the (T, 18, 3) raw ``keypoint``.

    Selection. ``clips``/``exclude_clips`` as in the parent; ``scenes`` keeps the clips of
    these numeric scene ids; ``split`` (keyword arguments of :func:`split_clips`) makes a
    deterministic seeded train/val/test split, e.g. the scene experiment of the paper's Table 4.
    ``pose_dir`` may be a list of folders, pooled (a clip may appear in only one of them).
    :attr:`metainfo` carries the chosen ``clips``: mmengine's evaluator hands it to the metric
    as ``dataset_meta``, and ``VADAUCMetric(use_dataset_clips=True)`` evaluates exactly them.
    It also carries ``clip_frames`` (clip -> frame count of its video or frame folder) and
    ``clip_sources`` (clip -> that video or folder): the metric refuses, before inference, a
    ground-truth mask of another length.

    Args:
        pose_dir (str | Sequence[str]): Pose JSON folder(s), relative to ``data_root``.
        layout (str): ``'shanghaitech'``, ``'ubnormal'`` or ``'own'``.
        video_dir (str, optional): Video root of the layout, relative to ``data_root``.
        frame_dir (str, optional): Frame-folder root, relative to ``data_root``.
        video_exts (Sequence[str], optional): Video extensions to try, in order; default per
            layout (``.avi`` ShanghaiTech, ``.mp4`` UBnormal, common containers own).
        frame_counter (str): ``'cv2'`` (header) or ``'decord'`` (index) for video frame counts.
        max_frame_overrun (int): Frames a window may run past the end and be skipped rather
            than refused.
        scenes (Sequence[int], optional): Keep only clips of these scene ids.
        split (dict, optional): See above.
        **kwargs: :class:`PoseWindowDataset` arguments (``seg_len``, ``stride``,
            ``max_missing``, ``clips``, ``exclude_clips``, ``video_resolution``, ``pipeline``,
            ``data_root``, ``test_mode``).
    """

    def __init__(self,
                 pose_dir: Union[str, Sequence[str]],
                 layout: str = 'shanghaitech',
                 video_dir: Optional[str] = None,
                 frame_dir: Optional[str] = None,
                 video_exts: Optional[Sequence[str]] = None,
                 frame_counter: str = 'cv2',
                 max_frame_overrun: int = 5,
                 scenes: Optional[Sequence[int]] = None,
                 split: Optional[dict] = None,
                 pipeline: List[Union[dict, Callable]] = [],
                 **kwargs) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
        if (video_dir is None) == (frame_dir is None):
            raise ValueError('give exactly one of video_dir (videos) and frame_dir (frame '
                             f'folders); got video_dir={video_dir!r}, frame_dir={frame_dir!r}')
        if frame_counter not in ('cv2', 'decord'):
            raise ValueError(f"frame_counter must be 'cv2' or 'decord', got {frame_counter!r}")
        if max_frame_overrun < 0:
            raise ValueError(f'max_frame_overrun must be >= 0, got {max_frame_overrun}')
        split = dict(split) if split is not None else None
        if split is not None and 'subset' not in split:
            raise ValueError("split needs a subset ('train', 'val' or 'test')")
        if split is not None and 'list_file' in split:
            raise ValueError('split.list_file is gone: the dataset writes no clip list; the '
                             'metric reads the chosen clips from the dataset\'s metainfo, '
                             'with VADAUCMetric(use_dataset_clips=True)')
        self.layout = layout
        self.video_dir = video_dir
        self.frame_dir = frame_dir
        self.video_exts = tuple(video_exts or DEFAULT_VIDEO_EXTS[layout])
        self.frame_counter = frame_counter
        self.max_frame_overrun = max_frame_overrun
        self.scenes = None if scenes is None else {int(s) for s in scenes}
        self.split = split
        #: Per clip, the fields every window of the clip shares (strings stored once).
        self.clip_infos: List[dict] = []
        self._listings: Dict[str, Set[str]] = {}
        self._pose_paths: Dict[str, str] = {}
        super().__init__(pose_dir=pose_dir, pipeline=pipeline, **kwargs)

    # ------------------------------------------------------------------ sources
    def _under_root(self, path: str) -> str:
        if self.data_root and not osp.isabs(path):
            return osp.join(self.data_root, path)
        return path

    def _listing(self, folder: str) -> Set[str]:
        """File names of a folder, listed once (clips share their folders)."""
        if folder not in self._listings:
            self._listings[folder] = set(os.listdir(folder)) if osp.isdir(folder) else set()
        return self._listings[folder]

    def _video_folder(self, clip: str, scene_id: int) -> str:
        root = self._under_root(self.video_dir)
        if self.layout == 'ubnormal':
            if scene_id < 0:
                raise ValueError(f'clip {clip}: no scene number in the name, so its UBnormal '
                                 'video folder Scene<s> is unknown')
            return osp.join(root, f'Scene{scene_id}')
        return root

    def _clip_source(self, clip: str) -> dict:
        """Where one clip's frames are, and how many it has."""
        scene_id, clip_id = clip_ids(clip)
        if self.layout == 'shanghaitech' and scene_id >= 0:
            scene_key = f'{scene_id:02d}'
        elif self.layout == 'ubnormal' and scene_id >= 0:
            scene_key = f'Scene{scene_id}'
        else:
            scene_key = clip
        info = dict(clip_name=clip, scene_id=scene_id, clip_id=clip_id, scene_key=scene_key)
        if self.video_dir is not None:
            folder = self._video_folder(clip, scene_id)
            listing = self._listing(folder)
            names = [clip + ext for ext in self.video_exts if clip + ext in listing]
            if not names:
                raise FileNotFoundError(
                    f'clip {clip}: video not found: expected '
                    f'{osp.join(folder, clip + self.video_exts[0])}'
                    + (f' (or {", ".join(self.video_exts[1:])})' if len(self.video_exts) > 1
                       else '') + f" for layout '{self.layout}'")
            filename = osp.join(folder, names[0])
            info.update(filename=filename,
                        total_frames=count_video_frames(filename, self.frame_counter))
        else:
            folder = osp.join(self._under_root(self.frame_dir), clip)
            if not osp.isdir(folder):
                raise FileNotFoundError(f'clip {clip}: frame folder not found: {folder}')
            filename_tmpl, count = scan_frame_folder(folder)
            info.update(frame_dir=folder, filename_tmpl=filename_tmpl, modality='RGB',
                        total_frames=count)
        return info

    # ------------------------------------------------------------------ parsing
    def _pose_files(self) -> List[Tuple[str, str]]:
        folders = [self.pose_dir] if isinstance(self.pose_dir, str) else list(self.pose_dir)
        found: Dict[str, str] = {}
        self._pose_dirs = tuple(map(self._under_root, folders))
        for folder in self._pose_dirs:
            if not osp.isdir(folder):
                raise FileNotFoundError(f'pose folder not found: {folder}')
            for clip, path in pose_files_in(folder):
                if clip in found:
                    raise ValueError(f'clip {clip} has two pose files: {found[clip]} and {path}')
                found[clip] = path
        names = [c for c in sorted(found)
                 if (self.clips is None or c in self.clips) and c not in self.exclude_clips
                 and (self.scenes is None or clip_ids(c)[0] in self.scenes)]
        if self.split is not None:
            names = split_clips(names, **self.split)
        if not names:
            raise FileNotFoundError(f'no pose files (*{POSE_FILE_SUFFIXES[0]}) selected in '
                                    f'{", ".join(map(self._under_root, folders))}')
        # Every clip's source is checked before any pose file is parsed: a missing video fails
        # in seconds, not after minutes of JSON.
        self.clip_infos = [self._clip_source(clip) for clip in names]
        self._listings = {}
        self._pose_paths = {clip: found[clip] for clip in names}
        return [(clip, found[clip]) for clip in names]

    def load_data_list(self) -> List[dict]:
        windows = super().load_data_list()
        index = {info['clip_name']: i for i, info in enumerate(self.clip_infos)}
        data_list = []
        past_end = 0
        for window in windows:
            clip_index = index[window['clip_name']]
            info = self.clip_infos[clip_index]
            last = window['start_frame'] + self.seg_len - 1
            overrun = last - (info['total_frames'] - 1)
            if overrun > self.max_frame_overrun:
                clip = info['clip_name']
                source = info.get('filename', info.get('frame_dir'))
                raise ValueError(
                    f'clip {clip}: pose frames run {overrun} frames past the end of {source} '
                    f'({info["total_frames"]} frames, last frame {info["total_frames"] - 1}): '
                    f'person {window["person_id"]} has a window of frames '
                    f'{window["start_frame"]}..{last} in {self._pose_paths[clip]}; the pose '
                    'file does not belong to this video')
            if overrun > 0:
                past_end += 1
                continue
            data_list.append(dict(row=window['row'], clip_index=clip_index,
                                  person_id=window['person_id'],
                                  start_frame=window['start_frame']))
        self.skip_counts['windows_past_video_end'] = past_end
        self.skip_counts['windows'] = len(data_list)
        if past_end:
            print_log(f'{type(self).__name__}: skipped {past_end} windows running past the end '
                      'of their video', logger='current', level=logging.WARNING)
        self._check_has_windows(len(data_list))
        self._metainfo['clips'] = tuple(info['clip_name'] for info in self.clip_infos)
        # The frame count of every clip, from its video or frame folder: the metric checks that
        # each ground-truth mask has exactly as many frames before any inference.
        self._metainfo['clip_frames'] = {info['clip_name']: int(info['total_frames'])
                                         for info in self.clip_infos}
        self._metainfo['clip_sources'] = {info['clip_name']: info.get('filename',
                                                                      info.get('frame_dir'))
                                          for info in self.clip_infos}
        return data_list

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info.update(self.clip_infos[info['clip_index']])
        info['seg_len'] = self.seg_len
        return info

    # ------------------------------------------------------------------ batch views
    def window_metadata(self) -> np.ndarray:
        """(N, 4) int64 rows (scene, clip, person, start frame), the official metadata layout."""
        clip_ids_ = np.array([[c['scene_id'], c['clip_id']] for c in self.clip_infos],
                             dtype=np.int64).reshape(-1, 2)
        rows = np.array([[d['clip_index'], d['person_id'], d['start_frame']]
                         for d in self.data_list], dtype=np.int64).reshape(-1, 3)
        # (N, 2) scene/clip ids looked up per window + (N, 2) person/start
        return np.concatenate([clip_ids_[rows[:, 0]], rows[:, 1:]], axis=1)

    def window_keys(self) -> List[Tuple[str, int, int]]:
        """(clip_name, person_id, start_frame) of every window, in dataset order."""
        return [(self.clip_infos[d['clip_index']]['clip_name'], d['person_id'], d['start_frame'])
                for d in self.data_list]
