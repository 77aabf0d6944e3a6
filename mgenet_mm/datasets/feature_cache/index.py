"""The window index of a feature cache: which window each token row belongs to.

Window ``i`` of the index (dataset order) lives in shard ``i // shard_size``, row
``i % shard_size``; the index maps (clip_name, person_id, start_frame) to ``i`` and nothing else
needs storing. It is saved as ``index.npz`` (no pickles) and identified in the manifest by
:meth:`WindowIndex.content_sha256`.
"""
from __future__ import annotations

import hashlib
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ...fileio import atomic_write_bytes
from .layout import FeatureCacheError

__all__ = ['WindowIndex']


class WindowIndex:
    """The windows of a cache, in dataset order, and their lookup by identity.

    Storage is a few small integers per window, never per frame: ``clip`` (int32),
    ``person_id`` and ``start_frame`` (int64) on disk. For lookups the three are packed into one
    sorted int64 key per window (bit widths sized to the data), searched with
    ``np.searchsorted``: 8 bytes of key plus 4 of position per window in memory once
    :meth:`compact` has dropped the columns.

    Args:
        clip_names (Sequence[str]): The M clip names.
        clip (np.ndarray): (N,) index into ``clip_names`` of each window.
        person_id (np.ndarray): (N,) person ids.
        start_frame (np.ndarray): (N,) first frame numbers.
    """

    def __init__(self, clip_names: Sequence[str], clip: np.ndarray, person_id: np.ndarray,
                 start_frame: np.ndarray) -> None:
        self.clip_names: List[str] = [str(name) for name in clip_names]
        self.clip_ids: Dict[str, int] = {name: i for i, name in enumerate(self.clip_names)}
        if len(self.clip_ids) != len(self.clip_names):
            raise ValueError('duplicated clip names in the window index')
        self.clip = np.ascontiguousarray(clip, dtype=np.int32)
        self.person_id = np.ascontiguousarray(person_id, dtype=np.int64)
        self.start_frame = np.ascontiguousarray(start_frame, dtype=np.int64)
        self.num_windows = len(self.clip)
        if not len(self.person_id) == len(self.start_frame) == self.num_windows:
            raise ValueError('clip, person_id and start_frame must have the same length')
        self._keys: Optional[np.ndarray] = None
        self._order: Optional[np.ndarray] = None
        self._packing: Optional[Tuple[int, int, int, int]] = None

    @classmethod
    def from_windows(cls, windows: Iterable[Tuple[str, int, int]]) -> 'WindowIndex':
        """Build from (clip_name, person_id, start_frame) triples in dataset order."""
        clip_ids: Dict[str, int] = {}
        clip, person, start = [], [], []
        for name, person_id, start_frame in windows:
            clip.append(clip_ids.setdefault(str(name), len(clip_ids)))
            person.append(int(person_id))
            start.append(int(start_frame))
        index = cls(list(clip_ids), np.array(clip, dtype=np.int32),
                    np.array(person, dtype=np.int64), np.array(start, dtype=np.int64))
        index.build_lookup()  # refuses duplicated windows early
        return index

    @classmethod
    def from_dataset(cls, dataset: Any) -> 'WindowIndex':
        """Build from a dataset whose data infos have clip_name, person_id and start_frame."""
        return cls.from_windows(
            (info['clip_name'], info['person_id'], info['start_frame'])
            for info in (dataset.get_data_info(i) for i in range(len(dataset))))

    # --------------------------------------------------------------- persistence
    def content_sha256(self) -> str:
        """sha256 of the index contents (stable across saves, unlike the npz bytes)."""
        digest = hashlib.sha256()
        digest.update('\n'.join(self.clip_names).encode('utf-8'))
        for array in (self.clip, self.person_id, self.start_frame):
            digest.update(b'|' + array.astype(array.dtype.newbyteorder('<')).tobytes())
        return digest.hexdigest()

    def save(self, path: str) -> None:
        """Write ``index.npz`` atomically."""
        atomic_write_bytes(path, lambda f: np.savez(
            f, clip_names=np.array(self.clip_names, dtype=np.str_), clip=self.clip,
            person_id=self.person_id, start_frame=self.start_frame))

    @classmethod
    def load(cls, path: str) -> 'WindowIndex':
        """Read ``index.npz`` (no pickles involved)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data['clip_names'].tolist(), data['clip'], data['person_id'],
                           data['start_frame'])
        except (OSError, ValueError, KeyError) as error:
            raise FeatureCacheError(f'cannot read the window index {path}: {error}') from error

    # --------------------------------------------------------------- lookup
    def build_lookup(self) -> None:
        """Pack (clip, person, start) into sorted int64 keys; refuse duplicated windows."""
        if self._keys is not None:
            return
        if self.num_windows == 0:
            self._keys = np.zeros(0, np.int64)
            self._order = np.zeros(0, np.int32)
            self._packing = (0, 0, 0, 0)
            return
        person_min, start_min = int(self.person_id.min()), int(self.start_frame.min())
        person_bits = int(self.person_id.max() - person_min).bit_length()
        start_bits = int(self.start_frame.max() - start_min).bit_length()
        clip_bits = max(len(self.clip_names) - 1, 0).bit_length()
        if clip_bits + person_bits + start_bits > 63:
            raise ValueError('window identities span too wide a range to pack into int64 keys '
                             f'({clip_bits} + {person_bits} + {start_bits} bits)')
        self._packing = (person_min, start_min, person_bits, start_bits)
        keys = self._pack(self.clip.astype(np.int64), self.person_id, self.start_frame)
        order = np.argsort(keys, kind='stable')
        self._keys = keys[order]
        self._order = order.astype(np.int32 if self.num_windows < 2**31 else np.int64)
        duplicated = np.flatnonzero(self._keys[1:] == self._keys[:-1])
        if len(duplicated):
            window = int(self._order[duplicated[0]])
            raise ValueError(f'{len(duplicated)} duplicated windows, e.g. '
                             f'{self.identity(window)}')

    def _pack(self, clip: np.ndarray, person: np.ndarray, start: np.ndarray) -> np.ndarray:
        person_min, start_min, person_bits, start_bits = self._packing
        return (clip << (person_bits + start_bits)) | ((person - person_min) << start_bits) \
            | (start - start_min)

    def compact(self) -> None:
        """Keep only what lookups need (drops the per-window columns)."""
        self.build_lookup()
        empty = np.zeros(0, np.int64)
        self.clip, self.person_id, self.start_frame = empty.astype(np.int32), empty, empty

    def identity(self, window: int) -> Tuple[str, int, int]:
        """(clip_name, person_id, start_frame) of window ``window`` (before :meth:`compact`)."""
        return (self.clip_names[int(self.clip[window])], int(self.person_id[window]),
                int(self.start_frame[window]))

    def lookup(self, clip_name: str, person_id: int, start_frame: int) -> int:
        """Position of a window in the index.

        Raises:
            KeyError: The window is not in the index.
        """
        self.build_lookup()
        clip = self.clip_ids.get(str(clip_name))
        person_min, start_min, person_bits, start_bits = self._packing
        person, start = int(person_id) - person_min, int(start_frame) - start_min
        if (clip is None or not 0 <= person < (1 << person_bits)
                or not 0 <= start < (1 << start_bits)):
            raise KeyError((clip_name, person_id, start_frame))
        key = (clip << (person_bits + start_bits)) | (person << start_bits) | start
        pos = int(np.searchsorted(self._keys, key))
        if pos == len(self._keys) or int(self._keys[pos]) != key:
            raise KeyError((clip_name, person_id, start_frame))
        return int(self._order[pos])

    def first_window_of_clips(self) -> np.ndarray:
        """(M,) position of each clip's first window (before :meth:`compact`)."""
        first = np.full(len(self.clip_names), -1, dtype=np.int64)
        clips, positions = np.unique(self.clip, return_index=True)  # first occurrences
        first[clips] = positions
        return first

    @property
    def nbytes(self) -> int:
        """Bytes held by the per-window arrays (columns and lookup)."""
        arrays = [self.clip, self.person_id, self.start_frame, self._keys, self._order]
        return int(sum(a.nbytes for a in arrays if a is not None))
