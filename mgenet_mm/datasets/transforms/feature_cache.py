"""On-disk cache of the frozen feature stages, and the transform that reads it.

MGENet's cube embedding F_B (Video Swin stages 1-2) and scene encoder F_S are frozen, yet on the
fly they run again, after decoding and cropping the window's frames, for every window of every
epoch. ``tools/data/extract_features.py`` runs them once over a split and stores their outputs
here; :class:`LoadCachedFeatures` then puts them into the results dict in place of the decoded
tubes and scene images, so that an epoch costs only the trainable parts and a memory-mapped
read (``tools/analysis/benchmark_data.py`` measures both ways).

Cache layout (one folder per split)::

    manifest.json        what was extracted, how, and the sha256 of every finished file
    index.npz            the windows, in dataset order: clip_names (M,) str, clip (N,) int32,
                         person_id (N,) int64, start_frame (N,) int64
    scene.npy            (M, C_s) float16 scene features, row m = clip_names[m]   [if any]
    tokens-00000.npy     (S, C, t, h, w) float16 cube tokens of windows 0 .. S-1
    tokens-00001.npy     windows S .. 2S-1, and so on (the last shard may be shorter)

Window ``i`` of the index lives in shard ``i // shard_size``, row ``i % shard_size``: the index
maps (clip_name, person_id, start_frame) to ``i`` and nothing else needs storing. Shards are plain
``.npy`` files opened with ``np.load(mmap_mode='r')``; only the rows a worker reads are paged in.

Crash safety. A shard is written under a temporary name (``.tokens-00000.npy.tmp``), flushed,
hashed and renamed only when every row is in; its sha256 enters the manifest after the rename,
and the manifest itself is replaced atomically. A killed extraction therefore leaves finished
shards (kept and skipped on restart), at most one temporary file (deleted on restart) and never
a half-written file under a shard's name. A finished file that later changes on disk fails its
sha256 when first opened, naming the shard. One writer at a time per folder: it holds a kernel
lock (``flock`` on ``.lock``), which a killed process releases.

Checksums. Two different things are checked, because only one of them can be known without
loading weights:

* ``config_checksum`` (:func:`cache_checksum`): sha256 of the extractor's configuration, namely
  the ``cube_embed`` and ``scene_encoder`` configs (checkpoint paths/URLs included), the data
  preprocessor entries of ``imgs`` and ``scene`` (normalisation), and every transform of the
  on-the-fly pipeline that can change the tubes or scene images (all of them except the ones in
  :data:`FEATURE_NEUTRAL_TRANSFORMS`). :class:`LoadCachedFeatures` computes it from the config and
  refuses a cache built with another one.
* ``weights_checksum`` (:func:`weights_checksum`): sha256 of the frozen modules' state dicts
  after ``init_weights()``. It catches a checkpoint *file* replaced under the same path, but
  needs the weights loaded, so only ``tools/data/extract_features.py`` checks it (on every run,
  and with ``--verify``); the transform does not.
"""
from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import os.path as osp
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmaction.registry import TRANSFORMS
from ...fileio import atomic_write_bytes

__all__ = [
    'CACHE_FORMAT', 'CACHE_VERSION', 'FEATURE_NEUTRAL_TRANSFORMS', 'FeatureCacheError',
    'WindowIndex', 'FeatureCacheWriter', 'FeatureCacheReader', 'LoadCachedFeatures',
    'cache_checksum', 'extractor_config', 'weights_checksum', 'file_sha256', 'shard_name',
    'transform_type'
]

CACHE_FORMAT = 'mgenet-feature-cache'
CACHE_VERSION = 1
MANIFEST = 'manifest.json'
INDEX = 'index.npz'
SCENE = 'scene.npy'
LOCK = '.lock'
TOKEN_DTYPE = np.float16
_SHARD_RE = re.compile(r'^tokens-(\d{5,})\.npy$')
_TMP_SUFFIX = '.tmp'

#: Transforms that cannot change the cached features (skeleton-only transforms, packing, the
#: cache reader itself); every other transform of the pipeline enters the config checksum. An
#: unknown skeleton-only transform therefore only makes the check stricter, never looser.
FEATURE_NEUTRAL_TRANSFORMS = frozenset({
    'NormalizePoseWindow', 'RandomFlipPoseWindow', 'PackActionInputs', 'PackMGENetInputs',
    'LoadCachedFeatures'
})

_REBUILD_HINT = ('rebuild it with `python tools/data/extract_features.py CONFIG --split SPLIT '
                 '--rebuild` (CONFIG: the config that reads this cache)')


class FeatureCacheError(RuntimeError):
    """A feature cache that is missing, incomplete, corrupt or built by another extractor."""


def _atomic_write(path: str, writer) -> None:
    """:func:`atomic_write_bytes` (the published file gets ordinary ``0666 & ~umask``
    permissions, like the shards numpy writes: a cache is usually shared)."""
    atomic_write_bytes(path, writer)


def shard_name(shard: int) -> str:
    """File name of token shard ``shard`` (``tokens-00012.npy``)."""
    return f'tokens-{shard:05d}.npy'


def file_sha256(path: str, chunk_size: int = 1 << 23) -> str:
    """sha256 (hex) of a file, read in chunks of ``chunk_size`` bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk_size), b''):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- checksums
def _plain(obj: Any) -> Any:
    """ConfigDicts, tuples and numpy scalars -> JSON-able plain Python, keys as strings."""
    if isinstance(obj, Mapping):
        return {str(key): _plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(value) for value in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    # a callable given instead of a config: its class name is all that identifies it
    return f'<{type(obj).__module__}.{type(obj).__qualname__}>'


def transform_type(transform: Any) -> str:
    """The registered type name of a transform given as a config or as an object."""
    if isinstance(transform, Mapping):
        kind = transform.get('type')
        return kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))
    return type(transform).__name__


def extractor_config(model_cfg: Mapping, pipeline_cfg: Sequence) -> dict:
    """The configuration that determines the cached features, as plain data.

    Args:
        model_cfg (Mapping): The recognizer's ``model`` config (its ``cube_embed``,
            ``scene_encoder`` and ``data_preprocessor`` are used; a missing preprocessor means
            the recognizer's default).
        pipeline_cfg (Sequence): The on-the-fly pipeline of the split (decoding, cropping,
            scene image, packing).

    Returns:
        dict: ``cube_embed``, ``scene_encoder``, ``preprocessor`` (the ``imgs`` and ``scene``
        entries) and ``pipeline`` (the transforms not in :data:`FEATURE_NEUTRAL_TRANSFORMS`).
    """
    from ...models.recognizers.mgenet import DEFAULT_PREPROCESSOR  # no import cycle at load
    if model_cfg.get('cube_embed') is None:
        raise ValueError('the model config has no cube_embed: there is nothing to cache')
    preprocessor = model_cfg.get('data_preprocessor') or DEFAULT_PREPROCESSOR
    if preprocessor.get('type') == 'MultiModalDataPreprocessor':
        entries = preprocessor.get('preprocessors', {})
        preprocessor = dict(type='MultiModalDataPreprocessor', imgs=entries.get('imgs'),
                            scene=entries.get('scene'))
    has_scene = model_cfg.get('scene_encoder') is not None
    if isinstance(preprocessor, dict) and not has_scene:
        preprocessor = {k: v for k, v in preprocessor.items() if k != 'scene'}
    pipeline = [t for t in pipeline_cfg if transform_type(t) not in FEATURE_NEUTRAL_TRANSFORMS]
    return _plain(dict(version=CACHE_VERSION, cube_embed=model_cfg['cube_embed'],
                       scene_encoder=model_cfg.get('scene_encoder'), preprocessor=preprocessor,
                       pipeline=pipeline))


def cache_checksum(model_cfg: Mapping, pipeline_cfg: Sequence) -> str:
    """sha256 of :func:`extractor_config`, the "config checksum" of a feature cache.

    Used by ``tools/data/extract_features.py`` when writing a cache and by
    :class:`LoadCachedFeatures` when reading one, so both sides agree by construction. It covers
    checkpoint *paths*, not their contents: see :func:`weights_checksum`.
    """
    text = json.dumps(extractor_config(model_cfg, pipeline_cfg), sort_keys=True,
                      separators=(',', ':'))
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def weights_checksum(modules: Mapping[str, Any]) -> str:
    """sha256 over the state dicts of the frozen modules (names, dtypes, shapes and values).

    Args:
        modules (Mapping[str, nn.Module | None]): e.g. ``dict(cube_embed=..., scene_encoder=...)``;
            None entries are skipped.

    Returns:
        str: Hex digest.
    """
    digest = hashlib.sha256()
    for prefix in sorted(modules):
        module = modules[prefix]
        if module is None:
            continue
        for name, tensor in sorted(module.state_dict().items()):
            tensor = tensor.detach().cpu().contiguous()
            if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: hash its bits
                tensor = tensor.view(torch.int16)
            array = tensor.numpy()
            digest.update(f'{prefix}.{name}|{array.dtype.str}|{array.shape}|'.encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- the index
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
        _atomic_write(path, lambda f: np.savez(
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


# ----------------------------------------------------------------------------- manifest
def _read_manifest(cache_dir: str) -> Optional[dict]:
    path = osp.join(cache_dir, MANIFEST)
    if not osp.isfile(path):
        return None
    try:
        with open(path, 'r') as f:
            manifest = json.load(f)
    except (OSError, ValueError) as error:
        raise FeatureCacheError(f'unreadable cache manifest {path}: {error}; '
                                f'{_REBUILD_HINT}') from error
    if manifest.get('format') != CACHE_FORMAT:
        raise FeatureCacheError(f'{path} is not a {CACHE_FORMAT} manifest')
    if manifest.get('version') != CACHE_VERSION:
        raise FeatureCacheError(f'{path} has cache format version {manifest.get("version")}, '
                                f'this code reads version {CACHE_VERSION}; {_REBUILD_HINT}')
    return manifest


def _write_manifest(cache_dir: str, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True)
    _atomic_write(osp.join(cache_dir, MANIFEST), lambda f: f.write(text.encode('utf-8')))


def _npy_header(path: str) -> Tuple[Tuple[int, ...], np.dtype, int]:
    """(shape, dtype, expected file size) from an .npy header."""
    with open(path, 'rb') as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                       np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if fortran:
        raise ValueError('Fortran-ordered array')
    return shape, dtype, offset + int(np.prod(shape)) * dtype.itemsize


def _check_file(path: str, record: Mapping, full: bool) -> Optional[str]:
    """Why ``path`` does not match its manifest ``record`` (None when it does)."""
    if not osp.isfile(path):
        return 'missing'
    if full:
        actual = file_sha256(path)
        if actual != record['sha256']:
            return f'sha256 {actual[:16]}... != manifest {record["sha256"][:16]}...'
        return None
    try:
        shape, dtype, size = _npy_header(path)
    except Exception as error:  # noqa: BLE001  any unreadable header is corruption
        return f'unreadable header ({error})'
    if list(shape) != list(record['shape']) or dtype != np.dtype(record['dtype']):
        return f'holds {dtype} {shape}, manifest says {record["dtype"]} {record["shape"]}'
    if osp.getsize(path) != size:
        return f'{osp.getsize(path)} bytes instead of {size}'
    return None


# ----------------------------------------------------------------------------- writing
class _ShardWriter:
    """Fills one shard under its temporary name; :meth:`commit` publishes it."""

    def __init__(self, writer: 'FeatureCacheWriter', shard: int, num_rows: int) -> None:
        self.writer = writer
        self.shard = shard
        self.num_rows = num_rows
        self.name = shard_name(shard)
        self.final_path = osp.join(writer.cache_dir, self.name)
        self.tmp_path = osp.join(writer.cache_dir, '.' + self.name + _TMP_SUFFIX)
        self._array: Optional[np.memmap] = None
        self._filled = np.zeros(num_rows, dtype=bool)

    def write(self, offset: int, tokens: Any) -> None:
        """Store rows ``offset .. offset + len(tokens) - 1`` of this shard.

        Args:
            offset (int): First row (0-based within the shard).
            tokens (np.ndarray | Tensor): (n, C, t, h, w) features; stored as float16.
        """
        if hasattr(tokens, 'detach'):
            tokens = tokens.detach().cpu().numpy()
        tokens = np.asarray(tokens)
        if tokens.ndim != 5:
            raise ValueError(f'expected tokens (n, C, t, h, w), got {tokens.shape}')
        if offset < 0 or offset + len(tokens) > self.num_rows:
            raise IndexError(f'rows {offset}..{offset + len(tokens) - 1} outside shard '
                             f'{self.name} of {self.num_rows} rows')
        half = tokens.astype(TOKEN_DTYPE)
        if not np.isfinite(half).all():
            raise FloatingPointError(f'non-finite features for shard {self.name} rows '
                                     f'{offset}..{offset + len(tokens) - 1} (float16 overflow '
                                     f'or NaN; max |x| = {np.abs(tokens).max()})')
        if self._array is None:
            self.writer._set_token_shape(half.shape[1:])
            self._array = np.lib.format.open_memmap(
                self.tmp_path, mode='w+', dtype=TOKEN_DTYPE,
                shape=(self.num_rows, ) + tuple(half.shape[1:]))
        self._array[offset:offset + len(half)] = half
        self._filled[offset:offset + len(half)] = True

    def commit(self) -> None:
        """Flush, hash, rename to the final name, then record it in the manifest."""
        if not self._filled.all():
            raise RuntimeError(f'shard {self.name}: {int((~self._filled).sum())} of '
                               f'{self.num_rows} rows were never written')
        self._array.flush()
        shape = list(self._array.shape)
        del self._array  # unmap before hashing and renaming
        self._array = None
        with open(self.tmp_path, 'rb+') as f:
            os.fsync(f.fileno())
        digest = file_sha256(self.tmp_path)
        os.replace(self.tmp_path, self.final_path)
        self.writer._record_shard(self.name, dict(
            first_window=self.shard * self.writer.shard_size, rows=self.num_rows, shape=shape,
            dtype=np.dtype(TOKEN_DTYPE).str, sha256=digest))

    def abort(self) -> None:
        self._array = None
        if osp.exists(self.tmp_path):
            os.remove(self.tmp_path)

    def __enter__(self) -> '_ShardWriter':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class FeatureCacheWriter:
    """Creates, resumes and completes a feature cache (see the module docstring for the layout).

    Typical use (what ``tools/data/extract_features.py`` does)::

        writer = FeatureCacheWriter(cache_dir, shard_size=1024)
        writer.open(index, identity, extractor, rebuild=False)
        for shard in writer.pending_shards():
            with writer.shard(shard) as out:
                out.write(0, tokens)                        # (n, C, t, h, w), any float dtype
        writer.write_scene(scene_feats)                     # (M, C_s), one row per clip
        writer.finish()

    Args:
        cache_dir (str): The cache folder (created if needed).
        shard_size (int): Windows per shard. Defaults to 1024.
    """

    def __init__(self, cache_dir: str, shard_size: int = 1024) -> None:
        if shard_size < 1:
            raise ValueError(f'shard_size must be positive, got {shard_size}')
        self.cache_dir = cache_dir
        self.shard_size = int(shard_size)
        self.manifest: Optional[dict] = None
        self.index: Optional[WindowIndex] = None
        self._lock_file = None

    # --------------------------------------------------------------- opening
    def open(self, index: WindowIndex, identity: Mapping[str, Any], extractor: Mapping,
             rebuild: bool = False) -> List[str]:
        """Start a cache, or resume the one in ``cache_dir``.

        Args:
            index (WindowIndex): The windows, in the order they will be written.
            identity (Mapping): ``config_checksum``, ``weights_checksum`` and ``seg_len``; the
                index hash, window and clip counts and the shard size are added here.
            extractor (Mapping): :func:`extractor_config`, stored for humans to read.
            rebuild (bool): Discard an existing cache that was built differently instead of
                refusing it. Defaults to False.

        Returns:
            list[str]: The differences with an existing cache that was discarded (empty when a
            cache was started or resumed).

        Raises:
            FeatureCacheError: An existing cache differs and ``rebuild`` is False.
        """
        os.makedirs(self.cache_dir, exist_ok=True)
        self._lock()
        self._remove_temporary_files()
        identity = dict(identity, index_sha256=index.content_sha256(),
                        num_windows=index.num_windows, num_clips=len(index.clip_names),
                        shard_size=self.shard_size)
        self.index = index
        manifest = _read_manifest(self.cache_dir)
        differences: List[str] = []
        if manifest is not None:
            differences = [
                f'{key}: cache {manifest["identity"].get(key)!r}, now {value!r}'
                for key, value in identity.items() if manifest['identity'].get(key) != value
            ]
            if differences and not rebuild:
                raise FeatureCacheError(
                    f'the feature cache {self.cache_dir} was built differently:\n  ' +
                    '\n  '.join(differences) + '\nrerun with --rebuild to discard it')
            if differences:
                self.clear()
                manifest = None
        if manifest is None:
            manifest = dict(format=CACHE_FORMAT, version=CACHE_VERSION, complete=False,
                            identity=identity, extractor=_plain(extractor), token_shape=None,
                            token_dtype=np.dtype(TOKEN_DTYPE).str, shards={}, scene=None)
            index.save(osp.join(self.cache_dir, INDEX))
            _write_manifest(self.cache_dir, manifest)
        self.manifest = manifest
        return differences

    def _lock(self) -> None:
        """One writer per cache folder: a second one would delete the first one's temporary
        files. The lock is the kernel's (``flock``), so a killed writer never leaves it held."""
        if self._lock_file is not None:
            return
        handle = open(osp.join(self.cache_dir, LOCK), 'a')
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise FeatureCacheError(f'another process is writing the feature cache '
                                    f'{self.cache_dir}; wait for it or stop it') from None
        self._lock_file = handle

    def close(self) -> None:
        """Release the folder's lock (also released when the process ends)."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _remove_temporary_files(self) -> None:
        """Leftovers of a killed run: never valid, always rewritten from scratch."""
        for name in os.listdir(self.cache_dir):
            if name.startswith('.') and name.endswith(_TMP_SUFFIX):
                os.remove(osp.join(self.cache_dir, name))

    def clear(self) -> None:
        """Delete every cache file of the folder (other files are left alone)."""
        for name in os.listdir(self.cache_dir):
            if name in (MANIFEST, INDEX, SCENE) or _SHARD_RE.match(name):
                os.remove(osp.join(self.cache_dir, name))
        self.manifest = None

    # --------------------------------------------------------------- shards
    @property
    def num_shards(self) -> int:
        return -(-self.index.num_windows // self.shard_size)

    def shard_windows(self, shard: int) -> range:
        """Positions (in the index) of the windows of ``shard``."""
        start = shard * self.shard_size
        return range(start, min(start + self.shard_size, self.index.num_windows))

    def check_files(self, full: bool = False) -> Dict[str, str]:
        """Files recorded in the manifest that do not match it.

        Args:
            full (bool): Compare sha256 digests (reads every byte); otherwise only the npy
                header and the file size. Defaults to False.

        Returns:
            dict[str, str]: File name -> problem.
        """
        return _check_recorded_files(self.cache_dir, self.manifest, full)

    def discard(self, names: Iterable[str]) -> None:
        """Forget (and delete) recorded files so that they are written again."""
        names = list(names)
        for name in names:
            path = osp.join(self.cache_dir, name)
            if osp.exists(path):
                os.remove(path)
            if name == SCENE:
                self.manifest['scene'] = None
            self.manifest['shards'].pop(name, None)
        if names:
            self.manifest['complete'] = False
            _write_manifest(self.cache_dir, self.manifest)

    def pending_shards(self) -> List[int]:
        """Shards not yet recorded in the manifest (a file without a record is rewritten)."""
        return [k for k in range(self.num_shards) if shard_name(k) not in self.manifest['shards']]

    def shard(self, shard: int) -> _ShardWriter:
        """A writer for ``shard``; use it as a context manager (commits on success)."""
        if not 0 <= shard < self.num_shards:
            raise IndexError(f'shard {shard} out of range (0..{self.num_shards - 1})')
        return _ShardWriter(self, shard, len(self.shard_windows(shard)))

    def _set_token_shape(self, shape: Sequence[int]) -> None:
        shape = [int(s) for s in shape]
        if self.manifest['token_shape'] is None:
            self.manifest['token_shape'] = shape
        elif self.manifest['token_shape'] != shape:
            raise ValueError(f'tokens of shape {shape} do not match the cache\'s '
                             f'{self.manifest["token_shape"]}')

    def _record_shard(self, name: str, record: dict) -> None:
        self.manifest['shards'][name] = record
        _write_manifest(self.cache_dir, self.manifest)

    # --------------------------------------------------------------- scene
    @property
    def scene_pending(self) -> bool:
        return self.manifest['scene'] is None

    def write_scene(self, scene_feats: Any) -> None:
        """Store the (M, C_s) scene features, one row per clip of the index, atomically."""
        if hasattr(scene_feats, 'detach'):
            scene_feats = scene_feats.detach().cpu().numpy()
        half = np.asarray(scene_feats).astype(TOKEN_DTYPE)
        if half.ndim != 2 or len(half) != len(self.index.clip_names):
            raise ValueError(f'expected scene features ({len(self.index.clip_names)}, C_s), '
                             f'got {half.shape}')
        if not np.isfinite(half).all():
            raise FloatingPointError('non-finite scene features (float16 overflow or NaN)')
        path = osp.join(self.cache_dir, SCENE)
        _atomic_write(path, lambda f: np.save(f, half))
        self.manifest['scene'] = dict(shape=list(half.shape), dtype=half.dtype.str,
                                      sha256=file_sha256(path))
        _write_manifest(self.cache_dir, self.manifest)

    def finish(self, with_scene: bool) -> None:
        """Mark the cache complete once every shard (and the scene file) is recorded."""
        missing = [shard_name(k) for k in self.pending_shards()]
        if with_scene and self.scene_pending:
            missing.append(SCENE)
        if missing:
            raise RuntimeError(f'cannot finish {self.cache_dir}: {missing} not written yet')
        self.manifest['complete'] = True
        self.manifest['with_scene'] = bool(with_scene)
        _write_manifest(self.cache_dir, self.manifest)
        self.close()


def _check_recorded_files(cache_dir: str, manifest: Mapping, full: bool) -> Dict[str, str]:
    problems = {}
    records = dict(manifest['shards'])
    if manifest.get('scene') is not None:
        records[SCENE] = manifest['scene']
    for name, record in sorted(records.items()):
        problem = _check_file(osp.join(cache_dir, name), record, full)
        if problem:
            problems[name] = problem
    return problems


# ----------------------------------------------------------------------------- reading
class FeatureCacheReader:
    """Read-only access to a complete feature cache; opens lazily, memory-maps shards.

    Nothing is opened at construction, so the object can be built in the main process and
    pickled to dataloader workers; each process opens the manifest, the index and the shards it
    touches on first use. Each shard is checked when it is first opened in a process: with
    ``verify='sha256'`` its full digest is compared with the manifest (reads the whole shard
    once per process), with ``verify='size'`` only its header and size.

    Args:
        cache_dir (str): The cache folder.
        expected_checksum (str, optional): Refuse a cache whose config checksum differs.
        verify (str): ``'sha256'`` or ``'size'``. Defaults to ``'sha256'``.
    """

    def __init__(self, cache_dir: str, expected_checksum: Optional[str] = None,
                 verify: str = 'sha256') -> None:
        if verify not in ('sha256', 'size'):
            raise ValueError(f"verify must be 'sha256' or 'size', got {verify!r}")
        self.cache_dir = cache_dir
        self.expected_checksum = expected_checksum
        self.verify = verify
        self._reset()

    def _reset(self) -> None:
        self._manifest: Optional[dict] = None
        self._index: Optional[WindowIndex] = None
        self._scene: Optional[np.ndarray] = None
        self._shards: Dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict:
        # memory maps must not travel to worker processes: each one maps the files itself
        state = self.__dict__.copy()
        state.update(_manifest=None, _index=None, _scene=None, _shards={})
        return state

    # --------------------------------------------------------------- opening
    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            self._open()
        return self._manifest

    @property
    def index(self) -> WindowIndex:
        if self._index is None:
            self._open()
        return self._index

    def _open(self) -> None:
        manifest = _read_manifest(self.cache_dir)
        if manifest is None:
            raise FeatureCacheError(f'no feature cache at {self.cache_dir} ({MANIFEST} not '
                                    'found); build it with tools/data/extract_features.py')
        if not manifest.get('complete'):
            raise FeatureCacheError(
                f'the feature cache {self.cache_dir} is incomplete ({len(manifest["shards"])} '
                'shards written): its extraction was interrupted; rerun '
                'tools/data/extract_features.py with the same config to finish it')
        cached = manifest['identity']['config_checksum']
        if self.expected_checksum is not None and cached != self.expected_checksum:
            raise FeatureCacheError(
                f'the feature cache {self.cache_dir} was built with another extractor config or '
                f'other weights: cache checksum {cached}, this config expects '
                f'{self.expected_checksum} (cube_embed / scene_encoder settings, checkpoint '
                f'paths, normalisation or crop/scene transforms differ); {_REBUILD_HINT}')
        index = WindowIndex.load(osp.join(self.cache_dir, INDEX))
        if index.content_sha256() != manifest['identity']['index_sha256']:
            raise FeatureCacheError(f'{osp.join(self.cache_dir, INDEX)} does not match its '
                                    f'manifest (corrupt or replaced); {_REBUILD_HINT}')
        index.compact()
        scene = None
        if manifest.get('scene') is not None:
            path = osp.join(self.cache_dir, SCENE)
            self._check(SCENE, manifest['scene'])
            scene = np.load(path, allow_pickle=False)  # (M, C_s), small: kept in memory
        self._manifest, self._index, self._scene = manifest, index, scene

    def _check(self, name: str, record: Mapping) -> None:
        problem = _check_file(osp.join(self.cache_dir, name), record, self.verify == 'sha256')
        if problem:
            raise FeatureCacheError(
                f'corrupt feature cache file {osp.join(self.cache_dir, name)}: {problem}; '
                'list all bad files with `python tools/data/extract_features.py CONFIG --split '
                'SPLIT --verify` and rewrite them by adding --rebuild')

    def _shard(self, shard: int) -> np.ndarray:
        array = self._shards.get(shard)
        if array is None:
            name = shard_name(shard)
            record = self.manifest['shards'].get(name)
            if record is None:
                raise FeatureCacheError(f'{self.cache_dir}: manifest has no record of {name}')
            self._check(name, record)
            array = np.load(osp.join(self.cache_dir, name), mmap_mode='r', allow_pickle=False)
            self._shards[shard] = array
        return array

    # --------------------------------------------------------------- access
    @property
    def with_scene(self) -> bool:
        return self.manifest.get('scene') is not None

    def window(self, clip_name: str, person_id: int, start_frame: int) -> int:
        """Position of a window in the cache.

        Raises:
            KeyError: The window is not cached, with its identity and the cache folder.
        """
        try:
            return self.index.lookup(clip_name, person_id, start_frame)
        except KeyError:
            raise KeyError(f'window (clip {clip_name!r}, person {person_id}, start frame '
                           f'{start_frame}) is not in the feature cache {self.cache_dir}; was '
                           'it built from the same pose files and window settings?') from None

    def tokens(self, window: int) -> np.ndarray:
        """(C, t, h, w) float16 view into the memory-mapped shard."""
        shard_size = self.manifest['identity']['shard_size']
        return self._shard(window // shard_size)[window % shard_size]

    def scene_feat(self, clip_name: str) -> np.ndarray:
        """(C_s,) float16 scene features of a clip."""
        if self._scene is None and not self.with_scene:
            raise FeatureCacheError(f'the feature cache {self.cache_dir} holds no scene features')
        return self._scene[self.index.clip_ids[str(clip_name)]]

    def check_all(self, full: bool = True) -> Dict[str, str]:
        """Every recorded file that does not match the manifest (name -> problem)."""
        return _check_recorded_files(self.cache_dir, self.manifest, full)


@TRANSFORMS.register_module()
class LoadCachedFeatures(BaseTransform):
    """Read a window's cube tokens and its clip's scene features from a feature cache.

    Replaces the decoding, tube cropping and scene image transforms of an on-the-fly pipeline
    (and spares the model its frozen ``cube_embed`` / ``scene_encoder``). The cache is written
    by ``tools/data/extract_features.py``; see :mod:`.feature_cache` for its layout.

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
