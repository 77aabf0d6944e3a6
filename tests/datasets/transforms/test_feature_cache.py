"""The feature cache format: writer/reader round trip, checksums, crash safety, corruption."""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import mgenet_mm  # noqa: F401,I001  registers the transforms
from mmaction.registry import TRANSFORMS

from mgenet_mm.datasets.transforms.feature_cache import (FeatureCacheError, FeatureCacheReader,
                                                         FeatureCacheWriter, LoadCachedFeatures,
                                                         WindowIndex, cache_checksum,
                                                         extractor_config, shard_name)

TOKEN_SHAPE = (4, 2, 2, 2)
SCENE_DIM = 6
MODEL = dict(cube_embed=dict(type='SwinCubeEmbedding', arch='tiny',
                             init_cfg=dict(type='Pretrained', checkpoint='swin.pth',
                                           prefix='backbone.')),
             scene_encoder=dict(type='SceneEncoder', backbone=dict(type='ResNet', depth=18)))
PIPELINE = [dict(type='CropPersonTube', size=(64, 64)), dict(type='LoadSceneImage'),
            dict(type='NormalizePoseWindow'), dict(type='PackMGENetInputs')]


def _windows():
    """Two clips, persons with negative and large ids, 7 windows in dataset order."""
    return [('01_001', 1, 0), ('01_001', 1, 6), ('01_001', 3, 12), ('01_002', -1, 0),
            ('01_002', 7, 4), ('01_002', 7, 1000), ('01_002', 7, 10)]


def _build(cache_dir: Path, shard_size: int = 3, seed: int = 0):
    """Write a complete cache of random features; returns (index, tokens, scene)."""
    rng = np.random.default_rng(seed)
    index = WindowIndex.from_windows(_windows())
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


def _load(cache_dir: Path, **kwargs) -> LoadCachedFeatures:
    kwargs.setdefault('model_cfg', MODEL)
    kwargs.setdefault('pipeline_cfg', PIPELINE)
    return TRANSFORMS.build(dict(type='LoadCachedFeatures', cache_dir=str(cache_dir), **kwargs))


def _item(clip, person, start):
    return dict(clip_name=clip, person_id=person, start_frame=start)


def test_round_trip(tmp_path: Path) -> None:
    index, tokens, scene = _build(tmp_path)
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

    transform = _load(tmp_path)
    clip_ids = {name: i for i, name in enumerate(index.clip_names)}
    for window, (clip, person, start) in enumerate(_windows()):
        results = transform(_item(clip, person, start))
        assert results['tokens'].dtype == np.float32 and results['tokens'].shape == TOKEN_SHAPE
        np.testing.assert_array_equal(results['tokens'],
                                      tokens[window].astype(np.float16).astype(np.float32))
        np.testing.assert_allclose(results['tokens'], tokens[window], rtol=1e-3, atol=1e-3)
        assert results['scene_feat'].shape == (SCENE_DIM, )
        np.testing.assert_allclose(results['scene_feat'], scene[clip_ids[clip]], rtol=1e-3,
                                   atol=1e-3)
    no_scene = _load(tmp_path, with_scene=False)(_item('01_001', 1, 0))
    assert 'scene_feat' not in no_scene


def test_missing_window_is_named(tmp_path: Path) -> None:
    _build(tmp_path)
    transform = _load(tmp_path)
    for missing in [('01_001', 1, 1), ('01_001', 2, 0), ('99_999', 1, 0), ('01_002', 7, 10**9)]:
        with pytest.raises(KeyError, match=rf"clip '{missing[0]}', person {missing[1]}, "
                           rf'start frame {missing[2]}'):
            transform(_item(*missing))


def test_refuses_other_extractor_config(tmp_path: Path) -> None:
    _build(tmp_path)
    built = cache_checksum(MODEL, PIPELINE)
    other_weights = json.loads(json.dumps(MODEL))
    other_weights['cube_embed']['init_cfg']['checkpoint'] = 'other_swin.pth'
    other_crop = [dict(PIPELINE[0], size=(96, 96))] + PIPELINE[1:]
    for model, pipeline in [(other_weights, PIPELINE), (MODEL, other_crop)]:
        expected = cache_checksum(model, pipeline)
        assert expected != built
        transform = _load(tmp_path, model_cfg=model, pipeline_cfg=pipeline)
        with pytest.raises(FeatureCacheError) as error:
            transform(_item('01_001', 1, 0))
        message = str(error.value)
        assert built in message and expected in message and '--rebuild' in message
    # An explicit digest is compared as is; None skips the check.
    with pytest.raises(FeatureCacheError, match='deadbeef'):
        _load(tmp_path, model_cfg=None, expected_checksum='deadbeef')(_item('01_001', 1, 0))
    _load(tmp_path, model_cfg=None, pipeline_cfg=None)(_item('01_001', 1, 0))


def test_checksum_ignores_skeleton_only_transforms() -> None:
    base = cache_checksum(MODEL, PIPELINE)
    pose_changed = PIPELINE[:2] + [dict(type='RandomFlipPoseWindow', prob=0.5),
                                   dict(type='NormalizePoseWindow', video_resolution=(1, 1)),
                                   dict(type='PackMGENetInputs', meta_keys=('x', ))]
    assert cache_checksum(MODEL, pose_changed) == base
    # tuples and lists are the same config; the normalisation of the tubes is not
    assert cache_checksum(dict(MODEL), [dict(PIPELINE[0], size=[64, 64])] + PIPELINE[1:]) == base
    normalised = dict(MODEL, data_preprocessor=dict(
        type='MultiModalDataPreprocessor',
        preprocessors=dict(imgs=dict(type='ActionDataPreprocessor', mean=[1, 2, 3],
                                     std=[1, 1, 1], format_shape='NCTHW'))))
    assert cache_checksum(normalised, PIPELINE) != base
    with pytest.raises(ValueError, match='needs model_cfg and pipeline_cfg'):
        LoadCachedFeatures('x', expected_checksum='auto', model_cfg=MODEL)


def test_corrupt_shard_is_named(tmp_path: Path) -> None:
    _build(tmp_path)
    path = tmp_path / shard_name(1)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte inside the last row
    path.write_bytes(bytes(data))
    transform = _load(tmp_path)
    transform(_item('01_001', 1, 0))  # shard 0 is fine
    with pytest.raises(FeatureCacheError, match=shard_name(1) + '.*sha256.*--verify'):
        transform(_item('01_002', -1, 0))  # window 3 -> shard 1
    # A size-only check cannot see a flipped byte, but sees a truncated file.
    _load(tmp_path, verify='size')(_item('01_002', -1, 0))
    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(FeatureCacheError, match=shard_name(1) + '.*bytes instead of'):
        _load(tmp_path, verify='size')(_item('01_002', -1, 0))
    problems = FeatureCacheReader(str(tmp_path)).check_all(full=True)
    assert list(problems) == [shard_name(1)]


def test_interrupted_shard_is_never_read(tmp_path: Path) -> None:
    index = WindowIndex.from_windows(_windows())
    identity = dict(config_checksum='c', weights_checksum='w', seg_len=6)
    writer = FeatureCacheWriter(str(tmp_path), shard_size=3)
    writer.open(index, identity, {})
    tokens = np.ones((3, ) + TOKEN_SHAPE, np.float32)
    with writer.shard(0) as out:
        out.write(0, tokens)
    with pytest.raises(RuntimeError, match='killed'):
        with writer.shard(1) as out:
            out.write(0, tokens[:2])
            raise RuntimeError('killed')  # an exception mid-shard
    assert not (tmp_path / shard_name(1)).exists()
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]
    # a hard kill leaves the temporary file behind, and maybe an unrecorded final-named file
    (tmp_path / ('.' + shard_name(1) + '.tmp')).write_bytes(b'half')
    (tmp_path / shard_name(2)).write_bytes(b'renamed but never recorded')
    with pytest.raises(FeatureCacheError, match='incomplete'):
        FeatureCacheReader(str(tmp_path)).manifest

    with pytest.raises(FeatureCacheError, match='another process is writing'):
        FeatureCacheWriter(str(tmp_path), shard_size=3).open(index, identity, {})
    writer.close()  # the killed process's lock is gone

    mtime = os.stat(tmp_path / shard_name(0)).st_mtime_ns
    resumed = FeatureCacheWriter(str(tmp_path), shard_size=3)
    resumed.open(index, identity, {})
    assert not (tmp_path / ('.' + shard_name(1) + '.tmp')).exists()
    assert resumed.pending_shards() == [1, 2]  # the finished shard is kept
    for shard in resumed.pending_shards():
        with resumed.shard(shard) as out:
            out.write(0, 2 * np.ones((len(resumed.shard_windows(shard)), ) + TOKEN_SHAPE))
    with pytest.raises(RuntimeError, match='scene.npy'):
        resumed.finish(with_scene=True)
    resumed.finish(with_scene=False)
    assert os.stat(tmp_path / shard_name(0)).st_mtime_ns == mtime
    reader = FeatureCacheReader(str(tmp_path))
    assert reader.tokens(0)[0, 0, 0, 0] == 1 and reader.tokens(6)[0, 0, 0, 0] == 2
    assert not reader.with_scene

    # a partly written shard cannot be committed
    with pytest.raises(RuntimeError, match='never written'):
        with resumed.shard(0) as out:
            out.write(0, tokens[:1])
    assert os.stat(tmp_path / shard_name(0)).st_mtime_ns == mtime


def test_resume_refuses_a_different_cache(tmp_path: Path) -> None:
    index = WindowIndex.from_windows(_windows())
    writer = FeatureCacheWriter(str(tmp_path), shard_size=3)
    writer.open(index, dict(config_checksum='c', weights_checksum='w', seg_len=6), {})
    with writer.shard(0) as out:
        out.write(0, np.zeros((3, ) + TOKEN_SHAPE))
    writer.close()
    again = FeatureCacheWriter(str(tmp_path), shard_size=3)
    with pytest.raises(FeatureCacheError,
                       match="(?s)weights_checksum: cache 'w', now 'v'.*--rebuild"):
        again.open(index, dict(config_checksum='c', weights_checksum='v', seg_len=6), {})
    fewer = WindowIndex.from_windows(_windows()[:-1])
    with pytest.raises(FeatureCacheError, match='num_windows'):
        again.open(fewer, dict(config_checksum='c', weights_checksum='w', seg_len=6), {})
    discarded = again.open(index, dict(config_checksum='c', weights_checksum='v', seg_len=6), {},
                           rebuild=True)
    assert discarded and again.pending_shards() == [0, 1, 2]
    assert not (tmp_path / shard_name(0)).exists()


def test_transform_pickles_without_its_maps(tmp_path: Path) -> None:
    _build(tmp_path)
    transform = _load(tmp_path)
    first = transform(_item('01_002', 7, 1000))['tokens']
    blob = pickle.dumps(transform)  # what a spawned dataloader worker receives
    assert len(blob) < 20_000
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone(_item('01_002', 7, 1000))['tokens'], first)


def test_index_is_small_ints_per_window() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    windows = [(f'clip_{c:03d}', int(p), int(s))
               for c, p, s in zip(rng.integers(0, 100, n), rng.integers(0, 50, n),
                                  rng.permutation(10 * n)[:n])]
    index = WindowIndex.from_windows(windows)
    assert index.nbytes / n <= 4 + 8 + 8 + 8 + 4  # columns + lookup, independent of T
    for i in (0, 17, n - 1):
        assert index.lookup(*windows[i]) == i
    index.compact()
    assert index.nbytes / n <= 12
    assert index.lookup(*windows[123]) == 123
    with pytest.raises(ValueError, match='duplicated windows'):
        WindowIndex.from_windows([('a', 1, 0), ('b', 1, 0), ('a', 1, 0)])
