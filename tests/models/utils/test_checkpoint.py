"""Tests of the checked state-dict loader shared by every place that loads weights."""
import pytest
import torch
import torch.nn as nn

from mgenet_mm.models.utils.checkpoint import load_state_dict_checked, split_init_cfg


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def _weights() -> dict:
    torch.manual_seed(1)
    return {k: torch.randn_like(v.float()).to(v.dtype) for k, v in _net().state_dict().items()}


def test_fitting_state_dict_loads_everything():
    net, weights = _net(), _weights()
    report = load_state_dict_checked(net, weights)
    assert report.ok and report.message == ''
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert all(torch.equal(v, weights[k]) for k, v in net.state_dict().items())


def test_mismatches_raise_listing_every_kind():
    weights = _weights()
    del weights['0.bias']
    weights['2.weight'] = torch.zeros(1)
    weights['1.weight'] = torch.zeros(5)
    with pytest.raises(ValueError) as error:
        load_state_dict_checked(_net(), weights, source='checkpoint a.pth', target='the net',
                                error=ValueError)
    message = str(error.value)
    assert message.startswith('checkpoint a.pth does not fit the net: ')
    assert '1 missing keys (0.bias)' in message
    assert '1 unexpected keys (2.weight)' in message
    assert '1 shape mismatches (1.weight: checkpoint (5,) vs model (4,))' in message
    # the default target is the class name, the default error a RuntimeError
    with pytest.raises(RuntimeError, match='does not fit Sequential: 1 missing keys'):
        load_state_dict_checked(_net(), {k: v for k, v in _weights().items() if k != '0.bias'})


def test_long_listings_are_cut():
    net = nn.Sequential(*[nn.Linear(1, 1) for _ in range(8)])  # 16 keys
    with pytest.raises(RuntimeError, match=r'16 missing keys \(0\.weight, .*, \.\.\.\)$'):
        load_state_dict_checked(net, {})


def test_optional_and_ignored_keys():
    weights = {k: v for k, v in _weights().items() if k != '1.bias'}
    weights['head.weight'] = torch.zeros(2)
    net = _net()
    before = net.state_dict()['1.bias'].clone()
    report = load_state_dict_checked(net, weights, optional=(r'^1\.bias$', ),
                                     ignore_unexpected=True)
    assert report.ok and report.message == ''
    assert report.missing == report.optional == ['1.bias']
    assert report.unexpected == ['head.weight']
    assert torch.equal(net.state_dict()['1.bias'], before)  # kept
    assert torch.equal(net.state_dict()['1.weight'], weights['1.weight'])


def test_non_strict_loads_what_fits_and_reports_the_rest():
    weights = _weights()
    weights['0.weight'] = torch.zeros(2, 2)
    weights['extra'] = torch.zeros(1)
    net = _net()
    initial = net.state_dict()['0.weight'].clone()
    report = load_state_dict_checked(net, weights, strict=False)
    assert not report.ok and 'extra' in report.message and '0.weight' in report.message
    assert torch.equal(net.state_dict()['0.weight'], initial)  # wrong shape: not loaded
    assert torch.equal(net.state_dict()['0.bias'], weights['0.bias'])


def test_check_only_leaves_the_module_alone():
    weights = _weights()
    net = _net()
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    assert load_state_dict_checked(net, weights, load=False).ok
    assert all(torch.equal(v, initial[k]) for k, v in net.state_dict().items())
    with pytest.raises(RuntimeError, match='1 unexpected keys'):
        load_state_dict_checked(net, dict(weights, extra=torch.zeros(1)), load=False)


def test_load_hooks_run_before_the_check():
    """A module that renames keys while loading (as the STG-NF recognizer does) is checked
    on the renamed keys."""
    net = _net()

    def rename(state_dict, prefix, *args):
        for key in [k for k in state_dict if k.startswith(prefix + 'old.')]:
            state_dict[prefix + key[len(prefix + 'old.'):]] = state_dict.pop(key)

    net._register_load_state_dict_pre_hook(rename)
    weights = {f'old.{k}': v for k, v in _weights().items()}
    assert load_state_dict_checked(net, weights).ok
    assert torch.equal(net.state_dict()['0.weight'], weights['old.0.weight'])


def test_split_init_cfg():
    pretrained = dict(type='Pretrained', checkpoint='a.pth')
    other = dict(type='Constant', val=1)
    assert split_init_cfg(None) == (None, [])
    assert split_init_cfg([other, pretrained]) == (pretrained, [other])
    with pytest.raises(ValueError, match='2 Pretrained entries'):
        split_init_cfg([pretrained, pretrained])
    with pytest.raises(ValueError, match='needs a checkpoint'):
        split_init_cfg(dict(type='Pretrained'))


def test_load_model_checkpoint_revises_keys_and_refuses_shape_mismatches():
    from mgenet_mm.models.utils.checkpoint import StateDictMismatchError, load_model_checkpoint
    weights = _weights()
    net = _net()
    # a DDP checkpoint without BatchNorm's batch counter (older torch): both accepted
    ddp = {f'module.{k}': v for k, v in weights.items() if 'num_batches_tracked' not in k}
    report = load_model_checkpoint(net, dict(state_dict=ddp), source='ddp.pth')
    assert report.ok
    assert torch.equal(net.state_dict()['0.weight'], weights['0.weight'])
    wrong = dict(weights, **{'0.weight': torch.zeros(2, 3)})
    with pytest.raises(StateDictMismatchError) as error:
        load_model_checkpoint(_net(), wrong, source='wrong.pth')
    lines = str(error.value).splitlines()
    assert lines[0] == ('checkpoint wrong.pth does not match the model Sequential: 0 of the '
                        "model's 7 keys missing, 0 unexpected keys, 1 shape mismatches")
    assert lines[1] == '  1 shape mismatches (0.weight: checkpoint (2, 3) vs model (4, 3))'
    with pytest.raises(StateDictMismatchError, match='holds a list, not a state dict'):
        load_model_checkpoint(_net(), [1], source='list.pth')
    messages = []
    partial = load_model_checkpoint(_net(), {'0.bias': weights['0.bias']}, source='p.pth',
                                    allow_partial=True, logger=messages.append)
    assert partial.required_missing == ['0.weight', '1.weight', '1.bias', '1.running_mean',
                                        '1.running_var']
    assert messages == [partial.message]
    assert messages[0].startswith('allow_partial_checkpoint=True: loaded only the fitting '
                                  'entries of checkpoint p.pth; the rest keeps its initial '
                                  'values. checkpoint p.pth does not match the model Sequential: '
                                  "5 of the model's 7 keys missing")


def test_guess_checkpoint_kind_reads_the_meta_config_without_running_it(tmp_path):
    from mmengine.config import Config

    from mgenet_mm.models.utils.checkpoint import guess_checkpoint_kind
    text = Config(dict(model=dict(backbone=dict(type='STGNF'), type='STGNFRecognizer'),
                       work_dir='w')).pretty_text
    assert guess_checkpoint_kind(dict(meta=dict(cfg=text), state_dict={})) == (
        'a STGNFRecognizer checkpoint (model type in its meta config)')
    marker = tmp_path / 'ran'
    code = f"open({str(marker)!r}, 'w')\nmodel = dict(type='X')\n"
    assert guess_checkpoint_kind(dict(meta=dict(cfg=code))) == (
        'a X checkpoint (model type in its meta config)')
    assert not marker.exists()
    official = {'flow.layers.0.actnorm.bias': 0, 'prior_h': 0}
    assert guess_checkpoint_kind(dict(state_dict=official, args=None)) == (
        'an official STG-NF checkpoint')
    assert guess_checkpoint_kind({}) is None


def test_check_checkpoint_path_and_is_project_model(tmp_path):
    from mgenet_mm.models.backbones import STGNF
    from mgenet_mm.models.utils.checkpoint import check_checkpoint_path, is_project_model
    with pytest.raises(FileNotFoundError, match='checkpoint not found: .*none.pth'):
        check_checkpoint_path(str(tmp_path / 'none.pth'))
    check_checkpoint_path('https://example.org/a.pth')  # left to its loader
    (tmp_path / 'a.pth').write_bytes(b'')
    check_checkpoint_path(str(tmp_path / 'a.pth'))
    with pytest.raises(IsADirectoryError, match=r'holds 1 checkpoint files: a.pth\)'):
        check_checkpoint_path(str(tmp_path))
    assert is_project_model(STGNF(seg_len=8, num_steps=1)) and not is_project_model(_net())


def test_strip_wrapper_prefix_removes_only_the_ddp_prefix():
    from mgenet_mm.models.utils.checkpoint import strip_wrapper_prefix
    weights = {'module.backbone.w': 1, 'head.module.b': 2, 'module.module.x': 3}
    assert strip_wrapper_prefix(weights) == {'backbone.w': 1, 'head.module.b': 2,
                                             'module.x': 3}
