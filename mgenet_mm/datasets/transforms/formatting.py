"""Formatting transforms: a window packed into the inputs and data sample of the recognizer."""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmaction.registry import TRANSFORMS
from mmaction.structures import ActionDataSample
from .utils import describe_window

__all__ = ['PackMGENetInputs', 'DEFAULT_META_KEYS']

#: Metainfo every packed window carries: what the metric and the feature cache key on.
DEFAULT_META_KEYS = ('clip_name', 'scene_id', 'clip_id', 'person_id', 'start_frame', 'seg_len')
_REQUIRED_META_KEYS = ('clip_name', 'person_id', 'start_frame')


@TRANSFORMS.register_module()
class PackMGENetInputs(BaseTransform):
    """Pack a window for :class:`~mgenet_mm.models.recognizers.MGENetRecognizer`.

    ``inputs`` is a dict with an entry per modality present in the results (the recognizer's
    ``MultiModalDataPreprocessor`` stacks and normalises each):

    - ``pose``: (T, V, C) float32, from ``keypoint`` (normalised by ``NormalizePoseWindow``);
    - ``imgs``: (3, T, H, W) float32 person tube, from ``imgs`` (T, H, W, 3) uint8 RGB;
    - ``scene``: (3, H, W) float32 scene image, from ``scene`` (H, W, 3);
    - ``tokens``: (C, t, h, w) float32 cached cube tokens;
    - ``scene_feat``: (C_s,) float32 cached scene features.

    Pixel values stay in 0..255: mean/std normalisation is the data preprocessor's job.

    Required Keys:
        - clip_name, person_id, start_frame (the metric and the feature cache key on them)
        - at least one of keypoint, imgs, scene, tokens, scene_feat

    Added Keys:
        - inputs (dict of tensors)
        - data_samples (:obj:`ActionDataSample` with metainfo ``clip_name``, ``scene_id``,
          ``clip_id``, ``person_id``, ``start_frame``, ``seg_len`` and ``meta_keys``)

    Args:
        meta_keys (Sequence[str]): Metainfo keys beyond the defaults, e.g. ``('scene_key',
            'tube_box')``; missing ones are left out.
        pose_key (str): Where the pose window is. Default ``'keypoint'``.
    """

    #: results key -> (inputs key, expected ndim, axes of the packed tensor)
    _MODALITIES = (
        ('keypoint', 'pose', 3, None),
        ('imgs', 'imgs', 4, (3, 0, 1, 2)),  # (T, H, W, 3) -> (3, T, H, W)
        ('scene', 'scene', 3, (2, 0, 1)),  # (H, W, 3) -> (3, H, W)
        ('tokens', 'tokens', 4, None),
        ('scene_feat', 'scene_feat', 1, None),
    )

    def __init__(self, meta_keys: Sequence[str] = (), pose_key: str = 'keypoint') -> None:
        self.meta_keys = tuple(meta_keys)
        self.pose_key = pose_key

    def transform(self, results: Dict) -> Dict:
        missing = [k for k in _REQUIRED_META_KEYS if k not in results]
        if missing:
            raise KeyError(f'PackMGENetInputs needs {missing} in the results')
        inputs = {}
        for source, name, ndim, axes in self._MODALITIES:
            source = self.pose_key if name == 'pose' else source
            if source not in results:
                continue
            value = results[source]
            array = np.stack(value) if isinstance(value, (list, tuple)) else np.asarray(value)
            if array.ndim != ndim:
                raise ValueError(f'{describe_window(results)}: `{source}` has shape '
                                 f'{array.shape}, expected {ndim} dimensions')
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            if axes is not None:
                tensor = tensor.permute(*axes)
            inputs[name] = tensor.to(torch.float32, memory_format=torch.contiguous_format)
        if not inputs:
            raise KeyError(f'{describe_window(results)}: nothing to pack (none of keypoint, imgs, '
                           'scene, tokens, scene_feat)')
        keys = DEFAULT_META_KEYS + tuple(k for k in self.meta_keys if k not in DEFAULT_META_KEYS)
        sample = ActionDataSample()
        sample.set_metainfo({k: results[k] for k in keys if k in results})
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(meta_keys={self.meta_keys}, '
                f'pose_key={self.pose_key!r})')
