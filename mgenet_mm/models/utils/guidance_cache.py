"""A cache of the frozen guidance flow's f_sk per training window.

MGENet's guidance flow (STG-NF) is frozen: for a given pose window, f_sk is the same in every
epoch, yet it cost 19-46 % of a cached MGENet training step on a GPU. :class:`GuidanceCache`
keeps f_sk of every training window it has seen, keyed by

- the window's identity in its data sample (``clip_name``, ``person_id``, ``start_frame``;
  ``None`` where the metainfo lacks them), and
- a digest of the window's pose bytes (BLAKE2b, 128 bits), so a flipped or otherwise changed
  pose is a different entry, computed when first seen (with flip augmentation on, each window
  has at most two entries).

A batch with any window not in the cache is computed whole, exactly as without the cache, and
its new windows are stored; a batch whose windows are all cached runs no flow at all. Cached
values are therefore the very numbers an uncached run computed for that window in its first
batch. The cache is emptied when the flow's weights change (a checkpoint loaded, a parameter
replaced or modified in place: tracked through each tensor's storage and version counter), and
bypassed while the flow is in training mode (dropout or batch statistics would make f_sk vary).

Memory: one (T, C_mo) float32 row per cached entry on the device of the flow, in one buffer
grown by doubling up to ``max_windows`` rows: for STG-NF's 24 x 36 features, 3,456 bytes a
window, about 0.9 GB at the default bound of 262,144 windows. Windows beyond the bound are
computed every time (a warning says so once).
"""
from __future__ import annotations

import hashlib
import logging
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor

__all__ = ['GuidanceCache', 'cached_guidance_features', 'window_identity', 'pose_digests']

#: Metainfo keys that identify a training window.
IDENTITY_KEYS = ('clip_name', 'person_id', 'start_frame')
#: Default bound on the cached windows (about 0.9 GB of STG-NF features).
DEFAULT_MAX_WINDOWS = 262_144


def window_identity(sample: object) -> Optional[Tuple[Hashable, ...]]:
    """(clip_name, person_id, start_frame) of a data sample, or None if one is missing.

    Args:
        sample: A data sample (``ActionDataSample`` or a dict).

    Returns:
        tuple | None: The identity, numbers as ints.
    """
    get = sample.get if hasattr(sample, 'get') else (lambda key, default=None: default)
    values = [get(key, None) for key in IDENTITY_KEYS]
    if any(value is None for value in values):
        return None
    clip, person, start = values
    try:
        return str(clip), int(person), int(start)
    except (TypeError, ValueError):
        return None


def pose_digests(pose: Tensor) -> List[bytes]:
    """A 128-bit BLAKE2b digest of each window's bytes (dtype and shape included).

    Args:
        pose (Tensor): (B, ...) pose windows, on any device.

    Returns:
        list[bytes]: B digests; equal exactly when the windows are bitwise equal (barring a
        128-bit collision).
    """
    host = np.ascontiguousarray(pose.detach().cpu().numpy())  # one transfer per batch
    header = f'{host.dtype.str}{host.shape[1:]}'.encode()
    return [hashlib.blake2b(header + row.tobytes(), digest_size=16).digest() for row in host]


class GuidanceCache:
    """f_sk of the training windows seen so far; see the module docstring.

    Args:
        max_windows (int): The most entries kept. Default 262,144.
    """

    def __init__(self, max_windows: int = DEFAULT_MAX_WINDOWS) -> None:
        if not isinstance(max_windows, int) or isinstance(max_windows, bool) or max_windows < 1:
            raise ValueError(f'train_cfg.guidance_cache_windows must be a positive int, got '
                             f'{max_windows!r}')
        self.max_windows = max_windows
        self.hits = 0  #: Windows read from the cache.
        self.misses = 0  #: Windows computed by the flow (cached or not).
        self.flow_calls = 0  #: Batches the flow ran on.
        self._slots: Dict[Tuple[Hashable, ...], int] = {}
        self._store: Optional[Tensor] = None  # (capacity, *feature_shape)
        self._weights: Optional[tuple] = None
        self._warned_full = False

    def __len__(self) -> int:
        return len(self._slots)

    def clear(self) -> None:
        """Forget every entry (the counters are kept)."""
        self._slots = {}
        self._store = None

    @staticmethod
    def weights_state(module: torch.nn.Module) -> tuple:
        """(storage pointer, version) of every parameter and buffer: changes with the weights."""
        return tuple((t.data_ptr(), t._version, t.device)
                     for t in (*module.parameters(), *module.buffers()))

    def features(self, flow: torch.nn.Module, pose: Tensor, data_samples: Sequence[object],
                 compute: Callable[[Tensor], Tensor]) -> Tensor:
        """f_sk of a batch: from the cache when every window is in it, else ``compute(pose)``.

        Args:
            flow (nn.Module): The frozen flow (watched for changed weights and training mode).
            pose (Tensor): (B, T, V, C) pose windows.
            data_samples (Sequence): The B data samples (for the windows' identities).
            compute (callable): ``pose -> (B, ...) features``, the uncached computation.

        Returns:
            Tensor: (B, ...) features, equal to ``compute(pose)`` or to what it returned for
            these windows before.
        """
        if flow.training or len(data_samples) != pose.shape[0]:
            self.misses += pose.shape[0]
            self.flow_calls += 1
            return compute(pose)
        weights = self.weights_state(flow)
        if weights != self._weights:
            self.clear()
            self._weights = weights
        keys = [(window_identity(sample), digest)
                for sample, digest in zip(data_samples, pose_digests(pose))]
        slots = [self._slots.get(key) for key in keys]
        if self._store is not None and all(slot is not None for slot in slots) and \
                self._store.device == pose.device:
            self.hits += len(keys)
            index = torch.tensor(slots, dtype=torch.long, device=pose.device)  # (B,)
            return self._store.index_select(0, index)
        features = compute(pose)
        self.misses += len(keys)
        self.flow_calls += 1
        self._remember(keys, slots, features)
        return features

    def _remember(self, keys: List[tuple], slots: List[Optional[int]], features: Tensor) -> None:
        if self._store is not None and (self._store.device != features.device or
                                        self._store.shape[1:] != features.shape[1:] or
                                        self._store.dtype != features.dtype):
            self.clear()
            slots = [None] * len(keys)
        new_rows = []
        for row, (key, slot) in enumerate(zip(keys, slots)):
            if slot is None and key not in self._slots:
                if len(self._slots) >= self.max_windows:
                    self._warn_full()
                    break
                self._slots[key] = len(self._slots)
                new_rows.append(row)
        if not new_rows:
            return
        needed = len(self._slots)
        if self._store is None or self._store.shape[0] < needed:
            capacity = min(self.max_windows, max(needed, 2 * (0 if self._store is None
                                                              else self._store.shape[0])))
            grown = features.new_empty((capacity, *features.shape[1:]))  # (capacity, ...)
            if self._store is not None:
                grown[:self._store.shape[0]] = self._store
            self._store = grown
        first = needed - len(new_rows)
        rows = torch.tensor(new_rows, dtype=torch.long, device=features.device)
        self._store[first:needed] = features.detach().index_select(0, rows)

    def _warn_full(self) -> None:
        if not self._warned_full:
            self._warned_full = True
            print_log(f'GuidanceCache: {self.max_windows} windows cached (the bound, '
                      'train_cfg.guidance_cache_windows); further windows are computed by the '
                      'flow at every step', logger='current', level=logging.WARNING)


def cached_guidance_features(model: torch.nn.Module, pose: Tensor,
                             data_samples: Sequence[object]) -> Tensor:
    """f_sk of a training batch through the model's :class:`GuidanceCache`.

    The cache is made on first use from the model's ``train_cfg``: ``cache_guidance`` (default
    True) and ``guidance_cache_windows`` (default 262,144); with ``cache_guidance=False`` this
    is ``model.guidance_features(pose)``.

    Args:
        model (nn.Module): An :class:`~mgenet_mm.models.MGENetRecognizer` (``guidance``,
            ``guidance_features`` and ``train_cfg``).
        pose (Tensor): (B, T, V, C) pose windows.
        data_samples (Sequence): The batch's data samples.

    Returns:
        Tensor: (B, T, C_mo) f_sk.
    """
    cache = model.__dict__.get('_guidance_cache', False)
    if cache is False:  # not made yet: read the settings once
        train_cfg = dict(getattr(model, 'train_cfg', None) or {})
        enabled = train_cfg.get('cache_guidance', True)
        if not isinstance(enabled, bool):
            raise ValueError(f'train_cfg.cache_guidance must be True or False, got {enabled!r}')
        cache = (GuidanceCache(train_cfg.get('guidance_cache_windows', DEFAULT_MAX_WINDOWS))
                 if enabled else None)
        # A plain attribute, not a submodule or buffer: nothing of it reaches a checkpoint.
        model.__dict__['_guidance_cache'] = cache
    if cache is None:
        return model.guidance_features(pose)
    return cache.features(model.guidance, pose, data_samples, model.guidance_features)
