"""A small feature cache of random features, shared by the cache's tests and the transform's."""
from pathlib import Path

import numpy as np

import mgenet_mm  # noqa: F401,I001  registers the transforms
from mmaction.registry import TRANSFORMS

from mgenet_mm.datasets.feature_cache import (FeatureCacheWriter, WindowIndex, cache_checksum,
                                              extractor_config)
from mgenet_mm.datasets.transforms import LoadCachedFeatures

TOKEN_SHAPE = (4, 2, 2, 2)
SCENE_DIM = 6
MODEL = dict(cube_embed=dict(type='SwinCubeEmbedding', arch='tiny',
                             init_cfg=dict(type='Pretrained', checkpoint='swin.pth',
                                           prefix='backbone.')),
             scene_encoder=dict(type='SceneEncoder', backbone=dict(type='ResNet', depth=18)))
PIPELINE = [dict(type='CropPersonTube', size=(64, 64)), dict(type='LoadSceneImage'),
            dict(type='NormalizePoseWindow'), dict(type='PackMGENetInputs')]


def windows():
    """Two clips, persons with negative and large ids, 7 windows in dataset order."""
    return [('01_001', 1, 0), ('01_001', 1, 6), ('01_001', 3, 12), ('01_002', -1, 0),
            ('01_002', 7, 4), ('01_002', 7, 1000), ('01_002', 7, 10)]


def build_cache(cache_dir: Path, shard_size: int = 3, seed: int = 0):
    """Write a complete cache of random features; returns (index, tokens, scene)."""
    rng = np.random.default_rng(seed)
    index = WindowIndex.from_windows(windows())
    tokens = rng.normal(size=(index.num_windows, ) + TOKEN_SHAPE).astype(np.float32)
    scene = rng.normal(size=(len(index.clip_names), SCENE_DIM)).astype(np.float32)
    writer = FeatureCacheWriter(str(cache_dir), shard_size=shard_size)
    writer.open(index, dict(config_checksum=cache_checksum(MODEL, PIPELINE),
                            weights_checksum='w0', seg_len=6), extractor_config(MODEL, PIPELINE))
    for shard in writer.pending_shards():
        rows = writer.shard_windows(shard)
        with writer.shard(shard) as out:
            # batches of two windows
            for offset in range(0, len(rows), 2):
                out.write(offset, tokens[rows.start + offset:min(rows.start + offset + 2,
                                                                  rows.stop)])
    writer.write_scene(scene)
    writer.finish(with_scene=True)
    return index, tokens, scene


def load_cached(cache_dir: Path, **kwargs) -> LoadCachedFeatures:
    """A ``LoadCachedFeatures`` built from its config, for the cache of :func:`build_cache`."""
    kwargs.setdefault('model_cfg', MODEL)
    kwargs.setdefault('pipeline_cfg', PIPELINE)
    return TRANSFORMS.build(dict(type='LoadCachedFeatures', cache_dir=str(cache_dir), **kwargs))


def window_item(clip, person, start):
    """The results dict of one window, as the dataset gives it to the transform."""
    return dict(clip_name=clip, person_id=person, start_frame=start)
