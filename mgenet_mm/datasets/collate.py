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
from mmengine.structures import BaseDataElement

from mmaction.structures import ActionDataSample
from .pose_utils import normalize_windows
from .transforms.formatting import DEFAULT_META_KEYS
from .transforms.utils import describe_window

__all__ = ['PoseWindowDataSample', 'pose_window_collate', 'build_collate_fn']

#: Values a deep copy returns unchanged (tuples of them are checked element by element).
_IMMUTABLE = (str, bytes, int, float, bool, type(None), np.generic)


_PLAIN = frozenset((str, int, float, bool, type(None)))


def _all_immutable(values: Any) -> bool:
    """Whether a deep copy of each of ``values`` is the value itself."""
    for value in values:
        if type(value) not in _PLAIN and not _immutable(value):
            return False
    return True


def _immutable(value: Any) -> bool:
    if type(value) in _PLAIN:  # the common case, without isinstance's walk over the bases
        return True
    if isinstance(value, tuple):
        return all(_immutable(item) for item in value)
    return isinstance(value, _IMMUTABLE)


def _data_descriptors(cls: type) -> frozenset:
    """Names of ``cls``'s attributes that intercept assignment (properties and the like)."""
    names = _DESCRIPTORS.get(cls)
    if names is None:
        names = frozenset(name for klass in cls.__mro__ for name, value in vars(klass).items()
                          if hasattr(type(value), '__set__'))
        _DESCRIPTORS[cls] = names
    return names


_DESCRIPTORS: Dict[type, frozenset] = {}
#: The two bookkeeping attributes of mmengine's data elements (never metainfo keys here).
_PRIVATE = frozenset(('_metainfo_fields', '_data_fields', '_plain_metainfo'))
#: Instance attribute (not a field) marking a plain sample; see PoseWindowDataSample.
_PLAIN_MARK = '_plain_metainfo'


class PoseWindowDataSample(ActionDataSample):
    """An ``ActionDataSample`` whose metainfo of plain values is copied shallowly.

    mmengine's ``set_metainfo`` deep-copies the metainfo and sets it key by key, and the data
    preprocessor's ``to`` and the evaluator's ``to_dict`` walk every field again through
    generic accessors: together about 25 microseconds per window, half the STG-NF flow. A
    sample whose metainfo holds only strings, numbers and tuples of them (a deep copy of which
    is the value itself), under names the class does not intercept, and which has no data
    field yet, is *plain* (a test window before the model). For it:

    - ``set_metainfo`` / :meth:`from_metainfo` store the values as they are;
    - ``to`` / ``cpu`` copy the metainfo: there is no tensor to move;
    - ``to_dict`` reads the attributes directly.

    Every other case (a list or an array in the metainfo, a data field, a property such as
    ``proposals``) goes through ``ActionDataSample``'s own code, unchanged. Plainness is
    recorded in the instance (not as a field); any ``set_field`` (so any new data field or
    mmengine-set metainfo) clears it.
    """

    @classmethod
    def from_metainfo(cls, metainfo: dict) -> 'PoseWindowDataSample':
        """``cls(metainfo=metainfo)``, without the per-field bookkeeping when it is plain.

        Args:
            metainfo (dict): Metainfo name -> value.

        Returns:
            PoseWindowDataSample: The sample, without data fields.
        """
        if cls.__init__ is not BaseDataElement.__init__ or not cls._plain(metainfo):
            return cls(metainfo=metainfo)
        sample = cls.__new__(cls)
        # what BaseDataElement.__init__ and set_field leave behind: plain attributes
        sample.__dict__.update(metainfo, _metainfo_fields=set(metainfo), _data_fields=set())
        sample.__dict__[_PLAIN_MARK] = True
        return sample

    @classmethod
    def _plain(cls, metainfo: dict) -> bool:
        """Whether ``metainfo`` can be stored as it is, in plain attributes."""
        return (_PRIVATE.isdisjoint(metainfo) and _data_descriptors(cls).isdisjoint(metainfo)
                and _all_immutable(metainfo.values()))

    def set_metainfo(self, metainfo: dict) -> None:
        """Set metainfo fields; deep copies only where the value is mutable.

        Args:
            metainfo (dict): Metainfo name -> value.
        """
        if not isinstance(metainfo, dict):
            raise TypeError(f'metainfo should be a dict, got {type(metainfo).__name__}')
        if not self._plain(metainfo) or not self._data_fields.isdisjoint(metainfo):
            super().set_metainfo(metainfo)  # set_field clears the plain mark
            return
        state = self.__dict__
        plain = _PLAIN_MARK in state or not (self._metainfo_fields or self._data_fields)
        # what set_field does per key (``object.__setattr__`` of a plain attribute), at once
        state.update(metainfo)
        self._metainfo_fields.update(metainfo)
        if plain:
            state[_PLAIN_MARK] = True

    def set_field(self, value: Any, name: str, dtype: Any = None,
                  field_type: str = 'data') -> None:
        """mmengine's ``set_field``; the sample is no longer known to be plain."""
        self.__dict__.pop(_PLAIN_MARK, None)
        super().set_field(value, name, dtype=dtype, field_type=field_type)

    def _plain_copy(self) -> 'PoseWindowDataSample':
        """``self.new()`` of a plain sample: the same metainfo values, new field sets."""
        copy = self.__class__.__new__(self.__class__)
        copy.__dict__.update(self.__dict__, _metainfo_fields=set(self._metainfo_fields),
                             _data_fields=set())
        return copy

    def to(self, *args: Any, **kwargs: Any) -> 'ActionDataSample':
        """mmengine's ``to``; a plain sample has no tensor to move, only metainfo to copy."""
        if _PLAIN_MARK in self.__dict__:
            return self._plain_copy()
        return super().to(*args, **kwargs)

    def cpu(self) -> 'ActionDataSample':
        """mmengine's ``cpu``; a plain sample has no tensor to move, only metainfo to copy."""
        if _PLAIN_MARK in self.__dict__:
            return self._plain_copy()
        return super().cpu()

    def to_dict(self) -> dict:
        """mmengine's ``to_dict``: metainfo and data fields, nested elements as dicts."""
        if not (_data_descriptors(type(self)).isdisjoint(self._metainfo_fields)
                and _data_descriptors(type(self)).isdisjoint(self._data_fields)):
            return super().to_dict()  # a property's value is not its attribute's
        state = self.__dict__
        result = {}
        for fields in (self._metainfo_fields, self._data_fields):
            for name in fields:
                value = state[name]
                result[name] = value.to_dict() if isinstance(value, BaseDataElement) else value
        return result


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
    # PoseWindowDataset.__getitems__ hands over its windows stacked already (items: views).
    windows = getattr(data_batch, 'stacked_keypoints', None) if pose_key == 'keypoint' else None
    if windows is None:
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
        samples.append(PoseWindowDataSample.from_metainfo({k: item[k] for k in keys if k in item}))
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
