"""Tests of the frozen scene encoder (scene features F_S)."""

import pytest
import torch

import mgenet_mm  # noqa: F401,I001  registers the modules, installs the mmaction shims
from mmaction.registry import MODELS

from mgenet_mm.models.backbones.scene_encoder import SceneEncoder, torchvision_resnet_to_mmaction

RESNET18 = dict(type='ResNet', depth=18)


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Random weights and BN statistics, so that a tensor left unloaded is noticed."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith('num_batches_tracked'):
                continue
            noise = torch.randn(tensor.shape, generator=generator) * 0.1
            if name.endswith('running_var'):
                tensor.copy_(1 + noise.abs())
            else:
                tensor.add_(noise)


@pytest.fixture(scope='module')
def encoder() -> SceneEncoder:
    torch.manual_seed(0)
    model = MODELS.build(dict(type='SceneEncoder', backbone=RESNET18))
    model.init_weights()
    return model


def test_output_shape_and_channels(encoder):
    assert encoder.out_channels == 512
    images = torch.randn(3, 3, 64, 96)
    assert encoder(images).shape == (3, 512)
    with pytest.raises(ValueError, match='scene images'):
        encoder(torch.randn(1, 3, 2, 64, 64))


def test_default_is_resnet50():
    model = SceneEncoder()
    assert model.backbone.depth == 50 and model.out_channels == 2048


def test_frozen_and_deterministic(encoder):
    assert not any(param.requires_grad for param in encoder.parameters())
    assert encoder.train() is encoder  # mmaction's ResNet.train returns None
    assert not any(module.training for module in encoder.modules())
    images = torch.randn(4, 3, 64, 64)
    out = encoder(images)
    assert not out.requires_grad
    assert torch.equal(out, encoder(images))
    # BatchNorm uses running statistics: a scene's feature does not depend on the batch
    torch.testing.assert_close(encoder(images[1:2]), out[1:2], rtol=0, atol=1e-5)


def test_loads_torchvision_imagenet_layout(tmp_path):
    torchvision = pytest.importorskip('torchvision')
    reference = torchvision.models.resnet18()
    _randomise(reference, seed=1)
    reference.fc = torch.nn.Identity()  # keep the pooled features
    reference.eval()
    path = tmp_path / 'resnet18_imagenet.pth'
    torch.save(reference.state_dict(), path)  # torchvision files are bare state dicts
    model = SceneEncoder(RESNET18, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference(images)
    torch.testing.assert_close(model(images), expected, rtol=0, atol=1e-5)


def test_loads_mmaction_recognizer_layout_and_checks(tmp_path):
    source = MODELS.build(RESNET18)
    _randomise(source, seed=2)
    saved = {'backbone.' + key: value for key, value in source.state_dict().items()}
    saved['cls_head.fc_cls.weight'] = torch.zeros(400, 512)
    torch.save({'meta': {}, 'state_dict': saved}, tmp_path / 'tsn.pth')
    model = SceneEncoder(RESNET18, init_cfg=dict(type='Pretrained',
                                                 checkpoint=str(tmp_path / 'tsn.pth'),
                                                 prefix='backbone.'))
    model.init_weights()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, saved['backbone.' + key]), key
    assert not any(param.requires_grad for param in model.parameters())

    del saved['backbone.layer3.1.conv2.bn.running_var']
    torch.save({'state_dict': saved}, tmp_path / 'broken.pth')
    broken = SceneEncoder(RESNET18, init_cfg=dict(type='Pretrained',
                                                  checkpoint=str(tmp_path / 'broken.pth'),
                                                  prefix='backbone.'))
    with pytest.raises(RuntimeError, match=r'layer3\.1\.conv2\.bn\.running_var'):
        broken.init_weights()


def test_torchvision_renaming_covers_every_key():
    torchvision = pytest.importorskip('torchvision')
    for depth in (18, 50):
        renamed = torchvision_resnet_to_mmaction(
            getattr(torchvision.models, f'resnet{depth}')().state_dict())
        own = MODELS.build(dict(type='ResNet', depth=depth)).state_dict()
        assert set(renamed) == set(own)
        assert all(renamed[key].shape == own[key].shape for key in own)
