"""tools/data/extract_features.py on a tiny generated sample: round trip, parity, resume, repair."""
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401,I001
from mmaction.registry import DATASETS, MODELS

from mgenet_mm.datasets.feature_cache import FeatureCacheError, shard_name
from tests.conftest import load_tool

SEG_LEN = 8
TUBE = 32  # person tubes of 32x32 pixels -> 4x4 cube tokens


def _tool():
    return load_tool('tools/data/extract_features.py')


TOOL = _tool()


def _write_sample(root: Path) -> None:
    """Two 40-frame clips with two moving coloured people each, and their tracked poses."""
    rng = np.random.default_rng(0)
    (root / 'videos').mkdir(parents=True)
    (root / 'pose').mkdir()
    for clip in ('01_001', '01_002'):
        writer = cv2.VideoWriter(str(root / 'videos' / f'{clip}.avi'),
                                 cv2.VideoWriter_fourcc(*'MJPG'), 10, (96, 64))
        background = rng.integers(0, 255, size=(64, 96, 3), dtype=np.uint8)
        persons = {}
        for frame in range(40):
            image = background.copy()
            for person, colour in ((1, (255, 0, 0)), (2, (0, 200, 255))):
                x = 10 + person * 30 + frame // 2
                y = 15 + (frame % 5)
                cv2.rectangle(image, (x, y), (x + 10, y + 30), colour, -1)
                keypoints = np.stack([x + rng.uniform(0, 10, 17), y + rng.uniform(0, 30, 17),
                                      np.full(17, 0.9)], axis=1)
                persons.setdefault(str(person), {})[f'{frame:03d}'] = dict(
                    keypoints=keypoints.round(2).ravel().tolist(), scores=0.9)
            writer.write(image)
        writer.release()
        (root / 'pose' / f'{clip}_alphapose_tracked_person.json').write_text(json.dumps(persons))


def _config(root: Path, swin_checkpoint: Path, crop_size: int = TUBE) -> str:
    """A cached config (LoadCachedFeatures names the cache and the on-the-fly pipeline)."""
    text = f"""
default_scope = 'mmaction'
custom_imports = dict(imports=['mgenet_mm'], allow_failed_imports=False)
model = dict(
    cube_embed=dict(type='SwinCubeEmbedding', window_size=(2, 4, 4), drop_path_rate=0.,
                    arch=dict(embed_dims=8, depths=[1, 1, 1], num_heads=[1, 1, 1]),
                    init_cfg=dict(type='Pretrained', checkpoint='{swin_checkpoint}')),
    scene_encoder=dict(type='SceneEncoder', backbone=dict(
        type='ResNet', depth=18, num_stages=1, strides=(1, ), dilations=(1, ), out_indices=(0, ))),
    data_preprocessor=dict(type='MultiModalDataPreprocessor', preprocessors=dict(
        pose=dict(type='ActionDataPreprocessor'),
        imgs=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                  std=[58.395, 57.12, 57.375], format_shape='NCTHW'),
        scene=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                   std=[58.395, 57.12, 57.375], format_shape='NCHW'),
        tokens=dict(type='ActionDataPreprocessor'),
        scene_feat=dict(type='ActionDataPreprocessor'))))
fly_pipeline = [dict(type='WindowFrameIndices'), dict(type='DecordInit'),
                dict(type='DecordDecode'), dict(type='PersonTubeCrop', size={crop_size}),
                dict(type='SceneImage', num_frames=5, size=48),
                dict(type='NormalizePoseWindow', video_resolution=(96, 64)),
                dict(type='PackMGENetInputs')]
dataset = dict(type='MGENetWindowDataset', data_root='{root}', pose_dir='pose',
               video_dir='videos', seg_len={SEG_LEN}, stride=8, test_mode=True)
train_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(dataset, pipeline=[
    dict(type='LoadCachedFeatures', cache_dir='{root}/cache/train', model_cfg=model,
         pipeline_cfg=fly_pipeline),
    dict(type='NormalizePoseWindow', video_resolution=(96, 64)),
    dict(type='PackMGENetInputs')]))
"""
    path = root / f'cached_{crop_size}.py'
    path.write_text(text)
    return str(path)


@pytest.fixture()
def sample(tmp_path: Path):
    init_default_scope('mmaction')
    _write_sample(tmp_path)
    torch.manual_seed(0)
    swin = MODELS.build(Config.fromfile(_config(tmp_path, 'unused')).model.cube_embed)
    swin.init_cfg = None
    checkpoint = tmp_path / 'swin.pth'
    torch.save(dict(state_dict=swin.state_dict()), checkpoint)
    return tmp_path, _config(tmp_path, checkpoint), checkpoint


def _extract(config: str, *extra: str) -> int:
    return TOOL.main([config, '--split', 'train', '--batch-size', '3', '--shard-size', '5',
                      '--num-workers', '0', *extra])


def _on_the_fly(config: str):
    """The model-side view of every window: preprocessed tubes/scenes through the frozen parts."""
    cfg = Config.fromfile(config)
    plan = TOOL.split_plan(cfg, 'train', None)
    extractor = TOOL.FrozenExtractor(plan['model_cfg'], 'cpu', seed=0)
    dataset = DATASETS.build(plan['dataset_cfg'])
    collate = TOOL.build_collate(plan['collate_cfg'])
    data = collate([dataset[i] for i in range(len(dataset))])
    # each call preprocesses a copy of the batch, as the model does
    return dataset, extractor(data, 'imgs'), extractor(data, 'scene')


def _cached(config: str):
    cfg = Config.fromfile(config)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    items = [dataset[i] for i in range(len(dataset))]
    return (torch.stack([item['inputs']['tokens'] for item in items]),
            torch.stack([item['inputs']['scene_feat'] for item in items]))


def test_cache_equals_on_the_fly(sample) -> None:
    root, config, _ = sample
    assert _extract(config) == 0
    cache = root / 'cache' / 'train'
    manifest = json.loads((cache / 'manifest.json').read_text())
    # 2 clips x 2 persons x ceil((40 - 8) / 8) windows, in shards of 5
    assert manifest['complete'] and manifest['identity']['num_windows'] == 16
    assert sorted(manifest['shards']) == [shard_name(k) for k in range(4)]
    assert manifest['token_shape'] == [16, SEG_LEN // 2, TUBE // 8, TUBE // 8]
    assert manifest['scene']['shape'] == [2, 64]

    dataset, tokens, scene = _on_the_fly(config)
    cached_tokens, cached_scene = _cached(config)
    assert cached_tokens.dtype == torch.float32 and cached_tokens.shape == tokens.shape
    torch.testing.assert_close(cached_tokens, tokens, rtol=2e-3, atol=2e-3)  # float16 storage
    torch.testing.assert_close(cached_scene, scene, rtol=2e-3, atol=2e-3)
    # the scene feature is one per clip
    clips = [dataset.get_data_info(i)['clip_name'] for i in range(len(dataset))]
    assert torch.equal(cached_scene[clips.index('01_002')], cached_scene[-1])
    assert not torch.equal(cached_scene[0], cached_scene[-1])

    # a second run has nothing left to do and changes nothing
    before = {name: os.stat(cache / name).st_mtime_ns for name in os.listdir(cache)}
    assert _extract(config) == 0
    assert {n: os.stat(cache / n).st_mtime_ns for n in os.listdir(cache)
            if n != 'manifest.json'} == {n: t for n, t in before.items() if n != 'manifest.json'}
    assert _extract(config, '--verify') == 0


def test_resume_after_kill_keeps_finished_shards(sample, monkeypatch) -> None:
    root, config, _ = sample
    cache = root / 'cache' / 'train'
    calls = {'n': 0}
    original = TOOL.FrozenExtractor.__call__

    def dying(self, data, key):
        if key == 'imgs':
            calls['n'] += 1
            if calls['n'] == 4:  # shard 0 = batches 1-2 (3 + 2 windows); die inside shard 1
                raise KeyboardInterrupt('simulated kill')
        return original(self, data, key)

    monkeypatch.setattr(TOOL.FrozenExtractor, '__call__', dying)
    with pytest.raises(KeyboardInterrupt):
        _extract(config)
    monkeypatch.setattr(TOOL.FrozenExtractor, '__call__', original)
    manifest = json.loads((cache / 'manifest.json').read_text())
    assert not manifest['complete'] and sorted(manifest['shards']) == [shard_name(0)]
    assert not (cache / shard_name(1)).exists()
    # a hard kill would also leave the temporary file of the shard in progress
    (cache / ('.' + shard_name(1) + '.tmp')).write_bytes(b'\x93NUMPY half a shard')
    with pytest.raises(FeatureCacheError, match='incomplete'):
        _cached(config)

    kept = os.stat(cache / shard_name(0)).st_mtime_ns
    assert _extract(config) == 0
    assert os.stat(cache / shard_name(0)).st_mtime_ns == kept
    assert not [n for n in os.listdir(cache) if n.endswith('.tmp')]
    _, tokens, _ = _on_the_fly(config)
    torch.testing.assert_close(_cached(config)[0], tokens, rtol=2e-3, atol=2e-3)


def test_other_weights_or_config_are_refused(sample) -> None:
    root, config, checkpoint = sample
    assert _extract(config) == 0
    # Other weights under the same checkpoint path: the config checksum cannot see it, the
    # tool's weights checksum does.
    state = torch.load(checkpoint, weights_only=False)
    state['state_dict'] = {k: v + 0.01 if v.is_floating_point() else v
                           for k, v in state['state_dict'].items()}
    torch.save(state, checkpoint)
    with pytest.raises(FeatureCacheError, match='(?s)weights_checksum.*--rebuild'):
        _extract(config)
    assert _extract(config, '--verify') == 1
    assert _extract(config, '--rebuild') == 0
    assert _extract(config, '--verify') == 0

    # Another crop size is another extractor config: the reading side refuses the cache.
    other = _config(root, checkpoint, crop_size=16)
    with pytest.raises(FeatureCacheError, match='(?s)cache checksum [0-9a-f]{64}.*expects '
                       '[0-9a-f]{64}.*--rebuild'):
        _cached(other)
    with pytest.raises(FeatureCacheError, match='config_checksum'):
        _extract(other)


def test_corrupt_shard_is_detected_and_rebuilt(sample, capsys) -> None:
    root, config, _ = sample
    assert _extract(config) == 0
    cache = root / 'cache' / 'train'
    path = cache / shard_name(2)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(FeatureCacheError, match=shard_name(2)):
        _cached(config)
    assert _extract(config, '--verify') == 1
    assert shard_name(2) in capsys.readouterr().out
    kept = os.stat(cache / shard_name(0)).st_mtime_ns
    assert _extract(config, '--rebuild') == 0
    assert os.stat(cache / shard_name(0)).st_mtime_ns == kept  # only the bad shard rewritten
    _, tokens, _ = _on_the_fly(config)
    torch.testing.assert_close(_cached(config)[0], tokens, rtol=2e-3, atol=2e-3)


def test_cache_built_before_the_poses_changed_is_refused(sample, capsys) -> None:
    """The issue's case: poses re-extracted after the cache was built. The test run, --verify
    and a rerun all accepted the stale features; now each names the changed pose file."""
    root, config, _ = sample
    assert _extract(config) == 0
    cache = root / 'cache' / 'train'
    manifest = json.loads((cache / 'manifest.json').read_text())
    pose = root / 'pose' / '01_002_alphapose_tracked_person.json'
    assert manifest['inputs']['poses'][str(pose)]['size'] == pose.stat().st_size
    assert sorted(manifest['inputs']['frames']) == [str(root / 'videos' / '01_001.avi'),
                                                    str(root / 'videos' / '01_002.avi')]
    # rewritten with the same content: still the cache's input
    pose.write_text(pose.read_text())
    stat = pose.stat()
    os.utime(pose, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _cached(config)
    assert _extract(config) == 0

    # the same windows (person ids and frames), keypoints moved by 3 pixels: other tubes
    persons = json.loads(pose.read_text())
    for frames in persons.values():
        for entry in frames.values():
            entry['keypoints'] = [round(v + 3, 2) if i % 3 == 0 else v
                                  for i, v in enumerate(entry['keypoints'])]
    pose.write_text(json.dumps(persons))
    with pytest.raises(FeatureCacheError, match=f'the feature cache .* is stale: 1 of its inputs '
                       f'changed since it was built.*{pose}: pose file content changed'):
        _cached(config)
    capsys.readouterr()
    assert _extract(config, '--verify') == 1
    assert f'[train] stale input {pose}: pose file content changed' in capsys.readouterr().out
    with pytest.raises(FeatureCacheError, match=f'(?s)is stale.*{pose}.*--rebuild'):
        _extract(config)
    assert _extract(config, '--rebuild') == 0
    _, tokens, _ = _on_the_fly(config)
    torch.testing.assert_close(_cached(config)[0], tokens, rtol=2e-3, atol=2e-3)

    # a video replaced under the same name
    video = root / 'videos' / '01_001.avi'
    video.write_bytes(video.read_bytes() + b'\0' * 16)
    with pytest.raises(FeatureCacheError, match=f'{video}: frame source changed'):
        _cached(config)


def test_misspelt_cfg_option_is_refused(sample) -> None:
    _, config, _ = sample
    with pytest.raises(ValueError, match=r"no top-level key 'train_dataloder' \(did you mean "
                       r"'train_dataloader'\?\)"):
        _extract(config, '--cfg-options', 'train_dataloder.num_workers=2')
