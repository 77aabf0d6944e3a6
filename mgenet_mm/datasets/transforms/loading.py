"""Loading transforms: which frames a window covers, and its features read from a cache.

Frames themselves are decoded by mmaction2's own loading transforms (``DecordInit`` /
``DecordDecode``, ``OpenCVInit`` / ``OpenCVDecode``, ``RawFrameDecode``) from the
``frame_inds`` that :class:`WindowFrameIndices` chooses. A pipeline for a window of a video::

    [WindowFrameIndices, DecordInit, DecordDecode, PersonTubeCrop, SceneImage,
     NormalizePoseWindow, PackMGENetInputs]

A cached pipeline replaces the decoding, the tube crop and the scene image by
:class:`LoadCachedFeatures`::

    [LoadCachedFeatures, NormalizePoseWindow, PackMGENetInputs]
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmaction.registry import TRANSFORMS
from ..feature_cache import FeatureCacheReader, cache_checksum
from .utils import describe_window

__all__ = ['WindowFrameIndices', 'LoadCachedFeatures']


@TRANSFORMS.register_module()
class WindowFrameIndices(BaseTransform):
    """Frame indices of a pose window: its T consecutive frames from ``start_frame``.

    The window of a tracked person starts at ``start_frame``; the RGB tube covers the T
    consecutive frames ``start_frame .. start_frame + T - 1`` (the paper's "T consecutive
    frames"), whatever pose frames the tracker missed inside the window.

    Required Keys:
        - start_frame
        - seg_len (unless ``clip_len`` is given)
        - total_frames (optional: the indices are checked against it)

    Added Keys:
        - frame_inds: (T,) int64
        - clip_len
        - frame_interval
        - num_clips

    Args:
        clip_len (int, optional): T; default the window's ``seg_len``.
    """

    def __init__(self, clip_len: Optional[int] = None) -> None:
        if clip_len is not None and clip_len < 1:
            raise ValueError(f'clip_len must be >= 1, got {clip_len}')
        self.clip_len = clip_len

    def transform(self, results: Dict) -> Dict:
        clip_len = self.clip_len or int(results['seg_len'])
        start = int(results['start_frame'])
        frame_inds = np.arange(start, start + clip_len, dtype=np.int64)
        total = results.get('total_frames')
        if start < 0 or (total is not None and frame_inds[-1] >= total):
            raise IndexError(f'{describe_window(results)}: frames {start}..{frame_inds[-1]} are '
                             f'outside the clip (0..{None if total is None else total - 1})')
        results.update(frame_inds=frame_inds, clip_len=clip_len, frame_interval=1, num_clips=1)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(clip_len={self.clip_len})'


@TRANSFORMS.register_module()
class LoadCachedFeatures(BaseTransform):
    """Read a window's cube tokens and its clip's scene features from a feature cache.

    Replaces the decoding, tube cropping and scene image transforms of an on-the-fly pipeline
    (and spares the model its frozen ``cube_embed`` / ``scene_encoder``). The cache is written
    by ``tools/data/extract_features.py``; see :mod:`mgenet_mm.datasets.feature_cache` for its
    layout.

    Which cache is accepted. ``expected_checksum='auto'`` (the default when ``model_cfg`` is
    given) computes :func:`cache_checksum` from ``model_cfg`` and ``pipeline_cfg`` and refuses a
    cache whose config checksum differs, naming both. That covers the frozen modules' configs
    and checkpoint paths/URLs, the normalisation and the crop/scene transforms, but not the
    bytes of the checkpoint files: ``extract_features.py --verify`` checks those (weights
    checksum). A hex string is compared as is; None skips the check.

    Required Keys:
        - clip_name
        - person_id
        - start_frame

    Added Keys:
        - tokens: (C, t, h, w) float32 cube tokens (stored as float16).
        - scene_feat: (C_s,) float32 scene features (when the cache has them and
          ``with_scene``).

    Args:
        cache_dir (str): The split's cache folder.
        expected_checksum (str, optional): ``'auto'``, a hex digest, or None. Defaults to
            ``'auto'`` when ``model_cfg`` is given, else None.
        model_cfg (dict, optional): The model config the features stand for (its
            ``cube_embed``, ``scene_encoder`` and ``data_preprocessor``).
        pipeline_cfg (list[dict], optional): The on-the-fly pipeline the cache was built with
            (``extract_features.py`` also reads it from here when given this config).
        with_scene (bool): Add ``scene_feat``. Defaults to True.
        verify (str): ``'sha256'`` (default) checks each shard's full digest when a process
            first opens it; ``'size'`` only its header and size (for very large caches).
    """

    def __init__(self,
                 cache_dir: str,
                 expected_checksum: Optional[str] = None,
                 model_cfg: Optional[dict] = None,
                 pipeline_cfg: Optional[List[Union[dict, Any]]] = None,
                 with_scene: bool = True,
                 verify: str = 'sha256') -> None:
        if expected_checksum is None and model_cfg is not None:
            expected_checksum = 'auto'
        if expected_checksum == 'auto':
            if model_cfg is None or pipeline_cfg is None:
                raise ValueError("expected_checksum='auto' needs model_cfg and pipeline_cfg (the "
                                 'on-the-fly pipeline the cache was built with)')
            expected_checksum = cache_checksum(model_cfg, pipeline_cfg)
        self.cache_dir = cache_dir
        self.expected_checksum = expected_checksum
        self.model_cfg = copy.deepcopy(model_cfg)
        self.pipeline_cfg = copy.deepcopy(pipeline_cfg)
        self.with_scene = with_scene
        self.reader = FeatureCacheReader(cache_dir, expected_checksum, verify)

    def transform(self, results: Dict) -> Dict:
        reader = self.reader
        window = reader.window(results['clip_name'], results['person_id'],
                               results['start_frame'])
        results['tokens'] = np.array(reader.tokens(window), dtype=np.float32)  # (C, t, h, w)
        if self.with_scene and reader.with_scene:
            results['scene_feat'] = np.array(reader.scene_feat(results['clip_name']),
                                             dtype=np.float32)  # (C_s,)
        return results

    def __repr__(self) -> str:
        checksum = self.expected_checksum[:12] + '...' if self.expected_checksum else None
        return (f'{type(self).__name__}(cache_dir={self.cache_dir!r}, '
                f'expected_checksum={checksum}, with_scene={self.with_scene})')
