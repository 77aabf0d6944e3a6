"""PoseWindowDataPreprocessor: ActionDataPreprocessor's batch, without its per-window walk."""
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement

from mgenet_mm.datasets import PoseWindowDataSample, pose_window_collate
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample


@pytest.fixture(autouse=True)
def mmaction_scope():
    with DefaultScope.overwrite_default_scope('mmaction'):
        yield


def _items(num, seed=0, length=6):
    rng = np.random.default_rng(seed)
    return [dict(keypoint=(rng.random((length, 18, 3)) * [856, 480, 1]).astype(np.float32),
                 clip_name='01_0001', scene_id=1, clip_id=1, person_id=i, start_frame=i,
                 seg_len=length) for i in range(num)]


def test_same_batch_as_action_data_preprocessor():
    batch = pose_window_collate(_items(5))
    ours = MODELS.build(dict(type='PoseWindowDataPreprocessor'))(batch)
    theirs = MODELS.build(dict(type='ActionDataPreprocessor'))(batch)
    assert ours['inputs'].shape == (5, 6, 18, 3) and ours['inputs'].dtype == torch.float32
    assert torch.equal(ours['inputs'], theirs['inputs'])
    assert [s.metainfo for s in ours['data_samples']] == \
        [s.metainfo for s in theirs['data_samples']]
    # moved copies, as mmengine's cast_data gives: predict may write into them
    assert all(a is not b for a, b in zip(ours['data_samples'], batch['data_samples']))
    assert all(type(s) is PoseWindowDataSample for s in ours['data_samples'])


def test_stack_by_hand_and_a_batch_tensor():
    windows = [torch.full((2, 1, 3), float(i), dtype=torch.float64) for i in range(3)]
    out = MODELS.build(dict(type='PoseWindowDataPreprocessor'))(dict(inputs=windows))
    assert out['inputs'].dtype == torch.float32 and out['data_samples'] is None
    assert out['inputs'][:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
    batch = torch.arange(24, dtype=torch.float32).view(2, 3, 2, 2)
    out = MODELS.build(dict(type='PoseWindowDataPreprocessor'))(dict(inputs=batch))
    assert torch.equal(out['inputs'], batch)


def test_samples_with_tensors_and_other_keys_are_moved():
    sample = ActionDataSample()
    sample.set_field(torch.ones(2), 'gt_value')
    batch = dict(inputs=[torch.zeros(2, 1, 3)], data_samples=[sample], extra=[torch.ones(1)])
    out = MODELS.build(dict(type='PoseWindowDataPreprocessor'))(batch)
    assert isinstance(out['data_samples'][0], BaseDataElement)
    assert torch.equal(out['data_samples'][0].gt_value, torch.ones(2))
    assert torch.equal(out['extra'][0], torch.ones(1))


def test_bad_batches_are_named():
    preprocessor = MODELS.build(dict(type='PoseWindowDataPreprocessor'))
    with pytest.raises(ValueError, match=r'different shapes \[\(2, 1, 3\), \(3, 1, 3\)\]'):
        preprocessor(dict(inputs=[torch.zeros(2, 1, 3), torch.zeros(3, 1, 3)]))
    with pytest.raises(TypeError, match='list of .* window tensors, got ndarray'):
        preprocessor(dict(inputs=[np.zeros((2, 1, 3))]))
    with pytest.raises(TypeError, match='batch dict with "inputs"'):
        preprocessor([torch.zeros(1)])
    with pytest.raises(ValueError, match='empty batch'):
        preprocessor(dict(inputs=[]))


def test_stgnf_recognizer_default():
    model = MODELS.build(dict(type='STGNFRecognizer', backbone=dict(
        type='STGNF', in_channels=2, num_joints=18, seg_len=8, num_steps=1)))
    assert type(model.data_preprocessor).__name__ == 'PoseWindowDataPreprocessor'
