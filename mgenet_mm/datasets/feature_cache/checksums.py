"""Checksums of a feature cache: what it was built with, and whether its files are intact.

Two different things identify the extractor, because only one of them can be known without
loading weights:

* ``config_checksum`` (:func:`cache_checksum`): sha256 of the extractor's configuration, namely
  the ``cube_embed`` and ``scene_encoder`` configs (checkpoint paths/URLs included), the data
  preprocessor entries of ``imgs`` and ``scene`` (normalisation), and every transform of the
  on-the-fly pipeline that can change the tubes or scene images (all of them except the ones in
  :data:`FEATURE_NEUTRAL_TRANSFORMS`). ``LoadCachedFeatures`` computes it from the config and
  refuses a cache built with another one.
* ``weights_checksum`` (:func:`weights_checksum`): sha256 of the frozen modules' state dicts
  after ``init_weights()``. It catches a checkpoint *file* replaced under the same path, but
  needs the weights loaded, so only ``tools/data/extract_features.py`` checks it (on every run,
  and with ``--verify``); the transform does not.

The files of a cache are checked against their manifest records by :func:`check_file`: the full
sha256, or only the ``.npy`` header and the size (cheap, for very large caches).

The inputs the features were computed from are fingerprinted too (:func:`input_records`): the
pose files (the tube boxes are cut around their keypoints: size, mtime and sha256) and the frame
sources (a video's size and mtime; a frame folder's file names, sizes and mtimes). The manifest
keeps them under ``inputs``, the identity their digest ``inputs_sha256``
(:func:`inputs_checksum`); :func:`changed_inputs` says which of them changed since, so that a
cache built before the poses were re-extracted is refused naming the file
(:func:`check_inputs`), by the reader, by ``--verify`` and by a rerun of the extraction.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ...preprocessing import DEFAULT_PREPROCESSOR
from .layout import CACHE_VERSION, REBUILD_HINT, SCENE, FeatureCacheError

__all__ = [
    'FEATURE_NEUTRAL_TRANSFORMS', 'plain_data', 'transform_type', 'extractor_config',
    'cache_checksum', 'weights_checksum', 'file_sha256', 'npy_header', 'check_file',
    'check_recorded_files', 'pose_file_record', 'frame_source_record', 'input_records',
    'inputs_checksum', 'changed_inputs', 'check_inputs', 'stale_message'
]

#: Changed inputs named in full in an error message (the count is always given).
MAX_LISTED_INPUTS = 5

#: Transforms that cannot change the cached features (skeleton-only transforms, packing, the
#: cache reader itself); every other transform of the pipeline enters the config checksum. An
#: unknown skeleton-only transform therefore only makes the check stricter, never looser.
FEATURE_NEUTRAL_TRANSFORMS = frozenset({
    'NormalizePoseWindow', 'RandomFlipPoseWindow', 'PackActionInputs', 'PackMGENetInputs',
    'LoadCachedFeatures'
})


# ----------------------------------------------------------------------------- the extractor
def plain_data(obj: Any) -> Any:
    """ConfigDicts, tuples and numpy scalars -> JSON-able plain Python, keys as strings."""
    if isinstance(obj, Mapping):
        return {str(key): plain_data(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain_data(value) for value in obj]
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
            the recognizer's default, :data:`mgenet_mm.preprocessing.DEFAULT_PREPROCESSOR`).
        pipeline_cfg (Sequence): The on-the-fly pipeline of the split (decoding, cropping,
            scene image, packing).

    Returns:
        dict: ``cube_embed``, ``scene_encoder``, ``preprocessor`` (the ``imgs`` and ``scene``
        entries) and ``pipeline`` (the transforms not in :data:`FEATURE_NEUTRAL_TRANSFORMS`).
    """
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
    return plain_data(dict(version=CACHE_VERSION, cube_embed=model_cfg['cube_embed'],
                           scene_encoder=model_cfg.get('scene_encoder'),
                           preprocessor=preprocessor, pipeline=pipeline))


def cache_checksum(model_cfg: Mapping, pipeline_cfg: Sequence) -> str:
    """sha256 of :func:`extractor_config`, the "config checksum" of a feature cache.

    Used by ``tools/data/extract_features.py`` when writing a cache and by
    ``LoadCachedFeatures`` when reading one, so both sides agree by construction. It covers
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


# ----------------------------------------------------------------------------- the files
def file_sha256(path: str, chunk_size: int = 1 << 23) -> str:
    """sha256 (hex) of a file, read in chunks of ``chunk_size`` bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk_size), b''):
            digest.update(block)
    return digest.hexdigest()


def npy_header(path: str) -> Tuple[Tuple[int, ...], np.dtype, int]:
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


def check_file(path: str, record: Mapping, full: bool) -> Optional[str]:
    """Why ``path`` does not match its manifest ``record`` (None when it does).

    Args:
        path (str): The file.
        record (Mapping): Its manifest record (``sha256``, ``shape``, ``dtype``).
        full (bool): Compare the sha256 (reads every byte); otherwise only the npy header and
            the file size.
    """
    if not osp.isfile(path):
        return 'missing'
    if full:
        actual = file_sha256(path)
        if actual != record['sha256']:
            return f'sha256 {actual[:16]}... != manifest {record["sha256"][:16]}...'
        return None
    try:
        shape, dtype, size = npy_header(path)
    except Exception as error:  # noqa: BLE001  any unreadable header is corruption
        return f'unreadable header ({error})'
    if list(shape) != list(record['shape']) or dtype != np.dtype(record['dtype']):
        return f'holds {dtype} {shape}, manifest says {record["dtype"]} {record["shape"]}'
    if osp.getsize(path) != size:
        return f'{osp.getsize(path)} bytes instead of {size}'
    return None


def check_recorded_files(cache_dir: str, manifest: Mapping, full: bool) -> Dict[str, str]:
    """Every file recorded in ``manifest`` (shards and scene) that does not match its record.

    Returns:
        dict[str, str]: File name -> problem, in name order.
    """
    problems = {}
    records = dict(manifest['shards'])
    if manifest.get('scene') is not None:
        records[SCENE] = manifest['scene']
    for name, record in sorted(records.items()):
        problem = check_file(osp.join(cache_dir, name), record, full)
        if problem:
            problems[name] = problem
    return problems



# ----------------------------------------------------------------------------- the inputs
def pose_file_record(path: str) -> dict:
    """Fingerprint of a pose file: ``size``, ``mtime_ns`` and the ``sha256`` of its bytes."""
    stat = os.stat(path)
    return dict(size=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=file_sha256(path))


def frame_source_record(path: str) -> dict:
    """Fingerprint of a frame source, read from the file system only (nothing is decoded).

    A video file: ``kind='file'``, ``size``, ``mtime_ns``. A frame folder: ``kind='folder'``,
    ``files`` (count), ``size`` (total bytes) and ``listing_sha256``, the sha256 of every file's
    name, size and mtime (a frame replaced, added or removed changes it).
    """
    if osp.isdir(path):
        entries = sorted((entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
                         for entry in os.scandir(path) if entry.is_file())
        listing = '\n'.join(f'{name}|{size}|{mtime}' for name, size, mtime in entries)
        return dict(kind='folder', files=len(entries), size=sum(e[1] for e in entries),
                    listing_sha256=hashlib.sha256(listing.encode('utf-8')).hexdigest())
    stat = os.stat(path)
    return dict(kind='file', size=stat.st_size, mtime_ns=stat.st_mtime_ns)


def input_records(pose_files: Sequence[str], frame_sources: Sequence[str]) -> dict:
    """Fingerprints of the inputs of a cache, keyed by absolute path.

    Args:
        pose_files (Sequence[str]): The split's pose files.
        frame_sources (Sequence[str]): The videos or frame folders its tubes are cut from.

    Returns:
        dict: ``poses`` (path -> :func:`pose_file_record`) and ``frames`` (path ->
        :func:`frame_source_record`).
    """
    return dict(poses={osp.abspath(p): pose_file_record(p) for p in sorted(set(pose_files))},
                frames={osp.abspath(p): frame_source_record(p)
                        for p in sorted(set(frame_sources))})


def inputs_checksum(records: Mapping) -> str:
    """sha256 of :func:`input_records` that ignores a pose file's mtime (only its content).

    A pose file rewritten with the same bytes keeps the checksum; a frame source is known by
    its size and mtime (hashing videos would cost as much as decoding them).
    """
    poses = {path: record['sha256'] for path, record in records['poses'].items()}
    text = json.dumps(dict(poses=poses, frames=records['frames']), sort_keys=True,
                      separators=(',', ':'))
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def _pose_change(path: str, record: Mapping) -> Optional[str]:
    if not osp.isfile(path):
        return 'missing'
    stat = os.stat(path)
    if stat.st_size == record['size'] and stat.st_mtime_ns == record['mtime_ns']:
        return None  # unchanged by its metadata: not worth reading
    digest = file_sha256(path)
    if digest == record['sha256']:
        return None  # rewritten with the same content
    return (f'content changed (sha256 {digest[:12]}..., cache built from {record["sha256"][:12]}'
            f'...; {stat.st_size} bytes, cache {record["size"]})')


def _frame_change(path: str, record: Mapping) -> Optional[str]:
    if not osp.exists(path):
        return 'missing'
    now = frame_source_record(path)
    if now == dict(record):
        return None
    if now['kind'] != record.get('kind'):
        return f'is now a {now["kind"]}, the cache was built from a {record.get("kind")}'
    if now['kind'] == 'folder':
        return (f'frames changed ({now["files"]} files of {now["size"]} bytes, cache built '
                f'from {record["files"]} files of {record["size"]} bytes)')
    return (f'changed ({now["size"]} bytes, mtime {now["mtime_ns"]}; cache built from '
            f'{record["size"]} bytes, mtime {record["mtime_ns"]})')


def changed_inputs(records: Mapping, pose_files: Optional[Sequence[str]] = None,
                   frame_sources: Optional[Sequence[str]] = None) -> Dict[str, str]:
    """The inputs that differ from their manifest ``records`` (path -> what changed).

    Pose files are compared by size and mtime first and hashed only when those differ; frame
    sources by their whole record. With the current ``pose_files`` / ``frame_sources`` (what
    the dataset reads now), inputs that the cache was not built from are reported too.

    Args:
        records (Mapping): The manifest's ``inputs`` (:func:`input_records`).
        pose_files (Sequence[str], optional): The pose files the dataset reads now.
        frame_sources (Sequence[str], optional): The frame sources it reads now.

    Returns:
        dict[str, str]: Absolute path -> reason, in path order; empty when all match.
    """
    changes: Dict[str, str] = {}
    for path, record in records.get('poses', {}).items():
        change = _pose_change(path, record)
        if change:
            changes[path] = f'pose file {change}'
    for path, record in records.get('frames', {}).items():
        change = _frame_change(path, record)
        if change:
            changes[path] = f'frame source {change}'
    for what, current, known in (('pose file', pose_files, records.get('poses', {})),
                                 ('frame source', frame_sources, records.get('frames', {}))):
        for path in map(osp.abspath, current or ()):
            if path not in known:
                changes[path] = f'{what} not in the cache (it was built from other inputs)'
    return dict(sorted(changes.items()))


def check_inputs(cache_dir: str, manifest: Mapping) -> None:
    """Refuse a cache whose inputs changed since it was built, naming the changed files.

    A manifest without ``inputs`` (written through the writer's API without them) is not
    checked.

    Raises:
        FeatureCacheError: Some pose file or frame source differs from its record.
    """
    records = manifest.get('inputs')
    if not records:
        return
    changes = changed_inputs(records)
    if changes:
        raise FeatureCacheError(stale_message(cache_dir, changes))


def stale_message(cache_dir: str, changes: Mapping[str, str]) -> str:
    """``'the feature cache DIR is stale: N of its inputs changed since it was built: ...'``."""
    listed = [f'{path}: {why}' for path, why in list(changes.items())[:MAX_LISTED_INPUTS]]
    more = len(changes) - len(listed)
    return (f'the feature cache {cache_dir} is stale: {len(changes)} of its inputs changed since '
            'it was built, so its features no longer match the poses and frames: ' +
            '; '.join(listed) + (f'; and {more} more' if more > 0 else '') + f'; {REBUILD_HINT}')
