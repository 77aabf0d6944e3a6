"""Formatting transforms: packing a window for the recognizer."""
import numpy as np
import pytest
import torch

import mgenet_mm  # noqa: F401
from mgenet_mm.datasets.transforms import PackMGENetInputs


def test_pack_inputs() -> None:
    rng = np.random.default_rng(0)
    results = dict(keypoint=rng.normal(size=(8, 18, 3)).astype(np.float32),
                   imgs=rng.integers(0, 256, size=(8, 16, 12, 3), dtype=np.uint8),
                   scene=rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8),
                   tokens=rng.normal(size=(6, 4, 2, 2)), scene_feat=rng.normal(size=(5, )),
                   clip_name='01_0014', scene_id=1, clip_id=14, person_id=3, start_frame=40,
                   seg_len=8, scene_key='01', total_frames=100)
    packed = PackMGENetInputs(meta_keys=('scene_key', ))(dict(results))
    inputs = packed['inputs']
    assert {k: tuple(v.shape) for k, v in inputs.items()} == dict(
        pose=(8, 18, 3), imgs=(3, 8, 16, 12), scene=(3, 20, 24), tokens=(6, 4, 2, 2),
        scene_feat=(5, ))
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in inputs.values())
    assert inputs['imgs'][2, 5, 7, 3] == results['imgs'][5, 7, 3, 2]
    assert inputs['scene'][1, 4, 9] == results['scene'][4, 9, 1]
    meta = packed['data_samples'].metainfo
    assert meta == dict(clip_name='01_0014', scene_id=1, clip_id=14, person_id=3,
                        start_frame=40, seg_len=8, scene_key='01')
    # only what is there: a cached-feature pipeline packs pose + tokens + scene_feat
    cached = {k: v for k, v in results.items() if k not in ('imgs', 'scene')}
    assert set(PackMGENetInputs()(cached)['inputs']) == {'pose', 'tokens', 'scene_feat'}
    with pytest.raises(KeyError, match='start_frame'):
        PackMGENetInputs()({k: v for k, v in results.items() if k != 'start_frame'})
    with pytest.raises(ValueError, match='`imgs` has shape'):
        PackMGENetInputs()(dict(results, imgs=results['imgs'][0]))
    assert "meta_keys=('scene_key',)" in repr(PackMGENetInputs(meta_keys=('scene_key', )))
