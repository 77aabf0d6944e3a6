"""Reading a feature cache: lazily opened, memory-mapped, every file checked on first use.

Shards are plain ``.npy`` files opened with ``np.load(mmap_mode='r')``: only the rows a worker
reads are paged in. A finished file that later changes on disk fails its check when a process
first opens it, naming the file.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, Mapping, Optional

import numpy as np

from .checksums import check_file, check_inputs, check_recorded_files
from .index import WindowIndex
from .layout import (INDEX, MANIFEST, REBUILD_HINT, SCENE, FeatureCacheError, read_manifest,
                     shard_name)

__all__ = ['FeatureCacheReader']


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
        manifest = read_manifest(self.cache_dir)
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
                f'paths, normalisation or crop/scene transforms differ); {REBUILD_HINT}')
        check_inputs(self.cache_dir, manifest)  # poses or frames changed since: stale
        index = WindowIndex.load(osp.join(self.cache_dir, INDEX))
        if index.content_sha256() != manifest['identity']['index_sha256']:
            raise FeatureCacheError(f'{osp.join(self.cache_dir, INDEX)} does not match its '
                                    f'manifest (corrupt or replaced); {REBUILD_HINT}')
        index.compact()
        scene = None
        if manifest.get('scene') is not None:
            path = osp.join(self.cache_dir, SCENE)
            self._check(SCENE, manifest['scene'])
            scene = np.load(path, allow_pickle=False)  # (M, C_s), small: kept in memory
        self._manifest, self._index, self._scene = manifest, index, scene

    def _check(self, name: str, record: Mapping) -> None:
        problem = check_file(osp.join(self.cache_dir, name), record, self.verify == 'sha256')
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
        return check_recorded_files(self.cache_dir, self.manifest, full)
