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
"""
from __future__ import annotations

import hashlib
import json
import os.path as osp
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ...preprocessing import DEFAULT_PREPROCESSOR
from .layout import CACHE_VERSION, SCENE

__all__ = [
    'FEATURE_NEUTRAL_TRANSFORMS', 'plain_data', 'transform_type', 'extractor_config',
    'cache_checksum', 'weights_checksum', 'file_sha256', 'npy_header', 'check_file',
    'check_recorded_files'
]

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
