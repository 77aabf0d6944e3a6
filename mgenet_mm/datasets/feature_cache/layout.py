"""The on-disk format of a feature cache: file names, format version, the manifest.

See :mod:`mgenet_mm.datasets.feature_cache` for the layout of a cache folder. Everything that
names a file of the folder or reads and writes the manifest is here, so that the writer and the
reader agree on the format by construction.
"""
from __future__ import annotations

import json
import os.path as osp
import re
from typing import Optional

import numpy as np

from ...fileio import atomic_write_bytes

__all__ = [
    'CACHE_FORMAT', 'CACHE_VERSION', 'MANIFEST', 'INDEX', 'SCENE', 'LOCK', 'TOKEN_DTYPE',
    'SHARD_RE', 'TMP_SUFFIX', 'REBUILD_HINT', 'FeatureCacheError', 'shard_name',
    'read_manifest', 'write_manifest'
]

CACHE_FORMAT = 'mgenet-feature-cache'
#: Version 2: the manifest fingerprints the inputs (pose files, frame sources) under ``inputs``;
#: a version-1 cache cannot say whether its poses changed since, so it is refused (rebuild it).
CACHE_VERSION = 2
MANIFEST = 'manifest.json'
INDEX = 'index.npz'
SCENE = 'scene.npy'
LOCK = '.lock'
TOKEN_DTYPE = np.float16
SHARD_RE = re.compile(r'^tokens-(\d{5,})\.npy$')
#: Suffix of the hidden temporaries (``.<name>...tmp``) of a folder: never valid, a resumed
#: writer deletes them all.
TMP_SUFFIX = '.tmp'

REBUILD_HINT = ('rebuild it with `python tools/data/extract_features.py CONFIG --split SPLIT '
                '--rebuild` (CONFIG: the config that reads this cache)')


class FeatureCacheError(RuntimeError):
    """A feature cache that is missing, incomplete, corrupt or built by another extractor."""


def shard_name(shard: int) -> str:
    """File name of token shard ``shard`` (``tokens-00012.npy``)."""
    return f'tokens-{shard:05d}.npy'


def read_manifest(cache_dir: str) -> Optional[dict]:
    """The manifest of ``cache_dir``, or None when there is none.

    Raises:
        FeatureCacheError: The manifest is unreadable, of another format or of another version.
    """
    path = osp.join(cache_dir, MANIFEST)
    if not osp.isfile(path):
        return None
    try:
        with open(path, 'r') as f:
            manifest = json.load(f)
    except (OSError, ValueError) as error:
        raise FeatureCacheError(f'unreadable cache manifest {path}: {error}; '
                                f'{REBUILD_HINT}') from error
    if manifest.get('format') != CACHE_FORMAT:
        raise FeatureCacheError(f'{path} is not a {CACHE_FORMAT} manifest')
    if manifest.get('version') != CACHE_VERSION:
        raise FeatureCacheError(f'{path} has cache format version {manifest.get("version")}, '
                                f'this code reads version {CACHE_VERSION}; {REBUILD_HINT}')
    return manifest


def write_manifest(cache_dir: str, manifest: dict) -> None:
    """Replace the manifest of ``cache_dir`` atomically (the published file gets ordinary
    ``0666 & ~umask`` permissions, like the shards numpy writes: a cache is usually shared)."""
    text = json.dumps(manifest, indent=1, sort_keys=True)
    atomic_write_bytes(osp.join(cache_dir, MANIFEST), lambda f: f.write(text.encode('utf-8')))
