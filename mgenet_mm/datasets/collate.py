"""Batch-level normalisation and packing of skeleton windows: the test loop's fast path.

The per-window pipeline ``NormalizePoseWindow`` + ``PackActionInputs`` costs a few hundred
microseconds of Python per window (a ``float64`` normalisation of one (T, V, C) array, an
``ActionDataSample`` whose metainfo mmengine deep-copies when it is created and again when the
data preprocessor moves it), several times the STG-NF flow's own cost. :func:`pose_window_collate`
does the same work once per batch: the windows are stacked, normalised together with
:func:`~mgenet_mm.datasets.pose_utils.normalize_windows` (its reductions run per window, so
the numbers are those of the per-window transform to the bit, which the tests check) and packed
into :class:`PoseWindowDataSample`, whose metainfo of plain numbers and strings is copied
without the deep copy.

Use it in a config with an empty test pipeline (the dataset then yields raw windows)::

    test_dataloader = dict(
        collate_fn=dict(type='pose_window_collate', video_resolution=(856, 480)),
        dataset=dict(type='PoseWindowDataset', pipeline=[], ...))

Like mmaction's own ``repeat_pseudo_collate``, the function is registered into mmengine's
``FUNCTIONS`` registry: mmengine's ``Runner`` looks ``collate_fn`` up there, without a scope.
:func:`build_collate_fn` builds a dataloader config's collate function the way the runner does
(for scoring outside the runner, e.g. :func:`~mgenet_mm.apis.score_video`).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import FUNCTIONS

from mmaction.structures import ActionDataSample
from .pose_utils import normalize_windows
from .transforms.formatting import DEFAULT_META_KEYS
from .transforms.utils import describe_window

__all__ = ['PoseWindowDataSample', 'pose_window_collate', 'build_collate_fn']

#: Values a deep copy returns unchanged (tuples of them are checked element by element).
_IMMUTABLE = (str, bytes, int, float, bool, type(None), np.generic)


_PLAIN = frozenset((str, int, float, bool, type(None)))


def _immutable(value: Any) -> bool:
    if type(value) in _PLAIN:  # the common case, without isinstance's walk over the bases
        return True
    if isinstance(value, tuple):
        return all(_immutable(item) for item in value)
    return isinstance(value, _IMMUTABLE)


class PoseWindowDataSample(ActionDataSample):
    """An ``ActionDataSample`` whose metainfo of plain values is copied shallowly.

    mmengine's ``set_metainfo`` deep-copies the metainfo, and every ``new``, ``to`` and
    ``cpu`` calls it again: about 25 microseconds per window and call, more than scoring the
    window. For strings, numbers and tuples of them a deep copy is the value itself, so here
    they are set directly; any other value (a list, an array, a dict) is deep-copied as before.
    Everything else is ``ActionDataSample``'s.
    """

    def set_metainfo(self, metainfo: dict) -> None:
        """Set metainfo fields; deep copies only where the value is mutable.

        Args:
            metainfo (dict): Metainfo name -> value.
        """
        if not isinstance(metainfo, dict):
            raise TypeError(f'metainfo should be a dict, got {type(metainfo).__name__}')
        if not all(_immutable(value) for value in metainfo.values()):
            super().set_metainfo(metainfo)
            return
        for key, value in metainfo.items():
            self.set_field(name=key, value=value, field_type='metainfo', dtype=None)


@FUNCTIONS.register_module()
def pose_window_collate(data_batch: Sequence[Mapping[str, Any]],
                        video_resolution: Tuple[float, float] = (856., 480.),
                        normalize: bool = True,
                        meta_keys: Sequence[str] = (),
                        pose_key: str = 'keypoint') -> Dict[str, Any]:
    """Normalise and pack a batch of raw (T, V, C) pose windows at once.

    The batched equivalent of the per-window pipeline ``NormalizePoseWindow(video_resolution)``
    + ``PackActionInputs(meta_keys=...)`` followed by ``pseudo_collate``: the same inputs, to
    the bit, and data samples with the same metainfo.

    Args:
        data_batch (Sequence[Mapping]): Items of a :class:`PoseWindowDataset` with an empty
            pipeline: ``keypoint`` (T, V, C) raw keypoints plus the window's metainfo.
        video_resolution (tuple): (width, height) of the STG-NF normalisation.
        normalize (bool): Normalise (False: the windows are normalised already).
        meta_keys (Sequence[str]): Metainfo keys beyond ``clip_name``, ``scene_id``,
            ``clip_id``, ``person_id``, ``start_frame``, ``seg_len``; missing ones are left
            out, as ``PackActionInputs`` leaves them out.
        pose_key (str): Where each item holds its window.

    Returns:
        dict: ``inputs``, a list of B (T, V, C) float32 tensors (views of one batch tensor,
        which the data preprocessor stacks), and ``data_samples``, B
        :class:`PoseWindowDataSample`.

    Raises:
        KeyError: An item without ``pose_key`` (e.g. a pipeline that packs already).
        ValueError: Windows of different shapes, or a degenerate window (no vertical spread).
    """
    if not data_batch:
        return dict(inputs=[], data_samples=[])
    missing = [i for i, item in enumerate(data_batch) if pose_key not in item]
    if missing:
        first = data_batch[missing[0]]
        hint = (' (the items are packed already: use an empty pipeline with '
                'pose_window_collate, or the default pseudo_collate)' if 'inputs' in first
                else '')
        raise KeyError(f'pose_window_collate: {describe_window(first)} has no '
                       f'{pose_key!r}{hint}')
    shapes = {np.shape(item[pose_key]) for item in data_batch}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f'pose_window_collate needs (T, V, C) windows of one shape, got '
                         f'{sorted(shapes)}')
    windows = np.stack([item[pose_key] for item in data_batch])  # (B, T, V, C)
    if normalize:
        windows, degenerate = normalize_windows(windows, video_resolution)
        if degenerate.any():
            item = data_batch[int(np.flatnonzero(degenerate)[0])]
            raise ValueError(f'degenerate pose window (no vertical spread) in '
                             f'{describe_window(item)}; PoseWindowDataset skips these')
    batch = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
    keys = DEFAULT_META_KEYS + tuple(k for k in meta_keys if k not in DEFAULT_META_KEYS)
    samples: List[PoseWindowDataSample] = []
    for item in data_batch:
        sample = PoseWindowDataSample()
        sample.set_metainfo({k: item[k] for k in keys if k in item})
        samples.append(sample)
    return dict(inputs=list(batch.unbind(0)), data_samples=samples)


def build_collate_fn(dataloader_cfg: Mapping[str, Any]) -> Callable[[Sequence[Any]], Any]:
    """The collate function of a dataloader config, built as mmengine's ``Runner`` builds it.

    Args:
        dataloader_cfg (Mapping): E.g. ``cfg.test_dataloader``; without ``collate_fn``,
            mmengine's ``pseudo_collate``.

    Returns:
        callable: ``collate(list_of_items) -> batch``.
    """
    collate_cfg = dataloader_cfg.get('collate_fn', None)
    if collate_cfg is None:
        return pseudo_collate
    if callable(collate_cfg):
        return collate_cfg
    collate_cfg = dict(collate_cfg)
    kind = collate_cfg.pop('type')
    function = FUNCTIONS.get(kind) if isinstance(kind, str) else kind
    if function is None:
        raise KeyError(f'collate_fn type {kind!r} is not registered in mmengine\'s FUNCTIONS '
                       '(e.g. pose_window_collate, pseudo_collate)')
    return partial(function, **collate_cfg)
