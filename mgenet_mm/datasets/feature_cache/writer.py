"""Writing a feature cache: one locked writer per folder, shards published only when complete.

Crash safety. A shard is filled under a temporary name (``.tokens-00000.npy.tmp``), flushed,
hashed and renamed only when every row is in (:func:`mgenet_mm.fileio.publish_temporary`); its
sha256 enters the manifest after the rename, and the manifest, the index and the scene file are
replaced atomically (:func:`mgenet_mm.fileio.atomic_write_bytes`). A killed extraction therefore
leaves finished shards (kept and skipped on restart), at most one temporary file (deleted on
restart) and never a half-written file under a shard's name. One writer at a time per folder: it
holds a kernel lock (``flock`` on ``.lock``), which a killed process releases.
"""
from __future__ import annotations

import fcntl
import os
import os.path as osp
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from ...fileio import atomic_write_bytes, publish_temporary
from .checksums import check_recorded_files, file_sha256, plain_data
from .index import WindowIndex
from .layout import (CACHE_FORMAT, CACHE_VERSION, INDEX, LOCK, MANIFEST, SCENE, SHARD_RE,
                     TMP_SUFFIX, TOKEN_DTYPE, FeatureCacheError, read_manifest, shard_name,
                     write_manifest)

__all__ = ['FeatureCacheWriter']


class _ShardWriter:
    """Fills one shard under its temporary name; :meth:`commit` publishes it."""

    def __init__(self, writer: 'FeatureCacheWriter', shard: int, num_rows: int) -> None:
        self.writer = writer
        self.shard = shard
        self.num_rows = num_rows
        self.name = shard_name(shard)
        self.final_path = osp.join(writer.cache_dir, self.name)
        self.tmp_path = osp.join(writer.cache_dir, '.' + self.name + TMP_SUFFIX)
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
        digest = file_sha256(self.tmp_path)
        publish_temporary(self.tmp_path, self.final_path)
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
    """Creates, resumes and completes a feature cache.

    The folder's layout is described in :mod:`mgenet_mm.datasets.feature_cache`. Typical use
    (what ``tools/data/extract_features.py`` does)::

        writer = FeatureCacheWriter(cache_dir, shard_size=1024)
        writer.open(index, identity, extractor, rebuild=False)
        for shard in writer.pending_shards():
            with writer.shard(shard) as out:
                out.write(0, tokens)                        # (n, C, t, h, w), any float dtype
        writer.write_scene(scene_feats)                     # (M, C_s), one row per clip
        writer.finish(with_scene=True)

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
            extractor (Mapping): :func:`.checksums.extractor_config`, stored for humans to read.
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
        differences: List[str] = []
        try:
            manifest = read_manifest(self.cache_dir)
        except FeatureCacheError as error:  # unreadable, or of another format version
            if not rebuild:
                raise
            differences, manifest = [str(error)], None
            self.clear()
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
                            identity=identity, extractor=plain_data(extractor), token_shape=None,
                            token_dtype=np.dtype(TOKEN_DTYPE).str, shards={}, scene=None)
            index.save(osp.join(self.cache_dir, INDEX))
            write_manifest(self.cache_dir, manifest)
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
            if name.startswith('.') and name.endswith(TMP_SUFFIX):
                os.remove(osp.join(self.cache_dir, name))

    def clear(self) -> None:
        """Delete every cache file of the folder (other files are left alone)."""
        for name in os.listdir(self.cache_dir):
            if name in (MANIFEST, INDEX, SCENE) or SHARD_RE.match(name):
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
        return check_recorded_files(self.cache_dir, self.manifest, full)

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
            write_manifest(self.cache_dir, self.manifest)

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
        write_manifest(self.cache_dir, self.manifest)

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
        atomic_write_bytes(path, lambda f: np.save(f, half))
        self.manifest['scene'] = dict(shape=list(half.shape), dtype=half.dtype.str,
                                      sha256=file_sha256(path))
        write_manifest(self.cache_dir, self.manifest)

    def finish(self, with_scene: bool) -> None:
        """Mark the cache complete once every shard (and the scene file) is recorded."""
        missing = [shard_name(k) for k in self.pending_shards()]
        if with_scene and self.scene_pending:
            missing.append(SCENE)
        if missing:
            raise RuntimeError(f'cannot finish {self.cache_dir}: {missing} not written yet')
        self.manifest['complete'] = True
        self.manifest['with_scene'] = bool(with_scene)
        write_manifest(self.cache_dir, self.manifest)
        self.close()
