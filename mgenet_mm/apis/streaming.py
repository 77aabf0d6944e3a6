"""Score a video as its frames arrive: a rolling window per track, a score per frame.

:class:`StreamingScorer` takes one frame at a time with the tracked poses of that frame, cuts
the same windows as the offline path (:func:`~mgenet_mm.apis.score_video`), scores them as soon
as their frames are in, and emits each frame's final score once nothing that arrives later can
change it. With the same calibration and the same ``scene_frames`` the emitted scores equal the
offline ones.

Why a frame's score waits (its delay, in frames):

- a window of T frames scores its middle frame and is cut when the track's next pose arrives
  (the STG-NF windowing never takes a track's last T rows), so a frame's raw score is known
  about T / 2 + 1 frames later, later still while a track that may yet continue has an
  unfinished window;
- the protocol's Gaussian smoothing (sigmas 1..6, each truncated at 4 sigma) reaches 84 frames
  ahead;
- MGENet's scene image is the median of the first ``scene_frames`` frames, so windows wait for
  it at the start of a stream.

A track that gets no pose for more than ``track_timeout`` frames counts as ended (use the
pose tracker's own life time). If it comes back later anyway, the windows it then completes
are scored but cannot change frames already emitted; they are counted in
:attr:`StreamingScorer.late_windows` (and, when their frames have left the buffer, dropped and
counted in :attr:`StreamingScorer.dropped_windows`).

Memory: frames are kept only while a window may still need them, but the scorer records one
float per frame and one small dict per scored window (:attr:`StreamingScorer.windows`) for the
whole stream: about 1 KB per window, and a person in view gives a window per frame, so three
people at 25 frames/s add about 270 MB per hour. Start a new scorer to bound a long stream.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..datasets.collate import build_collate_fn
from ..datasets.pose_utils import clip_ids, coco17_to_coco18, degenerate_windows
from ..datasets.transforms.processing import median_scene, resize_image, scene_frame_indices
from ..evaluation.functional.vad_scores import DEFAULT_SIGMAS, smooth_scores
from .inference import (Calibration, InferenceError, load_pose_file, model_kind,
                        video_pipeline, window_length)
from .pose_extraction import PoseExtractor

__all__ = ['FrameScore', 'StreamStep', 'StreamingScorer', 'stream_video', 'smoothing_radius',
           'poses_by_frame']


def smoothing_radius(sigmas: Sequence[float]) -> int:
    """Frames the successive Gaussian filters reach on each side (scipy: int(4 sigma + 0.5))."""
    return int(sum(int(4.0 * float(s) + 0.5) for s in sigmas))


@dataclass
class FrameScore:
    """The final score of one frame.

    Attributes:
        frame (int): Frame index.
        anomaly (float): Smoothed anomaly score (the offline ``frame_scores``).
        anomaly_raw (float): Before smoothing (most anomalous window centred here, or the fill
            value).
        covered (bool): Whether a window scored this frame.
        delay (int): Frames pushed after this one before its score was emitted.
    """
    frame: int
    anomaly: float
    anomaly_raw: float
    covered: bool
    delay: int


@dataclass
class _Track:
    frames: List[int] = field(default_factory=list)
    keypoints: List[np.ndarray] = field(default_factory=list)  # (18, 3) float32 each


@dataclass
class _Window:
    person_id: int
    start_frame: int
    keypoint: np.ndarray  # (T, 18, 3)
    late: bool = False


class StreamingScorer:
    """Incremental scoring of one stream.

    Args:
        model: From :func:`~mgenet_mm.apis.init_model`.
        calibration (Calibration | str | dict): Fixed score scale with ``fill_anomaly`` (and
            ranges when the model mixes components), e.g. a ``vad_results.json``.
        scene_frames (int): MGENet's scene image is the median of frames sampled from the first
            ``scene_frames`` frames.
        track_timeout (int): Frames without a pose after which a track counts as ended.
        batch_size (int): Most windows per forward pass.
        clip_name (str): Name given to the stream's windows.
    """

    def __init__(self,
                 model: torch.nn.Module,
                 calibration: Union[Calibration, str, Mapping],
                 scene_frames: int = 150,
                 track_timeout: int = 30,
                 batch_size: int = 16,
                 clip_name: str = 'stream') -> None:
        from mmengine.dataset import Compose
        from mmengine.registry import DefaultScope
        if not isinstance(calibration, Calibration):
            calibration = Calibration.from_results(calibration)
        if calibration.fill_anomaly is None:
            raise InferenceError('streaming needs a fixed fill value for frames without '
                                 'people: give the vad_results.json of a tools/test.py run')
        if scene_frames < 1 or track_timeout < 0 or batch_size < 1:
            raise ValueError(f'bad streaming settings scene_frames={scene_frames}, '
                             f'track_timeout={track_timeout}, batch_size={batch_size}')
        self.model = model
        self.calibration = calibration
        self.kind = model_kind(model)
        self.seg_len = window_length(model)
        dataset_cfg = model.cfg.test_dataloader.dataset
        self.max_missing = int(dataset_cfg.get('max_missing', 2))
        self.video_resolution = tuple(dataset_cfg.get('video_resolution', (856., 480.)))
        evaluator = model.cfg.get('test_evaluator', {}) or {}
        self.sigmas = tuple(evaluator.get('sigmas', DEFAULT_SIGMAS))
        self.radius = smoothing_radius(self.sigmas)
        self.scene_frames = scene_frames
        self.track_timeout = track_timeout
        self.batch_size = batch_size
        self.clip_name = clip_name
        self.scene_id, self.clip_id = clip_ids(clip_name)

        steps = (video_pipeline(model, 'video', scene_frames) if self.kind == 'mgenet' else
                 [dict(step) for step in dataset_cfg.pipeline])
        self.scene_size = None
        window_steps = []
        for step in steps:
            if step['type'] == 'SceneImage':
                if step.get('mode', 'median') != 'median':
                    raise InferenceError("streaming supports SceneImage(mode='median') only")
                size = step.get('size', 224)
                self.scene_size = (size, size) if isinstance(size, int) else tuple(size)
                self.scene_num_frames = int(step.get('num_frames', 15))
            elif step['type'] not in ('WindowFrameIndices', 'OpenCVInit', 'OpenCVDecode'):
                window_steps.append(step)
        with DefaultScope.overwrite_default_scope('mmaction'):
            self.pipeline = Compose(window_steps)
        # The test loader's batching (e.g. pose_window_collate, which normalises STG-NF windows)
        self.collate = build_collate_fn(model.cfg.test_dataloader)

        self.num_frames = 0
        self._tracks: Dict[int, _Track] = {}
        self._images: Dict[int, np.ndarray] = {}  # frame -> RGB frame, while windows need it
        self._scene_small: List[np.ndarray] = []  # resized first frames, for the scene image
        self._scene: Optional[np.ndarray] = None
        self._pending: List[_Window] = []
        self._normality: List[float] = []  # per frame, +inf until a window scores it
        self._emitted = 0
        self.late_windows = 0
        self.dropped_windows = 0
        self.windows: List[dict] = []

    # ------------------------------------------------------------------ input
    def push(self, image: Optional[np.ndarray],
             persons: Mapping[int, Union[np.ndarray, Mapping]]) -> List[FrameScore]:
        """Add the next frame and its tracked poses; return the frames whose scores are final.

        Args:
            image (np.ndarray, optional): (H, W, 3) BGR uint8 frame (as OpenCV reads it);
                may be None for an STG-NF model.
            persons (Mapping): Track id -> COCO-17 pose, a (17, 3) array (x, y, confidence)
                or a tracked-person JSON entry ``{"keypoints": [...], "scores": s}``.

        Returns:
            list[FrameScore]: Newly final frames, in order.
        """
        frame = self.num_frames
        self.num_frames += 1
        self._normality.append(np.inf)
        if self.kind == 'mgenet':
            if image is None:
                raise InferenceError(f'frame {frame}: MGENet needs the image')
            rgb = np.asarray(image)[..., ::-1]  # BGR -> RGB, as OpenCVDecode gives frames
            self._images[frame] = rgb
            if self._scene is None and frame < self.scene_frames:
                self._scene_small.append(resize_image(rgb, self.scene_size))
                if frame == self.scene_frames - 1:
                    self._make_scene()
        for person_id, pose in persons.items():
            self._add_pose(int(person_id), frame, pose)
        self._score_ready()
        self._release_images()
        return self._emit(final=False)

    def finish(self) -> List[FrameScore]:
        """End of stream: score what is left and return the remaining frames."""
        if self.kind == 'mgenet' and self._scene is None and self.num_frames:
            self._make_scene()
        self._score_ready()
        return self._emit(final=True)

    # ------------------------------------------------------------------ windows
    def _make_scene(self) -> None:
        indices = scene_frame_indices(len(self._scene_small), 'median', self.scene_num_frames,
                                      max_frames=self.scene_frames)
        self._scene = median_scene([self._scene_small[i] for i in indices], self.scene_size)
        self._scene_small = []

    def _add_pose(self, person_id: int, frame: int, pose: Union[np.ndarray, Mapping]) -> None:
        if isinstance(pose, Mapping):
            pose = pose['keypoints']
        coco17 = np.asarray(pose, dtype=np.float32).reshape(1, 17, 3)
        if not np.isfinite(coco17[..., :2]).all():
            return  # the dataset drops such frames before windowing
        track = self._tracks.setdefault(person_id, _Track())
        track.frames.append(frame)
        track.keypoints.append(coco17_to_coco18(coco17)[0])
        # The STG-NF windowing never starts a window at a track's last T rows: the window of
        # rows start .. start + T - 1 is cut when row start + T arrives.
        start = len(track.frames) - 1 - self.seg_len
        if start < 0:
            return
        if start > 0:  # rows before this window's start are needed no more
            del track.frames[:start], track.keypoints[:start]
        frames = np.asarray(track.frames[:self.seg_len])
        present = int(np.sum(frames <= frames[0] + self.seg_len - 1))
        if present < self.seg_len - self.max_missing:
            return
        keypoint = np.stack(track.keypoints[:self.seg_len])  # (T, 18, 3)
        if degenerate_windows(keypoint, np.zeros(1, dtype=np.int64), self.seg_len,
                              self.video_resolution)[0]:
            return
        start_frame = int(frames[0])
        # Its middle frame reaches the smoothed scores of frames up to `radius` away.
        late = self._emitted > 0 and start_frame + self.seg_len // 2 < self._emitted + self.radius
        if late:
            self.late_windows += 1
        if self.kind == 'mgenet' and start_frame not in self._images:
            self.dropped_windows += 1
            return
        self._pending.append(_Window(person_id, start_frame, keypoint, late))

    def _results(self, window: _Window) -> dict:
        results = dict(keypoint=window.keypoint.copy(), clip_name=self.clip_name,
                       scene_id=self.scene_id, clip_id=self.clip_id, scene_key=self.clip_name,
                       person_id=window.person_id, start_frame=window.start_frame,
                       seg_len=self.seg_len, total_frames=self.num_frames)
        if self.kind == 'mgenet':
            results['imgs'] = [self._images[f] for f in range(window.start_frame,
                                                               window.start_frame + self.seg_len)]
            results['scene'] = self._scene.copy()
        return results

    @torch.no_grad()
    def _score_ready(self) -> None:
        """Score every cut window (those of one frame form a batch) once the scene is known."""
        if not self._pending or (self.kind == 'mgenet' and self._scene is None):
            return
        windows, self._pending = self._pending, []
        for begin in range(0, len(windows), self.batch_size):
            chunk = windows[begin:begin + self.batch_size]
            batch = self.collate([self.pipeline(self._results(w)) for w in chunk])
            samples = self.model.test_step(batch)
            components = {name: np.array([float(s.anomaly_scores[name]) for s in samples])
                          for name in samples[0].anomaly_scores}
            anomaly = self.calibration.mix(components)
            for index, (window, value) in enumerate(zip(chunk, anomaly)):
                centre = window.start_frame + self.seg_len // 2
                self._normality[centre] = min(self._normality[centre], -float(value))
                self.windows.append(dict(
                    person_id=window.person_id, start_frame=window.start_frame,
                    anomaly=float(value), late=window.late,
                    components={k: float(v[index]) for k, v in components.items()}))

    # ------------------------------------------------------------------ frames
    def _live_tracks(self) -> List[_Track]:
        now = self.num_frames - 1
        live = {pid: t for pid, t in self._tracks.items()
                if now - t.frames[-1] - 1 <= self.track_timeout}
        for pid in set(self._tracks) - set(live):
            del self._tracks[pid]
        return list(live.values())

    def _earliest_future_start(self) -> int:
        """No window not yet cut can start before this frame."""
        earliest = self.num_frames  # a new track starts at the next frame at the earliest
        for track in self._live_tracks():
            # the next window of this track starts at row max(rows - T, 0)
            earliest = min(earliest, track.frames[max(len(track.frames) - self.seg_len, 0)])
        return earliest

    def _final_raw_count(self) -> int:
        """Frames 0 .. n-1 whose unsmoothed score can no longer change."""
        earliest = self._earliest_future_start()
        if self._pending:
            earliest = min(earliest, min(w.start_frame for w in self._pending))
        return min(self.num_frames, earliest + self.seg_len // 2)

    def _release_images(self) -> None:
        if self.kind != 'mgenet':
            return
        keep_from = min([self._earliest_future_start()] +
                        [w.start_frame for w in self._pending])
        for frame in [f for f in self._images if f < keep_from]:
            del self._images[frame]

    def _emit(self, final: bool) -> List[FrameScore]:
        raw_count = self.num_frames if final else self._final_raw_count()
        stop = raw_count if final else raw_count - self.radius
        if stop <= self._emitted:
            return []
        # Smoothing a slice is exact from `radius` frames inside its cut ends onwards.
        begin = max(0, self._emitted - self.radius)
        normality = np.asarray(self._normality[begin:raw_count], dtype=np.float64)
        covered = np.isfinite(normality)
        normality = np.where(covered, normality, -self.calibration.fill_anomaly)
        smoothed = smooth_scores({'s': normality}, self.sigmas)['s']
        out = [FrameScore(frame=f, anomaly=-float(smoothed[f - begin]),
                          anomaly_raw=-float(normality[f - begin]),
                          covered=bool(covered[f - begin]), delay=self.num_frames - 1 - f)
               for f in range(self._emitted, stop)]
        self._emitted = stop
        return out


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------
@dataclass
class StreamStep:
    """One step of :func:`stream_video`.

    Attributes:
        frame (int, optional): Index of the frame read (None at the end of the stream).
        image (np.ndarray, optional): The BGR frame.
        persons (dict): Track id -> pose entry of this frame.
        scores (list[FrameScore]): Frames that became final at this step.
        seconds (float): Wall time of pose extraction and scoring for this step.
    """
    frame: Optional[int]
    image: Optional[np.ndarray]
    persons: Mapping
    scores: List[FrameScore]
    seconds: float


def poses_by_frame(poses: Mapping) -> Dict[int, Dict[int, dict]]:
    """Tracked-person JSON -> frame -> {person id: entry}."""
    by_frame: Dict[int, Dict[int, dict]] = {}
    for person_id, frames in poses.items():
        for frame, entry in frames.items():
            by_frame.setdefault(int(frame), {})[int(person_id)] = entry
    return by_frame


def stream_video(scorer: StreamingScorer,
                 source: Union[str, int],
                 poses: Union[str, Mapping, None] = None,
                 extractor: Optional[PoseExtractor] = None,
                 max_frames: Optional[int] = None) -> Iterator[StreamStep]:
    """Read a video file or a camera and score it frame by frame.

    Args:
        scorer (StreamingScorer): A fresh scorer (with ``extractor``, give it the tracker's
            life time as ``track_timeout``: ``extractor.new_tracker().max_missing``).
        source (str | int): A video file, or a camera index for OpenCV.
        poses (str | dict, optional): Tracked poses of a file (for replaying a video whose
            poses are known); None: ``extractor`` finds them frame by frame.
        extractor (PoseExtractor, optional): Detector, pose model and tracker.
        max_frames (int, optional): Stop after this many frames (cameras never end).

    Yields:
        StreamStep: One per frame read, then a last one (``frame`` None) with the frames the
        end of the stream makes final.
    """
    import cv2
    if poses is None and extractor is None:
        raise InferenceError('give poses (a tracked-person JSON) or a PoseExtractor')
    if isinstance(poses, str):
        poses = load_pose_file(poses)
    elif poses is not None and not isinstance(poses, Mapping):
        raise InferenceError(f'poses must be a tracked-person dict or JSON file, got '
                             f'{type(poses).__name__}')
    by_frame = poses_by_frame(poses) if poses is not None else None
    tracker = extractor.new_tracker() if by_frame is None else None
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise InferenceError(f'cannot open video {source}')
    frame = 0
    try:
        while max_frames is None or frame < max_frames:
            ok, image = capture.read()
            if not ok:
                break
            began = time.perf_counter()
            if by_frame is not None:
                persons = by_frame.get(frame, {})
            else:
                persons = extractor.process_frame(tracker, frame, image)
            emitted = scorer.push(image, persons)
            yield StreamStep(frame, image, persons, emitted, time.perf_counter() - began)
            frame += 1
    finally:
        capture.release()
    if frame == 0:
        raise InferenceError(f'no frame could be decoded from {source}')
    began = time.perf_counter()
    emitted = scorer.finish()
    yield StreamStep(None, None, {}, emitted, time.perf_counter() - began)
