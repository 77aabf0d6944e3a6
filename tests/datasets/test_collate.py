"""pose_window_collate: the per-window pipeline's numbers, a batch at a time."""
import copy
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mgenet_mm.datasets import (PoseWindowDataSample, PoseWindowDataset, build_collate_fn,
                                pose_window_collate)
from tests.conftest import REPO

META_KEYS = ('clip_name', 'scene_id', 'clip_id', 'person_id', 'start_frame', 'seg_len')


@pytest.fixture(autouse=True)
def mmaction_scope():
    with DefaultScope.overwrite_default_scope('mmaction'):
        yield


def per_window(items, resolution=(856., 480.)):
    """What the configs did before: NormalizePoseWindow + PackActionInputs, pseudo_collate."""
    pipeline = Compose([dict(type='NormalizePoseWindow', video_resolution=resolution),
                        dict(type='PackActionInputs', meta_keys=META_KEYS)])
    return pseudo_collate([pipeline(copy.deepcopy(item)) for item in items])


def window_item(keypoint, **meta):
    item = dict(clip_name='01_0001', scene_id=1, clip_id=1, person_id=1, start_frame=0,
                seg_len=len(keypoint), sample_idx=0, row=0)
    item.update(meta, keypoint=np.asarray(keypoint, dtype=np.float32))
    return item


def test_normalisation_by_hand():
    # two frames, one joint: x/W = 0.5 both, y/H = 0.25 and 0.75 -> centred x 0, y -0.25 and
    # +0.25; the std of y is 0.25, so y becomes -1 and +1; confidences unchanged
    keypoint = [[[428.0, 120.0, 0.3]], [[428.0, 360.0, 0.9]]]  # (T=2, V=1, C=3)
    batch = pose_window_collate([window_item(keypoint)])
    expected = torch.tensor([[[0.0, -1.0, 0.3]], [[0.0, 1.0, 0.9]]])
    assert len(batch['inputs']) == 1
    torch.testing.assert_close(batch['inputs'][0], expected, rtol=0, atol=1e-7)
    assert batch['inputs'][0].dtype == torch.float32
    sample = batch['data_samples'][0]
    assert isinstance(sample, PoseWindowDataSample)
    assert sample.metainfo == dict(clip_name='01_0001', scene_id=1, clip_id=1, person_id=1,
                                   start_frame=0, seg_len=2)
    raw = pose_window_collate([window_item(keypoint)], normalize=False)['inputs'][0]
    torch.testing.assert_close(raw, torch.tensor(keypoint))


def test_equals_the_per_window_pipeline_bit_for_bit(fixtures_dir: Path):
    dataset = PoseWindowDataset(str(fixtures_dir / 'stgnf_reference' / 'pose' / 'test'),
                                seg_len=24, stride=1, test_mode=True)
    # a batch across persons and clips, and one of a single window
    for indices in (range(0, len(dataset), 13), [7]):
        items = [dataset[i] for i in indices]
        batched = pose_window_collate(items)
        before = per_window(items)
        assert len(batched['inputs']) == len(before['inputs']) == len(items)
        for new, old in zip(batched['inputs'], before['inputs']):
            assert torch.equal(new, old)
        assert [s.metainfo for s in batched['data_samples']] == \
            [s.metainfo for s in before['data_samples']]
    # extra metainfo keys, as PackActionInputs(meta_keys=...) adds them
    extra = pose_window_collate([dataset[5]], meta_keys=('sample_idx', 'absent'))
    assert extra['data_samples'][0].sample_idx == 5
    assert 'absent' not in extra['data_samples'][0]


def test_the_config_test_loader_gives_the_pipeline_inputs(fixtures_dir: Path):
    """configs/stgnf/stgnf_sht_fixture.py batches as the per-window pipeline did, and its
    batches pass mmaction's data preprocessor to the same model input."""
    cfg = Config.fromfile(str(REPO / 'configs' / 'stgnf' / 'stgnf_sht_fixture.py'))
    assert cfg.test_dataloader.dataset.pipeline == []
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.batch_size = 700
    loader = Runner.build_dataloader(loader_cfg)
    old_cfg = copy.deepcopy(loader_cfg)
    old_cfg.pop('collate_fn')
    old_cfg.dataset.pipeline = [dict(type='NormalizePoseWindow', video_resolution=(856, 480)),
                                dict(type='PackActionInputs', meta_keys=META_KEYS)]
    old_loader = Runner.build_dataloader(old_cfg)
    from mmaction.registry import MODELS
    preprocessor = MODELS.build(dict(type='ActionDataPreprocessor'))
    batches = 0
    for new, old in zip(loader, old_loader):
        new, old = preprocessor(new), preprocessor(old)
        assert torch.equal(new['inputs'], old['inputs'])  # (B, T, V, C)
        assert [s.metainfo for s in new['data_samples']] == \
            [s.metainfo for s in old['data_samples']]
        batches += 1
    assert batches == -(-len(loader.dataset) // 700)


def test_data_sample_copies_only_what_is_mutable():
    name, box = 'clip', (1, 2, 3, 4)
    history = [1, 2]
    sample = PoseWindowDataSample(metainfo=dict(clip_name=name, tube_box=box,
                                                frame=np.int64(3)))
    assert sample.clip_name is name and sample.tube_box is box and sample.frame == 3
    moved = sample.to('cpu')
    assert type(moved) is PoseWindowDataSample and moved.metainfo == sample.metainfo
    assert moved is not sample
    with_list = PoseWindowDataSample(metainfo=dict(history=history, clip_name=name))
    assert with_list.history == history and with_list.history is not history  # deep copy
    with pytest.raises(TypeError, match='metainfo should be a dict'):
        sample.set_metainfo([('clip_name', 'x')])


def test_bad_batches():
    flat = [[[10.0, 100.0, 1.0]], [[20.0, 100.0, 1.0]]]  # y never varies
    with pytest.raises(ValueError, match=r'degenerate pose window .* clip 01_0009, person 4, '
                                         r'frame 17'):
        pose_window_collate([window_item([[[0, 0, 1]], [[0, 9, 1]]]),
                             window_item(flat, clip_name='01_0009', person_id=4,
                                         start_frame=17)])
    packed = per_window([window_item([[[0, 0, 1]], [[0, 9, 1]]])])
    item = dict(inputs=packed['inputs'][0], clip_name='01_0001', person_id=1, start_frame=0)
    with pytest.raises(KeyError, match='packed already'):
        pose_window_collate([item])
    with pytest.raises(ValueError, match=r'one shape, got \[\(2, 1, 3\), \(3, 1, 3\)\]'):
        pose_window_collate([window_item([[[0, 0, 1]], [[0, 9, 1]]]),
                             window_item([[[0, 0, 1]], [[0, 9, 1]], [[0, 5, 1]]])])
    assert pose_window_collate([]) == dict(inputs=[], data_samples=[])


def test_build_collate_fn():
    assert build_collate_fn({}) is pseudo_collate
    collate = build_collate_fn(dict(collate_fn=dict(type='pose_window_collate',
                                                    video_resolution=(100, 50))))
    assert isinstance(collate, partial) and collate.func is pose_window_collate
    assert collate.keywords == dict(video_resolution=(100, 50))
    with pytest.raises(KeyError, match="'no_such_collate' is not registered"):
        build_collate_fn(dict(collate_fn=dict(type='no_such_collate')))


def test_plain_sample_matches_mmengines_element():
    """A plain sample: created, moved and converted as mmengine's own code does it."""
    from mmaction.structures import ActionDataSample
    from mmengine.structures import BaseDataElement
    meta = dict(clip_name='01_0003', scene_id=1, clip_id=3, person_id=np.int64(2),
                start_frame=40, seg_len=24, box=(1.5, 2.0))
    sample = PoseWindowDataSample.from_metainfo(meta)
    reference = ActionDataSample(metainfo=meta)
    assert type(sample) is PoseWindowDataSample and sample.metainfo == reference.metainfo
    assert sample.keys() == [] and sorted(sample.all_keys()) == sorted(meta)
    assert sample.to_dict() == BaseDataElement.to_dict(reference) == meta
    assert PoseWindowDataSample(metainfo=meta).to_dict() == meta
    for moved in (sample.to('cpu'), sample.cpu()):
        assert type(moved) is PoseWindowDataSample and moved is not sample
        assert moved.metainfo == meta and moved.clip_name is sample.clip_name
        # the copy has fields of its own: a prediction set on it leaves the original alone
        moved.anomaly_scores = dict(nll=-1.5)
        assert 'anomaly_scores' not in sample and sample.keys() == []
        assert moved.to_dict() == dict(meta, anomaly_scores=dict(nll=-1.5))
        assert moved.to_dict() == BaseDataElement.to_dict(moved)


def test_non_plain_samples_keep_mmengines_behaviour():
    from mmengine.structures import BaseDataElement, InstanceData
    history = [1, 2]
    # a mutable value: deep-copied at creation and again by to(), as mmengine does
    sample = PoseWindowDataSample.from_metainfo(dict(clip_name='a', history=history))
    assert sample.history == history and sample.history is not history
    moved = sample.to('cpu')
    assert moved.history == history and moved.history is not sample.history
    # a plain sample made mutable by a later set_field is copied deeply from then on
    plain = PoseWindowDataSample.from_metainfo(dict(clip_name='a'))
    plain.set_field([3], 'history', field_type='metainfo')
    assert plain.to('cpu').history is not plain.history
    # a tensor data field is moved with to(); a nested element becomes a dict in to_dict
    with_data = PoseWindowDataSample.from_metainfo(dict(clip_name='a'))
    with_data.scores = torch.ones(2)
    nested = InstanceData(bboxes=torch.zeros(1, 4))
    with_data.inner = nested
    as_dict = with_data.to_dict()
    assert as_dict['clip_name'] == 'a' and torch.equal(as_dict['scores'], torch.ones(2))
    assert as_dict['inner'].keys() == BaseDataElement.to_dict(with_data)['inner'].keys()
    assert with_data.to(torch.float64).scores.dtype == torch.float64
    # a property (ActionDataSample.proposals) is set through its setter, as before
    boxes = InstanceData(bboxes=torch.zeros(1, 4))
    proposed = PoseWindowDataSample.from_metainfo(dict(clip_name='a'))
    proposed.proposals = boxes
    assert proposed.proposals is boxes and proposed.to_dict().keys() == \
        BaseDataElement.to_dict(proposed).keys()
    # a metainfo name taken by a data field is refused, as mmengine refuses it
    with pytest.raises(AttributeError, match='already a data field'):
        with_data.set_metainfo(dict(scores=1))
