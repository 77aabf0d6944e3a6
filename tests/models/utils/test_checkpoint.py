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
