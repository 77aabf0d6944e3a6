"""Loading transforms: the frame indices of a window, and its features read from a feature cache
(``LoadCachedFeatures``: round trip, missing windows, foreign caches, pickling)."""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import mgenet_mm  # noqa: F401,I001  registers the transforms
from mgenet_mm.datasets.feature_cache import FeatureCacheError, cache_checksum, shard_name
from mgenet_mm.datasets.transforms import WindowFrameIndices
from tests.datasets.feature_cache.helpers import (MODEL, PIPELINE, SCENE_DIM, TOKEN_SHAPE,
                                                  build_cache, load_cached, window_item, windows)


def test_window_frame_indices() -> None:
    results = WindowFrameIndices()(dict(start_frame=7, seg_len=5, total_frames=20))
    assert results['frame_inds'].tolist() == [7, 8, 9, 10, 11]
    assert results['frame_inds'].dtype == np.int64
    assert (results['clip_len'], results['num_clips'], results['frame_interval']) == (5, 1, 1)
    assert WindowFrameIndices(clip_len=3)(dict(start_frame=0))['frame_inds'].tolist() == [0, 1, 2]
    with pytest.raises(IndexError, match=r'clip c, .*frames 17\.\.21 are outside'):
        WindowFrameIndices()(dict(start_frame=17, seg_len=5, total_frames=20, clip_name='c'))
    assert 'clip_len=3' in repr(WindowFrameIndices(clip_len=3))


def test_round_trip(tmp_path: Path) -> None:
    index, tokens, scene = build_cache(tmp_path)
    names = sorted(os.listdir(tmp_path))
    assert names == ['.lock', 'index.npz', 'manifest.json', 'scene.npy', shard_name(0),
                     shard_name(1), shard_name(2)]
    manifest = json.loads((tmp_path / 'manifest.json').read_text())
    assert manifest['complete'] and manifest['identity']['num_windows'] == 7
    assert manifest['shards'][shard_name(2)]['rows'] == 1  # 7 = 3 + 3 + 1
    # shards are plain .npy files: memory-mappable with numpy alone
    shard = np.load(tmp_path / shard_name(1), mmap_mode='r')
    assert isinstance(shard, np.memmap) and shard.dtype == np.float16
    assert shard.shape == (3, ) + TOKEN_SHAPE

    transform = load_cached(tmp_path)
    clip_ids = {name: i for i, name in enumerate(index.clip_names)}
    for window, (clip, person, start) in enumerate(windows()):
        results = transform(window_item(clip, person, start))
        assert results['tokens'].dtype == np.float32 and results['tokens'].shape == TOKEN_SHAPE
        np.testing.assert_array_equal(results['tokens'],
                                      tokens[window].astype(np.float16).astype(np.float32))
        np.testing.assert_allclose(results['tokens'], tokens[window], rtol=1e-3, atol=1e-3)
        assert results['scene_feat'].shape == (SCENE_DIM, )
        np.testing.assert_allclose(results['scene_feat'], scene[clip_ids[clip]], rtol=1e-3,
                                   atol=1e-3)
    no_scene = load_cached(tmp_path, with_scene=False)(window_item('01_001', 1, 0))
    assert 'scene_feat' not in no_scene


def test_missing_window_is_named(tmp_path: Path) -> None:
    build_cache(tmp_path)
    transform = load_cached(tmp_path)
    for missing in [('01_001', 1, 1), ('01_001', 2, 0), ('99_999', 1, 0), ('01_002', 7, 10**9)]:
        with pytest.raises(KeyError, match=rf"clip '{missing[0]}', person {missing[1]}, "
                           rf'start frame {missing[2]}'):
            transform(window_item(*missing))


def test_refuses_other_extractor_config(tmp_path: Path) -> None:
    build_cache(tmp_path)
    built = cache_checksum(MODEL, PIPELINE)
    other_weights = json.loads(json.dumps(MODEL))
    other_weights['cube_embed']['init_cfg']['checkpoint'] = 'other_swin.pth'
    other_crop = [dict(PIPELINE[0], size=(96, 96))] + PIPELINE[1:]
    for model, pipeline in [(other_weights, PIPELINE), (MODEL, other_crop)]:
        expected = cache_checksum(model, pipeline)
        assert expected != built
        transform = load_cached(tmp_path, model_cfg=model, pipeline_cfg=pipeline)
        with pytest.raises(FeatureCacheError) as error:
            transform(window_item('01_001', 1, 0))
        message = str(error.value)
        assert built in message and expected in message and '--rebuild' in message
    # An explicit digest is compared as is; None skips the check.
    with pytest.raises(FeatureCacheError, match='deadbeef'):
        load_cached(tmp_path, model_cfg=None,
                    expected_checksum='deadbeef')(window_item('01_001', 1, 0))
    load_cached(tmp_path, model_cfg=None, pipeline_cfg=None)(window_item('01_001', 1, 0))


def test_transform_pickles_without_its_maps(tmp_path: Path) -> None:
    build_cache(tmp_path)
    transform = load_cached(tmp_path)
    first = transform(window_item('01_002', 7, 1000))['tokens']
    blob = pickle.dumps(transform)  # what a spawned dataloader worker receives
    assert len(blob) < 20_000
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone(window_item('01_002', 7, 1000))['tokens'], first)
