"""Tracked 2D poses of the people in a clip: MMDet person detection, MMPose top-down pose
estimation and :class:`~mgenet_mm.apis.tracking.GreedyTracker`, written in the tracked-person
JSON layout that the pose datasets read (see ``docs/data_preparation.md``).

Output layout, one file per clip, ``<clip>_alphapose_tracked_person.json``::

    {person_id: {frame: {"keypoints": [x, y, c] * 17, "scores": s}}}

Person ids are "1", "2", ... in order of first appearance; frame keys are 0-based frame indices
zero-padded to 4 digits; keypoints are COCO-17 in pixels of the original frame with the pose
model's per-joint confidence ``c``. The per-frame ``scores`` is, by default, the mean of the 17
joint confidences (``score_mode='keypoint'``), which rates the pose itself; with
``score_mode='bbox'`` it is the person detector's score. Confidences are the pose model's own
numbers: RTMPose's SimCC confidences are not calibrated probabilities and may exceed 1.

Checkpoints are loaded with strict key and shape matching (mmengine's loader only warns about
keys that do not fit, which would silently leave part of a model randomly initialised).
"""
from __future__ import annotations

import importlib.util
import json
import os
import os.path as osp
import re
import time
import warnings
from dataclasses import dataclass
from typing import (Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple,
                    Union)

import numpy as np

from ..fileio import atomic_write_bytes, remove_stale_temporaries
from .clips import (CheckpointMismatchError, Clip, ClipReader, ClipReadError,
                    ModelFileNotFoundError, PoseExtractionError, find_clips)
from .tracking import GreedyTracker

__all__ = [
    'DEFAULT_DET_CONFIG', 'DEFAULT_DET_CHECKPOINT', 'DEFAULT_POSE_CONFIG',
    'DEFAULT_POSE_CHECKPOINT', 'POSE_JSON_SUFFIX', 'resolve_config', 'load_checkpoint_strict',
    'MMDetPersonDetector', 'MMPoseTopDownEstimator', 'PoseExtractor', 'pose_json_path',
    'write_json_atomic', 'ClipResult', 'run_pose_extraction'
]

# Model-zoo defaults: RTMDet-m (COCO, person = class 0) and RTMPose-m (COCO-17, 256x192). The
# configs ship inside the installed packages; the checkpoints are the published weights of
# those configs (a URL needs internet once; a local copy can be given instead).
DEFAULT_DET_CONFIG = 'mmdet::rtmdet/rtmdet_m_8xb32-300e_coco.py'
DEFAULT_DET_CHECKPOINT = (
    'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_m_8xb32-300e_coco/'
    'rtmdet_m_8xb32-300e_coco_20220719_112220-229f527c.pth')
DEFAULT_POSE_CONFIG = (
    'mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-m_8xb256-420e_coco-256x192.py')
DEFAULT_POSE_CHECKPOINT = (
    'https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/'
    'rtmpose-m_simcc-coco_pt-aic-coco_420e-256x192-d8dd5ca4_20230127.pth')

POSE_JSON_SUFFIX = '_alphapose_tracked_person.json'
NUM_COCO_KEYPOINTS = 17

#: (image (H, W, 3) BGR uint8) -> (boxes (N, 4) xyxy, scores (N,)).
DetectorFn = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]
#: (image, boxes (N, 4)) -> (keypoints (N, 17, 2), keypoint scores (N, 17)).
PoseFn = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]




def _is_url(path: str) -> bool:
    return re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://', path) is not None


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


def resolve_config(config: str, what: str = 'model') -> str:
    """Path of a config file, resolving ``'<package>::<path>'`` inside an installed package.

    ``'mmdet::rtmdet/rtmdet_m_8xb32-300e_coco.py'`` is looked up in the package's shipped
    configs (``<package>/.mim/configs`` of a wheel, ``configs/`` beside the package of a source
    checkout), the same notation mmengine uses for ``_base_`` configs.

    Args:
        config (str): A path, or ``'<package>::<path inside its configs>'``.
        what (str): What the config is for, for the error message.

    Returns:
        str: An existing file path.

    Raises:
        ModelFileNotFoundError: The file does not exist.
    """
    if '::' in config:
        package, relative = config.split('::', 1)
        spec = importlib.util.find_spec(package)
        candidates = []
        if spec is not None and spec.submodule_search_locations:
            root = list(spec.submodule_search_locations)[0]
            candidates = [osp.join(root, '.mim', 'configs', relative),
                          osp.join(osp.dirname(root), 'configs', relative)]
        for candidate in candidates:
            if osp.isfile(candidate):
                return candidate
        where = ', '.join(candidates) if candidates else f'package {package} not installed'
        raise ModelFileNotFoundError(f'{what} config not found: {config} ({where})')
    if not osp.isfile(config):
        raise ModelFileNotFoundError(f'{what} config not found: {config}')
    return config


def _load_config(config: str, what: str):
    from mmengine.config import Config
    path = resolve_config(config, what)
    try:
        return Config.fromfile(path)
    except Exception as error:  # syntax errors, missing _base_ files ...
        raise PoseExtractionError(f'cannot read {what} config {path}: '
                                  f'{type(error).__name__}: {error}') from error


def load_checkpoint_strict(model, checkpoint: str, what: str = 'model',
                           config: Optional[str] = None, strict: bool = True) -> dict:
    """Load a checkpoint into a model, refusing keys or shapes that do not fit.

    Args:
        model (torch.nn.Module): The model built from the config.
        checkpoint (str): A local path or a URL (downloaded by mmengine's loader).
        what (str): What the model is, for messages.
        config (str, optional): The config the model was built from, for messages.
        strict (bool): Raise on missing, unexpected or mis-shaped parameters. With False,
            only the fitting parameters are loaded and a warning lists the others.

    Returns:
        dict: The loaded checkpoint (with its ``meta``).

    Raises:
        ModelFileNotFoundError: A local checkpoint that does not exist.
        PoseExtractionError: A checkpoint that cannot be read or downloaded.
        CheckpointMismatchError: With ``strict``, a checkpoint that does not fit the model.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    from ..models.utils.checkpoint import load_state_dict_checked
    if not _is_url(checkpoint) and not osp.isfile(checkpoint):
        raise ModelFileNotFoundError(f'{what} checkpoint not found: {checkpoint}')
    try:
        loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    except Exception as error:
        hint = (' (downloading needs internet; download the file once and pass its path)'
                if _is_url(checkpoint) else '')
        raise PoseExtractionError(f'cannot load {what} checkpoint {checkpoint}: '
                                  f'{type(error).__name__}: {error}{hint}') from error
    if not isinstance(loaded, dict):
        raise PoseExtractionError(f'{what} checkpoint {checkpoint} is not a state dict '
                                  f'(got {type(loaded).__name__})')
    state_dict = loaded.get('state_dict', loaded)
    # Checkpoints saved from a (Distributed)DataParallel wrapper carry a 'module.' prefix.
    state_dict = {re.sub(r'^module\.', '', key): value for key, value in state_dict.items()}
    report = load_state_dict_checked(
        model, state_dict, strict=strict, source=f'{what} checkpoint {checkpoint}',
        target=f'the model of {config or "its config"}', error=CheckpointMismatchError)
    if report.message:  # only without strict: the fitting parameters are loaded
        warnings.warn(report.message + ' (loading the fitting parameters only)')
    return loaded


class MMDetPersonDetector:
    """Person boxes from an MMDetection detector.

    Args:
        config (str): Detector config (path or ``'mmdet::...'``).
        checkpoint (str, optional): Its weights (path or URL); None keeps the model as built
            (tests only).
        device (str): Device to run on.
        score_thr (float): Keep detections scoring above this.
        nms_thr (float): IoU threshold of an extra class-agnostic NMS over the person boxes
            (detectors suppress per class at a looser threshold; two boxes on one person would
            become two tracks).
        cat_id (int, optional): Class index of "person"; None looks it up in the checkpoint's
            class names (COCO: 0).
        strict (bool): Strict checkpoint loading, see :func:`load_checkpoint_strict`.
    """

    def __init__(self,
                 config: str,
                 checkpoint: Optional[str],
                 device: str = 'cpu',
                 score_thr: float = 0.5,
                 nms_thr: float = 0.3,
                 cat_id: Optional[int] = None,
                 strict: bool = True) -> None:
        from mmcv.transforms import Compose
        from mmdet.apis import init_detector
        from mmdet.models.detectors import BaseDetector
        from mmdet.utils import get_test_pipeline_cfg
        from mmengine.registry import DefaultScope

        cfg = _load_config(config, 'detector')
        try:
            with warnings.catch_warnings():
                # "checkpoint is None, use COCO classes": the checkpoint is loaded below.
                warnings.simplefilter('ignore')
                self.model = init_detector(cfg, None, device=device)
        except Exception as error:
            raise PoseExtractionError(f'cannot build a detector from {config}: '
                                      f'{type(error).__name__}: {error}') from error
        if not isinstance(self.model, BaseDetector):
            raise PoseExtractionError(
                f'{config} builds a {type(self.model).__name__}, not an MMDetection detector')
        if checkpoint is not None:
            loaded = load_checkpoint_strict(self.model, checkpoint, 'detector', config, strict)
            meta = loaded.get('meta', {})
            if 'dataset_meta' in meta:
                self.model.dataset_meta = {k.lower(): v for k, v in meta['dataset_meta'].items()}
            elif 'CLASSES' in meta:
                self.model.dataset_meta = {'classes': meta['CLASSES']}
        classes = list(self.model.dataset_meta.get('classes', ()))
        if cat_id is None:
            if 'person' not in classes:
                raise PoseExtractionError(
                    f'detector {config}: no "person" among its classes {classes[:10]}; '
                    'give the class index of people explicitly')
            cat_id = classes.index('person')
        self.cat_id = int(cat_id)
        self.score_thr = float(score_thr)
        self.nms_thr = float(nms_thr)

        # Built once, in mmdet's scope: mmdet's inference_detector would otherwise build it
        # per frame, in whatever scope was set last (mmpose's, after the pose model's init).
        pipeline = get_test_pipeline_cfg(self.model.cfg.copy())
        pipeline[0].type = 'mmdet.LoadImageFromNDArray'
        with DefaultScope.overwrite_default_scope('mmdet'):
            self.pipeline = Compose(pipeline)

    def __call__(self, img: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Detect people in one BGR image.

        Returns:
            tuple: boxes (N, 4) float32 ``(x1, y1, x2, y2)`` and scores (N,) float32,
            highest score first.
        """
        from mmdet.apis import inference_detector
        from mmpose.evaluation.functional import nms

        result = inference_detector(self.model, img, test_pipeline=self.pipeline)
        instances = result.pred_instances.cpu().numpy()
        keep = (instances.labels == self.cat_id) & (instances.scores > self.score_thr)
        boxes = instances.bboxes[keep].astype(np.float32).reshape(-1, 4)
        scores = instances.scores[keep].astype(np.float32)
        # Boxes are only clipped to the padded network input: clip them to the frame, so that
        # the pose model's crop and the tracker's IoU see the visible part only.
        height, width = img.shape[:2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
        visible = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        boxes, scores = boxes[visible], scores[visible]
        if len(boxes):
            kept = nms(np.concatenate([boxes, scores[:, None]], axis=1), self.nms_thr)
            kept = np.asarray(kept, dtype=np.int64)
            kept = kept[np.argsort(-scores[kept], kind='stable')]
            boxes, scores = boxes[kept], scores[kept]
        return boxes, scores


class MMPoseTopDownEstimator:
    """COCO-17 keypoints of given person boxes from an MMPose top-down model.

    Args:
        config (str): Pose config (path or ``'mmpose::...'``); must predict 17 keypoints.
        checkpoint (str, optional): Its weights (path or URL); None keeps the model as built
            (tests only).
        device (str): Device to run on.
        strict (bool): Strict checkpoint loading, see :func:`load_checkpoint_strict`.
    """

    def __init__(self, config: str, checkpoint: Optional[str], device: str = 'cpu',
                 strict: bool = True) -> None:
        from mmpose.apis import init_model
        from mmpose.models.pose_estimators import TopdownPoseEstimator

        cfg = _load_config(config, 'pose')
        try:
            self.model = init_model(cfg, None, device=device)
        except Exception as error:
            raise PoseExtractionError(f'cannot build a pose model from {config}: '
                                      f'{type(error).__name__}: {error}') from error
        # A config of another kind may still build (mmpose builds in the config's own scope,
        # and mmpose has a dataset named like mmdet's CocoDataset): check what came out.
        if not isinstance(self.model, TopdownPoseEstimator):
            raise PoseExtractionError(
                f'{config} builds a {type(self.model).__name__}, not a top-down pose model')
        if checkpoint is not None:
            loaded = load_checkpoint_strict(self.model, checkpoint, 'pose', config, strict)
            if 'dataset_meta' in loaded.get('meta', {}):
                self.model.dataset_meta = loaded['meta']['dataset_meta']
        num_keypoints = (self.model.dataset_meta or {}).get('num_keypoints')
        if num_keypoints != NUM_COCO_KEYPOINTS:
            raise PoseExtractionError(
                f'pose model {config} predicts {num_keypoints} keypoints; the tracked-person '
                f'layout needs the {NUM_COCO_KEYPOINTS} COCO keypoints')

    def __call__(self, img: np.ndarray,
                 boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 17, 2) float32 and their scores (N, 17) float32 for (N, 4) boxes."""
        from mmpose.apis import inference_topdown

        if len(boxes) == 0:
            # inference_topdown treats "no boxes" as one box covering the whole image.
            return (np.zeros((0, NUM_COCO_KEYPOINTS, 2), np.float32),
                    np.zeros((0, NUM_COCO_KEYPOINTS), np.float32))
        samples = inference_topdown(self.model, img, np.asarray(boxes, np.float32), 'xyxy')
        keypoints = np.concatenate([s.pred_instances.keypoints for s in samples], axis=0)
        scores = np.concatenate([s.pred_instances.keypoint_scores for s in samples], axis=0)
        return keypoints.astype(np.float32), scores.astype(np.float32)


class PoseExtractor:
    """Detect, estimate poses and track the people of a clip, frame by frame.

    Args:
        detector (callable): image -> (boxes (N, 4), scores (N,)), e.g.
            :class:`MMDetPersonDetector`.
        pose_estimator (callable): (image, boxes) -> (keypoints (N, 17, 2), keypoint scores
            (N, 17)), e.g. :class:`MMPoseTopDownEstimator`.
        tracker (dict, optional): Keyword arguments of
            :class:`~mgenet_mm.apis.tracking.GreedyTracker`.
        score_mode (str): The per-frame ``scores`` written: ``'keypoint'`` (mean joint
            confidence) or ``'bbox'`` (detection score).
    """

    def __init__(self,
                 detector: DetectorFn,
                 pose_estimator: PoseFn,
                 tracker: Optional[dict] = None,
                 score_mode: str = 'keypoint') -> None:
        if score_mode not in ('keypoint', 'bbox'):
            raise ValueError(f"score_mode must be 'keypoint' or 'bbox', got {score_mode!r}")
        self.detector = detector
        self.pose_estimator = pose_estimator
        self.tracker_cfg = dict(tracker or {})
        GreedyTracker(**self.tracker_cfg)  # fail on bad tracker arguments now, not per clip
        self.score_mode = score_mode

    @classmethod
    def from_config(cls,
                    det_config: str = DEFAULT_DET_CONFIG,
                    det_checkpoint: Optional[str] = DEFAULT_DET_CHECKPOINT,
                    pose_config: str = DEFAULT_POSE_CONFIG,
                    pose_checkpoint: Optional[str] = DEFAULT_POSE_CHECKPOINT,
                    device: str = 'cpu',
                    det_thr: float = 0.5,
                    nms_thr: float = 0.3,
                    det_cat_id: Optional[int] = None,
                    strict: bool = True,
                    tracker: Optional[dict] = None,
                    score_mode: str = 'keypoint') -> 'PoseExtractor':
        """Build the MMDet detector and the MMPose model once, from configs and checkpoints.

        Args:
            det_config, det_checkpoint: see :class:`MMDetPersonDetector`.
            pose_config, pose_checkpoint: see :class:`MMPoseTopDownEstimator`.
            device (str): Device of both models.
            det_thr (float): Person detection score threshold.
            nms_thr (float): Extra NMS threshold over person boxes.
            det_cat_id (int, optional): Class index of "person" in the detector.
            strict (bool): Strict checkpoint loading.
            tracker (dict, optional): :class:`GreedyTracker` arguments.
            score_mode (str): See the class.
        """
        # The pose model first: a wrong pose config then fails before the (slower) detector.
        pose_estimator = MMPoseTopDownEstimator(pose_config, pose_checkpoint, device, strict)
        detector = MMDetPersonDetector(det_config, det_checkpoint, device, det_thr, nms_thr,
                                       det_cat_id, strict)
        return cls(detector, pose_estimator, tracker=tracker, score_mode=score_mode)

    def new_tracker(self) -> GreedyTracker:
        """A fresh tracker with this extractor's settings (one per clip or stream)."""
        return GreedyTracker(**self.tracker_cfg)

    def process_frame(self, tracker: GreedyTracker, frame_idx: int,
                      img: np.ndarray) -> Dict[int, dict]:
        """Detect, estimate and track the people of one frame.

        Args:
            tracker (GreedyTracker): The clip's tracker (see :meth:`new_tracker`).
            frame_idx (int): The frame's index in the clip.
            img (np.ndarray): (H, W, 3) BGR uint8.

        Returns:
            dict: person id -> ``{"keypoints": [x, y, c] * 17, "scores": s}``, the entries of
            the JSON layout (values rounded as written).
        """
        boxes, box_scores = self.detector(img)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        box_scores = np.asarray(box_scores, np.float32).reshape(-1)
        if len(boxes) != len(box_scores):
            raise ValueError(f'detector returned {len(boxes)} boxes and '
                             f'{len(box_scores)} scores')
        if not len(boxes):
            return {}
        keypoints, keypoint_scores = self.pose_estimator(img, boxes)
        poses = np.concatenate(
            [np.asarray(keypoints, np.float32).reshape(len(boxes), -1, 2),
             np.asarray(keypoint_scores, np.float32).reshape(len(boxes), -1, 1)],
            axis=2)  # (N, 17, 3)
        ids = tracker.update(frame_idx, boxes, poses)
        entries = {}
        for person_id, pose, box_score in zip(ids, poses, box_scores):
            score = pose[:, 2].mean() if self.score_mode == 'keypoint' else box_score
            entries[int(person_id)] = {
                'keypoints': [round(float(v), 3) for v in pose.reshape(-1)],
                'scores': round(float(score), 4)
            }
        return entries

    def extract_clip(self,
                     frames: Iterable[np.ndarray],
                     progress: Optional[Callable[[int], None]] = None) -> Dict[str, dict]:
        """Tracked poses of one clip.

        Args:
            frames (iterable): The clip's frames, (H, W, 3) BGR uint8, in order; the i-th is
                frame i.
            progress (callable, optional): Called with 1 after each frame.

        Returns:
            dict: ``{person_id: {frame: {"keypoints": [x, y, c] * 17, "scores": s}}}`` with
            string keys (see the module docstring); empty when nobody was found.
        """
        tracker = self.new_tracker()
        tracks: Dict[int, Dict[int, dict]] = {}
        for frame_idx, img in enumerate(frames):
            for person_id, entry in self.process_frame(tracker, frame_idx, img).items():
                tracks.setdefault(person_id, {})[frame_idx] = entry
            if progress is not None:
                progress(1)
        return {
            str(person_id): {f'{frame:04d}': entry for frame, entry in sorted(track.items())}
            for person_id, track in sorted(tracks.items())
        }


def pose_json_path(out_dir: str, clip_name: str) -> str:
    """``<out_dir>/<clip>_alphapose_tracked_person.json``."""
    return osp.join(out_dir, clip_name + POSE_JSON_SUFFIX)


def write_json_atomic(obj, path: str) -> None:
    """Write compact JSON with :func:`~mgenet_mm.fileio.atomic_write_bytes`: the file at
    ``path`` is always complete, so its existence means the clip is finished, even after a
    kill. The data reach the disk (``fsync``) before the file is published."""
    text = json.dumps(obj, separators=(',', ':')).encode()

    def write(f) -> None:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())

    atomic_write_bytes(path, write)


@dataclass
class ClipResult:
    """What happened to one clip in :func:`run_pose_extraction`."""
    name: str
    source: str
    output: str
    status: str  # 'done', 'skipped' (output already there) or 'failed'
    num_frames: int = 0
    num_persons: int = 0
    seconds: float = 0.0
    error: Optional[str] = None

    @property
    def fps(self) -> float:
        """Frames per second of detection + pose + tracking."""
        return self.num_frames / self.seconds if self.seconds > 0 else 0.0


def run_pose_extraction(extractor: PoseExtractor,
                        input_path: Union[str, Sequence[Clip]],
                        out_dir: str,
                        overwrite: bool = False,
                        show_progress: bool = True,
                        log: Optional[Callable[[str], None]] = None) -> List[ClipResult]:
    """Extract the tracked poses of every clip of an input into ``out_dir``.

    A clip whose JSON already exists is skipped unless ``overwrite``: JSON files are written
    atomically, so an interrupted run resumes where it stopped. A clip that cannot be read is
    reported and the others still run.

    Args:
        extractor (PoseExtractor): Models and tracker.
        input_path (str | list[Clip]): Video, frame folder or directory (see
            :func:`find_clips`), or clips.
        out_dir (str): Where the JSON files go (created if needed).
        overwrite (bool): Redo clips that already have a JSON file.
        show_progress (bool): A tqdm progress bar per clip (frames and frames/s).
        log (callable, optional): Receives one line per clip; defaults to ``tqdm.write``.

    Returns:
        list[ClipResult]: One entry per clip, in processing order.
    """
    from tqdm import tqdm
    log = log or tqdm.write
    clips = find_clips(input_path) if isinstance(input_path, str) else list(input_path)
    os.makedirs(out_dir, exist_ok=True)
    results = []
    for index, clip in enumerate(clips, 1):
        output = pose_json_path(out_dir, clip.name)
        prefix = f'[{index}/{len(clips)}] {clip.name}'
        if osp.exists(output) and not overwrite:
            log(f'{prefix}: {output} exists, skipped')
            results.append(ClipResult(clip.name, clip.path, output, 'skipped'))
            continue
        start = time.perf_counter()
        num_frames = 0
        try:
            with ClipReader(clip) as reader, tqdm(total=reader.num_frames, desc=clip.name,
                                                  unit='frame', disable=not show_progress,
                                                  dynamic_ncols=True, leave=False) as bar:

                def counted(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
                    nonlocal num_frames
                    for frame in frames:
                        num_frames += 1
                        yield frame

                poses = extractor.extract_clip(counted(reader), progress=bar.update)
        except ClipReadError as error:
            log(f'{prefix}: failed: {error}')
            results.append(ClipResult(clip.name, clip.path, output, 'failed',
                                      num_frames=num_frames, error=str(error)))
            continue
        seconds = time.perf_counter() - start
        if reader.num_frames is not None and num_frames < reader.num_frames:
            # Container frame counts can be a frame or two off; a large shortfall means a
            # damaged file, whose JSON then covers only the decoded part.
            log(f'{prefix}: note: decoded {num_frames} of the {reader.num_frames} frames the '
                'video announces')
        # An interrupted earlier run may have left its temporary of this clip behind.
        remove_stale_temporaries(output)
        write_json_atomic(poses, output)
        result = ClipResult(clip.name, clip.path, output, 'done', num_frames, len(poses),
                            seconds)
        results.append(result)
        found = (f'{len(poses)} persons' if poses else 'no persons found, wrote an empty {}')
        log(f'{prefix}: {num_frames} frames, {found}, {result.fps:.2f} frames/s -> {output}')
    return results
