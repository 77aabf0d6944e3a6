"""Score one video with a trained model: ``init_model`` and ``score_video``.

The offline path reuses the evaluation path unchanged: the video's tracked poses become a
one-clip :class:`~mgenet_mm.datasets.MGENetWindowDataset` (or
:class:`~mgenet_mm.datasets.PoseWindowDataset` for an STG-NF model), the config's test pipeline
cuts tubes and scene images, the model scores every window, and the frame scores follow the
evaluation protocol (window score on its middle frame, most anomalous person per frame, empty
frames filled, Gaussian smoothing with sigmas 1..6).

Score scale. The metric min-max normalises each component over the evaluated set before mixing
them (eq. 16) and fills empty frames with the least anomalous score of the set. One video is
not a set, so a :class:`Calibration` says which ranges and fill value to use: those recorded
by ``tools/test.py`` in ``vad_results.json`` (``component_ranges``, ``fill_value``), which puts
the video on the scale of that test set, or, by default offline, the video's own windows.
Streaming (:mod:`mgenet_mm.apis.streaming`) needs the recorded ones, since a stream has no end
to take ranges over.
"""
from __future__ import annotations

import dataclasses
import json
import os.path as osp
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..evaluation.functional.score_mixing import component_ranges, mix_scores
from ..evaluation.functional.vad_scores import (DEFAULT_SIGMAS, fill_empty_frames, smooth_scores,
                                                windows_to_frame_scores)
from ..fileio import atomic_write_bytes
from .clips import Clip, ClipReadError, ClipReader
from .pose_extraction import POSE_JSON_SUFFIX, PoseExtractor

__all__ = ['Calibration', 'InferenceError', 'VideoScores', 'init_model', 'score_video',
           'extract_video_poses', 'load_pose_file', 'mix_components', 'frame_scores_from_windows',
           'video_pipeline', 'model_kind', 'window_length']

#: Decoding steps of a config's pipeline, replaced by the decoder that fits the input.
_DECODE_STEPS = ('DecordInit', 'DecordDecode', 'OpenCVInit', 'OpenCVDecode', 'PyAVInit',
                 'PyAVDecode', 'RawFrameDecode')


class InferenceError(ValueError):
    """A video, pose file, config or calibration that cannot be scored, with the reason."""


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
def init_model(config: Union[str, Any],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               frozen_seed: int = 0) -> torch.nn.Module:
    """Build a recognizer from a config and load its trained weights, ready to score videos.

    Frozen parts that the checkpoint does not hold (a model trained from a feature cache has no
    cube embedding or scene encoder) are initialised as ``tools/data/extract_features.py``
    initialised them for the cache: from their ``Pretrained`` checkpoint, or randomly from
    ``frozen_seed`` (its ``--seed``), so that raw frames give the features the model was
    trained on.

    Checkpoints load under the project's trust policy (:mod:`mgenet_mm.utils.checkpoint_trust`):
    tensors, numpy data and mmengine's own records only, unless loaded inside
    ``mgenet_mm.utils.trust_checkpoints()``.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Trained weights (path or URL). Without one, the model keeps
            the weights its ``init_cfg`` gives (e.g. the official STG-NF ``.tar``).
        device (str): Device.
        cfg_options (dict, optional): Overrides, as ``--cfg-options`` takes them.
        frozen_seed (int): Seed of frozen parts without a checkpoint.

    Returns:
        torch.nn.Module: The model in eval mode, with the config as ``model.cfg``.
    """
    import mgenet_mm  # noqa: F401  registration and checkpoint shims
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import CheckpointLoader

    from mmaction.registry import MODELS

    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config not found: {config}')
        config = Config.fromfile(config)
    cfg = config.copy()
    if cfg_options:
        # a misspelt top-level key is refused, not ignored ('+key=...' adds a new one)
        from ..engine.config_utils import merge_cfg_options
        merge_cfg_options(cfg, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    if checkpoint is not None and not checkpoint.startswith(('http://', 'https://')) and \
            not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    model = MODELS.build(cfg.model)
    if checkpoint is None:
        from ..models.frozen_parts import quiet_init
        quiet_init(model)  # init_cfg weights (e.g. Pretrained) without a per-parameter report
    else:
        state = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        state_dict = state.get('state_dict', state) if isinstance(state, Mapping) else None
        if not isinstance(state_dict, Mapping):
            raise InferenceError(f'checkpoint {checkpoint} holds no state_dict')
        from ..models.utils.checkpoint import load_state_dict_checked, strip_wrapper_prefix
        state_dict = strip_wrapper_prefix(state_dict)
        # Loading runs the models' key adapters (e.g. official STG-NF keys) first. Frozen
        # parts may be absent (a model trained from a feature cache has none): they are
        # initialised below as the cache's extractor initialised them.
        report = load_state_dict_checked(
            model, state_dict, optional=[rf'^{name}\.' for name in _frozen_names(model)],
            source=f'checkpoint {checkpoint}', target="the config's model", error=InferenceError)
        _init_missing_frozen_parts(model, cfg, report.missing, frozen_seed)
    model.cfg = cfg
    return model.to(device).eval()


def _frozen_names(model: torch.nn.Module) -> List[str]:
    from ..models.frozen_parts import FROZEN_PARTS
    return [name for name in FROZEN_PARTS if getattr(model, name, None) is not None]


def _init_missing_frozen_parts(model: torch.nn.Module, cfg: Any, missing: Sequence[str],
                               seed: int) -> None:
    """Frozen parts absent from the checkpoint get the feature cache's weights."""
    needed = [name for name in _frozen_names(model)
              if any(k.startswith(name + '.') for k in missing)]
    if not needed:
        return
    # The same construction as the feature cache's extractor: same seed, same order.
    from ..models.frozen_parts import build_frozen_parts
    parts = build_frozen_parts(cfg.model, seed)
    for name in needed:
        getattr(model, name).load_state_dict(parts[name].state_dict())


# ---------------------------------------------------------------------------------------------
# Score scale
# ---------------------------------------------------------------------------------------------
def _json_kind(value: Any) -> str:
    """The JSON name of a loaded value's type, for messages."""
    return {list: 'array', str: 'string', bool: 'boolean', int: 'number', float: 'number',
            type(None): 'null'}.get(type(value), type(value).__name__)


@dataclass
class Calibration:
    """How window components become one score, and what empty frames get.

    Attributes:
        score_weights (dict, optional): Component -> weight (eq. 16); None for a model with one
            component (used raw).
        normalize (bool): Min-max normalise each component with ``ranges`` before mixing.
        ranges (dict): Component -> (low, high) of the normalisation.
        fill_anomaly (float, optional): Anomaly score of frames no window scores; None = the
            least anomalous frame of the video (the metric's rule, offline only).
        source (str): Where the numbers come from, for the record.
    """
    score_weights: Optional[Dict[str, float]] = None
    normalize: bool = True
    ranges: Dict[str, Tuple[float, float]] = field(default_factory=dict)
    fill_anomaly: Optional[float] = None
    source: str = 'video'

    @classmethod
    def from_results(cls, results: Union[str, Mapping]) -> 'Calibration':
        """From a ``vad_results.json`` written by ``tools/test.py`` (path or loaded dict)."""
        source = results if isinstance(results, str) else 'dict'
        if isinstance(results, str):
            if not osp.isfile(results):
                raise FileNotFoundError(f'calibration file not found: {results}')
            try:
                with open(results) as f:
                    results = json.load(f)
            except (OSError, ValueError) as error:
                raise InferenceError(f'cannot read calibration {source}: {error}') from None
        if not isinstance(results, Mapping):
            raise InferenceError(
                f'calibration {source}: the top level is a JSON {_json_kind(results)}, expected '
                'the object of a vad_results.json written by tools/test.py (keys fill_value, '
                'component_ranges, ...)')
        needed = ['fill_value']
        if results.get('score_weights') and results.get('normalize', True):
            needed.append('component_ranges')
        for key in needed:
            if key not in results:
                raise InferenceError(f'calibration {source} has no {key!r}: give the '
                                     'vad_results.json of a tools/test.py run of this model')
        return cls(score_weights=results.get('score_weights'),
                   normalize=bool(results.get('normalize', True)),
                   ranges={k: (float(v[0]), float(v[1]))
                           for k, v in results.get('component_ranges', {}).items()},
                   fill_anomaly=-float(results['fill_value']), source=source)

    def mix(self, components: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N,) window anomaly scores from per-component ones (see :func:`mix_components`)."""
        return mix_components(components, self.score_weights, self.ranges, self.normalize)

    def score_range(self) -> Tuple[float, float]:
        """The span of mixed scores over the calibration set (for colour scales)."""
        if self.score_weights and self.normalize:
            return 0.0, float(sum(self.score_weights.values()))
        if len(self.ranges) == 1:
            return next(iter(self.ranges.values()))
        return 0.0, 1.0

    def to_dict(self) -> dict:
        return dict(score_weights=self.score_weights, normalize=self.normalize,
                    ranges={k: list(v) for k, v in self.ranges.items()},
                    fill_anomaly=self.fill_anomaly, source=self.source)


def mix_components(components: Mapping[str, np.ndarray],
                   score_weights: Optional[Mapping[str, float]],
                   ranges: Mapping[str, Tuple[float, float]],
                   normalize: bool = True) -> np.ndarray:
    """Eq. 16 with fixed normalisation ranges: ``sum_c w_c (s_c - low_c) / (high_c - low_c)``.

    :func:`~mgenet_mm.evaluation.functional.mix_scores`, the metric's mix, with its errors as
    :class:`InferenceError`: with the ranges of the evaluated set it gives exactly the metric's
    numbers; a component whose range is empty contributes 0.

    Args:
        components: Component name -> (N,) anomaly scores.
        score_weights: Component -> weight; None needs exactly one component (returned raw).
        ranges: Component -> (low, high), used when ``normalize``.
        normalize: Min-max normalise before weighting.

    Returns:
        np.ndarray: (N,) float64.
    """
    try:
        return mix_scores(components, score_weights, ranges, normalize)
    except (KeyError, ValueError) as error:
        # args[0]: a KeyError's str() would quote the message
        raise InferenceError(error.args[0]) from None


def frame_scores_from_windows(window_anomaly: np.ndarray,
                              person_start: np.ndarray,
                              num_frames: int,
                              seg_len: int,
                              fill_anomaly: Optional[float] = None,
                              sigmas: Iterable[float] = DEFAULT_SIGMAS
                              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-frame anomaly of one clip by the evaluation protocol.

    Args:
        window_anomaly: (N,) anomaly per window (higher = more abnormal).
        person_start: (N, 2) person id and start frame per window.
        num_frames: Frames of the clip.
        seg_len: Window length T (a window scores frame start + T // 2).
        fill_anomaly: Score of frames no window scores; None = the least anomalous scored frame
            of this clip (the metric's rule over a one-clip set).
        sigmas: Successive Gaussian smoothing sigmas.

    Returns:
        tuple: (F,) raw (filled, unsmoothed) and (F,) smoothed anomaly, (F,) bool frames
        scored by a window, and the fill value used.
    """
    normality = windows_to_frame_scores(-np.asarray(window_anomaly, dtype=np.float64),
                                        np.asarray(person_start, dtype=np.int64).reshape(-1, 2),
                                        {'clip': num_frames}, seg_len,
                                        clip_names=['clip'] * len(window_anomaly))['clip']
    covered = np.isfinite(normality)
    if fill_anomaly is None:
        filled, fill_normality = fill_empty_frames({'clip': normality})
        normality = filled['clip']
        fill_anomaly = -fill_normality
    else:
        normality = np.where(covered, normality, -fill_anomaly)
    smoothed = smooth_scores({'clip': normality}, sigmas)['clip']
    return -normality, -smoothed, covered, float(fill_anomaly)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass
class VideoScores:
    """Scores of one video.

    Attributes:
        clip_name (str): The video's name.
        num_frames (int): Frames of the video.
        frame_scores (np.ndarray): (F,) final anomaly per frame (smoothed).
        frame_scores_raw (np.ndarray): (F,) before smoothing (empty frames filled).
        covered (np.ndarray): (F,) bool, frames scored by at least one window.
        windows (list[dict]): Per window: ``person_id``, ``start_frame``, ``anomaly`` (mixed),
            ``components`` and, for RGB models, ``tube_box``.
        calibration (Calibration): The score scale used.
        seg_len (int): Window length T.
        sigmas (tuple): Smoothing sigmas.
    """
    clip_name: str
    num_frames: int
    frame_scores: np.ndarray
    frame_scores_raw: np.ndarray
    covered: np.ndarray
    windows: List[dict]
    calibration: Calibration
    seg_len: int
    sigmas: Tuple[float, ...] = DEFAULT_SIGMAS

    def to_dict(self) -> dict:
        return dict(clip_name=self.clip_name, num_frames=self.num_frames, seg_len=self.seg_len,
                    sigmas=list(self.sigmas), calibration=self.calibration.to_dict(),
                    frame_scores=[float(v) for v in self.frame_scores],
                    frame_scores_raw=[float(v) for v in self.frame_scores_raw],
                    covered=[bool(v) for v in self.covered], windows=self.windows)

    def save_json(self, path: str) -> None:
        """Write :meth:`to_dict` atomically."""
        text = json.dumps(self.to_dict()).encode()
        atomic_write_bytes(path, lambda f: f.write(text))


# ---------------------------------------------------------------------------------------------
# Offline scoring
# ---------------------------------------------------------------------------------------------
def model_kind(model: torch.nn.Module) -> str:
    """``'mgenet'`` (RGB + pose windows) or ``'stgnf'`` (pose windows only)."""
    dataset_type = model.cfg.test_dataloader.dataset.type
    if dataset_type == 'MGENetWindowDataset':
        return 'mgenet'
    if dataset_type == 'PoseWindowDataset':
        return 'stgnf'
    raise InferenceError(f'cannot score videos with a {dataset_type} test set; expected '
                         'MGENetWindowDataset or PoseWindowDataset')


def window_length(model: torch.nn.Module) -> int:
    """T of the model's test windows."""
    return int(model.cfg.test_dataloader.dataset.get('seg_len', 24))


def video_pipeline(model: torch.nn.Module, source_kind: str,
                   scene_frames: Optional[int]) -> List[dict]:
    """The config's test pipeline, decoding ``source_kind`` (``'video'`` or ``'frames'``).

    Video files are decoded with OpenCV (mmaction's ``OpenCVInit``/``OpenCVDecode``, and
    ``SceneImage(video_backend='opencv')``), the decoder the streaming mode reads frames with,
    so that both see the same pixels; frame folders with ``RawFrameDecode``. ``scene_frames``
    limits the scene image to the first frames (see ``SceneImage.max_frames``).
    """
    pipeline = [dict(step) for step in model.cfg.test_dataloader.dataset.pipeline]
    if any(step['type'] == 'LoadCachedFeatures' for step in pipeline):
        raise InferenceError(
            'the config reads cached features (LoadCachedFeatures), which exist only for its '
            'dataset: score videos with the config it caches, e.g. configs/mgenet/demo.py for '
            'demo_cached.py, and the same checkpoint')
    decoders = ([dict(type='OpenCVInit'), dict(type='OpenCVDecode')] if source_kind == 'video'
                else [dict(type='RawFrameDecode')])
    out: List[dict] = []
    for step in pipeline:
        if step['type'] in _DECODE_STEPS:
            if decoders:
                out.extend(decoders)
                decoders = []
            continue
        if step['type'] == 'SceneImage':
            step.update(video_backend='opencv', max_frames=scene_frames)
        out.append(step)
    return out


def load_pose_file(path: str) -> dict:
    """A tracked-person JSON file, loaded; errors name the file and what is wrong.

    Args:
        path (str): ``{person_id: {frame: {"keypoints": [...], "scores": s}}}`` as JSON.

    Returns:
        dict: The loaded object (its entries are checked when the windows are cut).

    Raises:
        FileNotFoundError: No such file.
        InferenceError: Not valid JSON (e.g. a file cut short), or not a JSON object.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'pose file not found: {path}')
    try:
        with open(path, encoding='utf-8') as f:
            loaded = json.load(f)
    except json.JSONDecodeError as error:
        raise InferenceError(
            f'pose file {path} is not valid JSON ({error.msg} at line {error.lineno}, column '
            f'{error.colno}); a file cut short ends like this: write it again') from None
    except (OSError, UnicodeDecodeError) as error:
        raise InferenceError(f'cannot read pose file {path}: {error}') from None
    if not isinstance(loaded, dict):
        raise InferenceError(f'pose file {path}: the top level is a JSON {_json_kind(loaded)}, '
                             'expected an object of person id -> {frame: {"keypoints": [...], '
                             '"scores": s}}')
    return loaded


def _write_pose_file(poses: Union[str, Mapping, None], folder: str, clip: str) -> str:
    path = osp.join(folder, clip + POSE_JSON_SUFFIX)
    if isinstance(poses, str):
        load_pose_file(poses)  # JSON errors name the given file, not this copy
        shutil.copyfile(poses, path)
    else:
        text = json.dumps(poses).encode()
        atomic_write_bytes(path, lambda f: f.write(text))
    return path


def _clip_of(video: str) -> Clip:
    if osp.isdir(video):
        return Clip(osp.basename(osp.normpath(video)), video, 'frames')
    if osp.isfile(video):
        return Clip(osp.splitext(osp.basename(video))[0], video, 'video')
    raise FileNotFoundError(f'video not found: {video}')


def extract_video_poses(extractor: PoseExtractor, video: str,
                        show_progress: bool = True) -> Dict[str, dict]:
    """Tracked poses of one video or frame folder (see :meth:`PoseExtractor.extract_clip`)."""
    from tqdm import tqdm
    clip = _clip_of(video)
    with ClipReader(clip) as reader, tqdm(total=reader.num_frames, desc=f'poses {clip.name}',
                                          unit='frame', disable=not show_progress,
                                          dynamic_ncols=True, leave=False) as bar:
        return extractor.extract_clip(reader, progress=bar.update)


def _frame_count(clip: Clip) -> int:
    """Frames of a video or frame folder; an :class:`InferenceError` naming it if it has none."""
    try:
        with ClipReader(clip) as reader:
            count = reader.num_frames
            if count is None:  # the container does not say: count them (raises if none)
                count = sum(1 for _ in reader)
    except ClipReadError as error:  # an InferenceError (a ValueError), as before
        raise InferenceError(str(error)) from None
    if not count:
        what = 'frame folder' if clip.kind == 'frames' else 'video'
        raise InferenceError(f'{what} {clip.path} has no frames: nothing to score (give a '
                             'video, or a folder of frame images, with at least one frame)')
    return int(count)


def _check_windows_inside(dataset: Any, num_frames: int, seg_len: int, clip: Clip,
                          poses: Union[str, Mapping]) -> None:
    """Every window's middle frame, the frame it scores, must be a frame of the clip."""
    if not len(dataset):
        return
    start = max(int(d['start_frame']) for d in dataset.data_list)
    if start + seg_len // 2 < num_frames:
        return
    source = poses if isinstance(poses, str) else 'the poses'
    clip_text = f'{clip.path} has' if clip.path else f'the clip has (num_frames={num_frames})'
    raise InferenceError(
        f'{source} has a window of frames {start}..{start + seg_len - 1}, scoring frame '
        f'{start + seg_len // 2}, but {clip_text} {num_frames} frames (last frame '
        f'{num_frames - 1}): the poses are not of this video')


def _window_record(sample: Any) -> dict:
    """What :class:`VideoScores` keeps of one scored window."""
    scores = {name: float(value) for name, value in sample.anomaly_scores.items()}
    window = dict(person_id=int(sample.person_id), start_frame=int(sample.start_frame),
                  components=scores)
    if 'tube_box' in sample:
        window['tube_box'] = [int(v) for v in sample.tube_box]
    return window


def _frame_sequential_batches(dataset: Any, clip: Clip, seg_len: int,
                              batch_size: int) -> Iterable[Tuple[List[int], List[dict]]]:
    """Batches of a video's windows, each frame decoded once, in order.

    Windows go by start frame; a batch is prepared (its ``imgs`` set as ``OpenCVDecode`` sets
    them: RGB views of the BGR frames) once its last frame is read, and frames are dropped as
    soon as no window left needs them. The dataset's pipeline must not decode.

    Args:
        dataset: A one-clip :class:`MGENetWindowDataset` on the video.
        clip (Clip): The video.
        seg_len (int): Window length T.
        batch_size (int): Windows per batch.

    Yields:
        tuple: (dataset indices, prepared items) per batch.
    """
    order = sorted(range(len(dataset)), key=lambda i: dataset.data_list[i]['start_frame'])
    if not order:
        return
    frames: Dict[int, np.ndarray] = {}
    with ClipReader(clip) as reader:
        source = iter(reader)
        next_frame = 0
        for begin in range(0, len(order), batch_size):
            chunk = order[begin:begin + batch_size]
            last = max(dataset.data_list[i]['start_frame'] for i in chunk) + seg_len - 1
            for image in source:  # read up to the batch's last frame
                frames[next_frame] = image
                next_frame += 1
                if next_frame > last:
                    break
            items = []
            for index in chunk:
                info = dataset.get_data_info(index)
                start = int(info['start_frame'])
                # OpenCVDecode's rule for frames the container cannot give: the one before
                imgs = [frames[min(f, next_frame - 1)][..., ::-1]  # BGR -> RGB view
                        for f in range(start, start + seg_len)]
                info.update(imgs=imgs, original_shape=imgs[0].shape[:2],
                            img_shape=imgs[0].shape[:2])
                items.append(dataset.pipeline(info))
            keep_from = (dataset.data_list[order[begin + batch_size]]['start_frame']
                         if begin + batch_size < len(order) else next_frame)
            for frame in [f for f in frames if f < min(keep_from, next_frame - 1)]:
                del frames[frame]
            yield chunk, items


@torch.no_grad()
def score_video(model: torch.nn.Module,
                video: Optional[str],
                poses: Union[str, Mapping, None] = None,
                extractor: Optional[PoseExtractor] = None,
                calibration: Union[Calibration, str, Mapping, None] = None,
                batch_size: int = 16,
                scene_frames: Optional[int] = None,
                show_progress: bool = True,
                progress: Optional[Callable[[int, int], None]] = None,
                num_frames: Optional[int] = None,
                decode_once: bool = True) -> VideoScores:
    """Anomaly scores of every frame of one video.

    Args:
        model: From :func:`init_model`.
        video (str, optional): A video file or a folder of frames ``0 .. n-1``. An STG-NF
            model, which reads poses only, may do without (give ``poses`` and ``num_frames``).
        poses (str | dict, optional): Tracked poses: a tracked-person JSON file or its loaded
            dict. None: extracted with ``extractor``.
        extractor (PoseExtractor, optional): Detector, pose model and tracker, when ``poses``
            is None.
        calibration (Calibration | str | dict, optional): Score scale (see the module
            docstring): a :class:`Calibration`, or a ``vad_results.json`` (path or dict).
            None: the video's own windows.
        batch_size (int): Windows per forward pass.
        scene_frames (int, optional): Take the scene image's median from the first
            ``scene_frames`` frames (what streaming can do); None: the whole video, as in
            evaluation.
        show_progress (bool): tqdm progress bars.
        progress (callable, optional): Called with (windows done, total) after each batch.
        num_frames (int, optional): Frames of the clip, for an STG-NF model without a video
            (default: the video's frame count).
        decode_once (bool): MGENet on a video file: decode each frame once, in order, and
            hand it to the windows that need it (as streaming does). False: every window
            decodes its frames through the config's pipeline (``OpenCVDecode``), the
            evaluation path, about 4x slower; the scores are the same.

    Returns:
        VideoScores: Frame scores, window scores and the calibration used.
    """
    from mmengine.registry import DefaultScope
    from tqdm import tqdm

    from mmaction.registry import DATASETS
    from ..datasets.collate import build_collate_fn

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InferenceError(f'batch_size must be a whole number of windows >= 1, got '
                             f'{batch_size!r}')
    kind = model_kind(model)
    if video is None:
        if kind == 'mgenet' or poses is None or num_frames is None:
            raise InferenceError('without a video, give poses and num_frames (STG-NF models '
                                 'only; MGENet reads the frames)')
        name = (osp.basename(poses)[:-len(POSE_JSON_SUFFIX)] if isinstance(poses, str)
                and poses.endswith(POSE_JSON_SUFFIX) else 'video')
        clip = Clip(name, '', 'none')
    else:
        clip = _clip_of(video)
        # before pose extraction: a video without frames has nothing to extract or score
        video_frames = _frame_count(clip)
        if num_frames is None and kind == 'stgnf':
            num_frames = video_frames
    if poses is None:
        if extractor is None:
            raise InferenceError('give poses (a tracked-person JSON) or a PoseExtractor')
        poses = extract_video_poses(extractor, video, show_progress)
    if not isinstance(calibration, (Calibration, type(None))):
        calibration = Calibration.from_results(calibration)
    seg_len = window_length(model)
    evaluator = model.cfg.get('test_evaluator', {}) or {}
    sigmas = tuple(evaluator.get('sigmas', DEFAULT_SIGMAS))
    with tempfile.TemporaryDirectory(prefix='mgenet_poses_') as pose_dir:
        _write_pose_file(poses, pose_dir, clip.name)
        dataset_cfg = dict(model.cfg.test_dataloader.dataset)
        for key in ('data_root', 'split', 'scenes', 'clips', 'exclude_clips', 'frame_dir',
                    'video_dir', 'video_exts', 'layout', 'ann_file'):
            dataset_cfg.pop(key, None)
        dataset_cfg.update(pose_dir=pose_dir, clips=[clip.name], test_mode=True)
        # A video's frames are decoded once, in order, and handed to the windows that need
        # them (as streaming reads them), instead of 24 seeks and decodes per window.
        decode_once = decode_once and kind == 'mgenet' and clip.kind == 'video'
        if kind == 'mgenet':
            parent = osp.dirname(osp.abspath(clip.path))
            steps = video_pipeline(model, clip.kind, scene_frames)
            if decode_once:
                steps = [step for step in steps if step['type'] not in _DECODE_STEPS]
            dataset_cfg.update(layout='own', pipeline=steps)
            if clip.kind == 'video':
                dataset_cfg.update(video_dir=parent,
                                   video_exts=(osp.splitext(clip.path)[1], ))
            else:
                dataset_cfg.update(frame_dir=parent)
        # Pose models switch the default scope to mmpose/mmdet as they run.
        with DefaultScope.overwrite_default_scope('mmaction'):
            dataset = DATASETS.build(dataset_cfg)
        if kind == 'mgenet':
            num_frames = int(dataset.clip_infos[0]['total_frames'])
        else:
            _check_windows_inside(dataset, num_frames, seg_len, clip, poses)
        total = len(dataset)
        collate = build_collate_fn(model.cfg.test_dataloader)
        if decode_once:
            batches = _frame_sequential_batches(dataset, clip, seg_len, batch_size)
        else:
            batches = ((list(range(start, min(start + batch_size, total))),
                        [dataset[i] for i in range(start, min(start + batch_size, total))])
                       for start in range(0, total, batch_size))
        by_index: List[Optional[dict]] = [None] * total
        done = 0
        with tqdm(total=total, desc=f'scoring {clip.name}', unit='window',
                  disable=not show_progress, dynamic_ncols=True, leave=False) as bar:
            for indices, items in batches:
                for index, sample in zip(indices, model.test_step(collate(items))):
                    by_index[index] = _window_record(sample)
                done += len(indices)
                bar.update(len(indices))
                if progress is not None:
                    progress(done, total)
    windows: List[dict] = [w for w in by_index if w is not None]  # dataset order
    components: Dict[str, List[float]] = {}
    for window in windows:
        for name, value in window['components'].items():
            components.setdefault(name, []).append(value)
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in components.items()}
    if calibration is None:
        weights = evaluator.get('score_weights')
        calibration = Calibration(
            score_weights=None if weights is None else dict(weights),
            normalize=bool(evaluator.get('normalize', True)),
            ranges=component_ranges(arrays),
            fill_anomaly=None, source='video')
    anomaly = calibration.mix(arrays) if windows else np.zeros(0)
    for window, value in zip(windows, anomaly):
        window['anomaly'] = float(value)
    person_start = np.array([[w['person_id'], w['start_frame']] for w in windows],
                            dtype=np.int64).reshape(-1, 2)
    raw, smoothed, covered, fill = frame_scores_from_windows(
        anomaly, person_start, num_frames, seg_len, calibration.fill_anomaly, sigmas)
    if calibration.fill_anomaly is None:
        calibration = dataclasses.replace(calibration, fill_anomaly=fill)
    return VideoScores(clip.name, num_frames, smoothed, raw, covered, windows, calibration,
                       seg_len, sigmas)
