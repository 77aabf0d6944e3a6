"""Tests of the frozen cube-embedding stages: Video Swin stages 1-2 and the generic wrapper."""
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mgenet_mm  # noqa: F401,I001  registers the modules, installs the mmaction shims
from mmaction.models.backbones.swin import SwinTransformer3D
from mmaction.registry import MODELS
from mmengine.registry import init_default_scope

from mgenet_mm.models.backbones.swin_cube_embed import MMActionCubeEmbedding, SwinCubeEmbedding

init_default_scope('mmaction')  # the recognizer builds its data preprocessor by name

# The backbone and head of mmaction2's Swin-T Kinetics-400 recognizer
# (configs/_base_/models/swin_tiny.py), as its published checkpoints were trained.
K400_SWIN_T = dict(
    type='Recognizer3D',
    backbone=dict(
        type='SwinTransformer3D',
        arch='tiny',
        pretrained=None,
        pretrained2d=False,
        patch_size=(2, 4, 4),
        window_size=(8, 7, 7),
        drop_path_rate=0.1,
        patch_norm=True),
    cls_head=dict(
        type='I3DHead',
        in_channels=768,
        num_classes=400,
        spatial_type='avg',
        dropout_ratio=0.5,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))


def _pretrained(path: Path) -> dict:
    return dict(type='Pretrained', checkpoint=str(path), prefix='backbone.')


def _save(state_dict: Dict[str, torch.Tensor], path: Path) -> Path:
    # the layout mmengine writes: state_dict + meta (numpy scalars included, as in real files)
    torch.save({'meta': {'epoch': 30, 'seed': np.int64(0), 'mmengine_version': '0.10.7'},
                'state_dict': state_dict}, path)
    return path


@pytest.fixture(scope='module')
def k400(tmp_path_factory):
    """A random full Swin-T recognizer saved like a K400 checkpoint, and the saved tensors."""
    torch.manual_seed(0)
    recognizer = MODELS.build(K400_SWIN_T)
    with torch.no_grad():
        # perturb everything (LayerNorms included) so that a tensor left unloaded is noticed
        for param in recognizer.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    state_dict = recognizer.state_dict()
    path = _save(state_dict, tmp_path_factory.mktemp('swin') / 'swin_tiny_k400.pth')
    backbone = recognizer.backbone
    backbone.eval()  # not chained: SwinTransformer3D.train() (hence eval()) returns None
    return dict(path=path, state_dict=state_dict, backbone=backbone)


@pytest.fixture(scope='module')
def embed(k400) -> SwinCubeEmbedding:
    model = MODELS.build(dict(type='SwinCubeEmbedding', arch='tiny',
                              init_cfg=_pretrained(k400['path'])))
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def clip() -> torch.Tensor:
    return torch.randn(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(1))


def _stage12_subset(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The recognizer keys that stages 1-2 need: a small file for the error tests."""
    keep = ('backbone.patch_embed.', 'backbone.layers.0.', 'backbone.layers.1.blocks.')
    return {key: value for key, value in state_dict.items() if key.startswith(keep)}


# ------------------------------------------------------------------------- loading, parity
def test_loads_k400_layout_exactly(embed, k400):
    saved = k400['state_dict']
    own = embed.state_dict()
    compared = 0
    for name, tensor in own.items():
        if name.startswith('norm1.'):
            continue
        assert torch.equal(tensor, saved['backbone.' + name]), name
        compared += 1
    # recognizer checkpoints hold norm3 only: norm1 keeps its initial identity affine, as in
    # the full model built with out_indices=(1,)
    assert 'backbone.norm1.weight' not in saved and 'backbone.norm3.weight' in saved
    assert torch.equal(own['norm1.weight'], torch.ones(192))
    assert torch.equal(own['norm1.bias'], torch.zeros(192))
    assert compared == len(own) - 2 == 63  # parameters and relative position indices


def test_equals_full_model_stage2_output(embed, k400, clip):
    # reference 1: the full model asked for stage index 1
    full = SwinTransformer3D(arch='tiny', pretrained=None, pretrained2d=False, out_indices=(1, ))
    result = full.load_state_dict(
        {key[len('backbone.'):]: value
         for key, value in k400['state_dict'].items() if key.startswith('backbone.')},
        strict=False)
    assert result.missing_keys == ['norm1.weight', 'norm1.bias']
    full.eval()
    with torch.no_grad():
        expected = full(clip)
    out = embed(clip)
    assert out.shape == expected.shape == (1, 192, 4, 8, 8)
    assert torch.equal(out, expected)  # same ops on the same weights: bit for bit

    # reference 2: the untouched K400-layout backbone (all four stages, out_indices=(3,)),
    # hooked at the end of stage 2's blocks, i.e. before the merging into stage 3
    captured = {}
    handle = k400['backbone'].layers[1].register_forward_hook(
        lambda module, args, output: captured.setdefault('stage2', output))
    try:
        with torch.no_grad():
            k400['backbone'](clip)
    finally:
        handle.remove()
    stage2 = captured['stage2']  # (B, t, h, w, C): BasicLayer works channels-last
    assert stage2.shape == (1, 4, 8, 8, 192)
    # norm1 with weight 1, bias 0 is a plain LayerNorm; (B, t, h, w, C) -> (B, C, t, h, w)
    reference = F.layer_norm(stage2, (192, )).permute(0, 4, 1, 2, 3)
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------- structure
def test_shape_follows_the_cube_grid(embed):
    clip = torch.randn(2, 3, 4, 32, 48)
    assert embed(clip).shape == (2, 192, 2, 4, 6)  # (B, 192, T/2, H/8, W/8)
    # sizes that are not multiples of the cube are padded: ceil(T/2), ceil(H/8), ceil(W/8)
    assert embed(torch.randn(1, 3, 3, 36, 20)).shape == (1, 192, 2, 5, 3)
    assert embed.out_channels == 192 and embed.cube_size == (2, 8, 8)
    with pytest.raises(ValueError, match='clip'):
        embed(torch.randn(3, 32, 32))


def test_stages_3_and_4_are_not_built(embed):
    names = list(embed.state_dict())
    assert len(embed.layers) == 2 and embed.layers[1].downsample is None
    assert not [name for name in names if name.startswith(('layers.2', 'layers.3'))]
    assert not [name for name in names if name.startswith(('layers.1.downsample', 'norm3'))]
    assert not hasattr(embed, 'norm3')


def test_frozen(embed):
    clip = torch.randn(1, 3, 4, 32, 32)
    assert not any(param.requires_grad for param in embed.parameters())
    assert embed.train() is embed  # SwinTransformer3D.train returns None
    assert not any(module.training for module in embed.modules())
    out = embed(clip)
    assert not out.requires_grad
    assert torch.equal(out, embed(clip))  # drop path stays off


def test_trainable_when_not_frozen():
    torch.manual_seed(0)
    model = SwinCubeEmbedding(arch='tiny', frozen=False)
    assert model.train() is model and model.training
    assert all(param.requires_grad for param in model.parameters())
    model(torch.randn(1, 3, 4, 32, 32)).sum().backward()
    assert model.patch_embed.proj.weight.grad is not None
    # the kept blocks get the drop path rates they have in the full 12-block Swin-T
    rates = [block.drop_path.drop_prob if hasattr(block.drop_path, 'drop_prob') else 0.
             for layer in model.layers for block in layer.blocks]
    np.testing.assert_allclose(rates, np.linspace(0, 0.1, 12)[:4], rtol=1e-6)


def test_archs():
    tiny, small = SwinCubeEmbedding('tiny'), SwinCubeEmbedding('small')
    # tiny and small differ in stage 3 only: their stages 1-2 are interchangeable
    assert {k: v.shape for k, v in tiny.state_dict().items()} == \
        {k: v.shape for k, v in small.state_dict().items()}
    base = SwinCubeEmbedding('base')
    assert base.out_channels == 256
    assert base(torch.randn(1, 3, 2, 16, 16)).shape == (1, 256, 1, 2, 2)
    with pytest.raises(KeyError, match='unknown Swin arch'):
        SwinCubeEmbedding('huge')


# ------------------------------------------------------------------------ loading errors
@pytest.mark.parametrize('drop', ['backbone.layers.0.blocks.1.attn.qkv.weight',
                                  'backbone.layers.1.blocks.0.mlp.fc2.bias',
                                  'backbone.layers.0.downsample.reduction.weight'])
def test_missing_stage_key_raises(k400, tmp_path, drop):
    state_dict = _stage12_subset(k400['state_dict'])
    del state_dict[drop]
    model = SwinCubeEmbedding(init_cfg=_pretrained(_save(state_dict, tmp_path / 'bad.pth')))
    with pytest.raises(RuntimeError, match='missing keys') as error:
        model.init_weights()
    assert drop[len('backbone.'):] in str(error.value)


def test_wrong_shape_raises(k400, tmp_path):
    state_dict = _stage12_subset(k400['state_dict'])
    name = 'backbone.layers.1.blocks.1.attn.relative_position_bias_table'
    state_dict[name] = torch.zeros(1, 6)  # as if saved with another window size
    model = SwinCubeEmbedding(init_cfg=_pretrained(_save(state_dict, tmp_path / 'bad.pth')))
    with pytest.raises(RuntimeError, match='shape mismatches'):
        model.init_weights()


def test_stage12_subset_is_enough_and_prefix_checked(k400, tmp_path):
    path = _save(_stage12_subset(k400['state_dict']), tmp_path / 'stage12.pth')
    model = SwinCubeEmbedding(init_cfg=_pretrained(path))
    model.init_weights()
    assert not any(param.requires_grad for param in model.parameters())
    wrong_prefix = SwinCubeEmbedding(init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                                   prefix='model.'))
    with pytest.raises(KeyError, match="starts with 'model.'"):
        wrong_prefix.init_weights()


# ------------------------------------------------------------ generic mmaction backbone
RESNET3D_18 = dict(type='ResNet3d', depth=18, pretrained=None, pretrained2d=False,
                   base_channels=16, num_stages=2, out_indices=(1, ), spatial_strides=(1, 2),
                   temporal_strides=(1, 1), dilations=(1, 1), inflate=(1, 1))


def test_resnet3d_on_the_cube_grid():
    torch.manual_seed(0)
    # conv1 s2, pool1 s2, pool2 t2, layer2 s2: strides (2, 8, 8) already, pooling is a no-op
    model = MODELS.build(dict(type='MMActionCubeEmbedding', backbone=RESNET3D_18))
    model.init_weights()
    assert model.feat_channels == model.out_channels == 32
    clip = torch.randn(2, 3, 8, 64, 64)
    out = model(clip)
    assert out.shape == (2, 32, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(out, model.backbone(clip))
    assert model.train() is model and not model.training and not model.backbone.training
    assert not any(param.requires_grad for param in model.parameters())


def test_x3d_pooled_and_projected_to_the_cube_grid():
    torch.manual_seed(0)
    backbone = dict(type='X3D', gamma_w=0.5, gamma_b=1.0, gamma_d=1.0, se_style='half')
    model = MMActionCubeEmbedding(backbone, out_channels=192)
    model.init_weights()
    clip = torch.randn(1, 3, 8, 64, 64)
    out = model(clip)
    assert out.shape == (1, 192, 4, 8, 8)  # X3D's own grid is (8, 2, 2)
    with torch.no_grad():
        feats = model.backbone(clip)
        assert feats.shape[2:] == (8, 2, 2)
        expected = model.proj(F.adaptive_avg_pool3d(feats, (4, 8, 8)))
    torch.testing.assert_close(out, expected)
    assert not out.requires_grad


def test_trainable_projection_only():
    model = MMActionCubeEmbedding(RESNET3D_18, out_channels=8, trainable_proj=True)
    model.init_weights()
    assert model.train() is model and model.training and not model.backbone.training
    assert not any(param.requires_grad for param in model.backbone.parameters())
    assert all(param.requires_grad for param in model.proj.parameters())
    model(torch.randn(1, 3, 4, 32, 32)).sum().backward()
    assert model.proj.weight.grad is not None


def test_generic_checkpoint_loading(tmp_path):
    torch.manual_seed(0)
    source = MODELS.build(RESNET3D_18)
    with torch.no_grad():
        for param in source.parameters():
            param.add_(torch.randn_like(param))
    saved = {'backbone.' + key: value for key, value in source.state_dict().items()}
    saved['cls_head.fc_cls.weight'] = torch.zeros(400, 32)
    model = MMActionCubeEmbedding(RESNET3D_18,
                                  init_cfg=_pretrained(_save(saved, tmp_path / 'r3d.pth')))
    model.init_weights()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, saved['backbone.' + key]), key
    del saved['backbone.layer2.0.conv1.conv.weight']
    broken = MMActionCubeEmbedding(RESNET3D_18,
                                   init_cfg=_pretrained(_save(saved, tmp_path / 'bad.pth')))
    with pytest.raises(RuntimeError, match='layer2.0.conv1.conv.weight'):
        broken.init_weights()


def test_backbone_without_a_feature_map_is_refused():
    # a backbone that cannot run on the probe clip (here a 2D net) asks for feat_channels
    resnet2d = dict(type='ResNet', depth=18, num_stages=1, out_indices=(0, ), strides=(1, ),
                    dilations=(1, ))
    with pytest.raises(RuntimeError, match='pass feat_channels'):
        MMActionCubeEmbedding(resnet2d)
    # vectors (C3D ends in fully connected layers: (B, 4096)) are not a cube grid
    model = MMActionCubeEmbedding(RESNET3D_18, feat_channels=32)
    with pytest.raises(ValueError, match='not a'):
        model._select_map(torch.zeros(2, 4096))
