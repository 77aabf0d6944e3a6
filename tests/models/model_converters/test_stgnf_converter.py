"""Tests of the official STG-NF checkpoint conversion (loading itself: tests/models/backbones)."""
from argparse import Namespace

import pytest
import torch

from mgenet_mm.models.model_converters.stgnf_converter import (canonical_permutation,
                                                               check_official_args,
                                                               official_args_to_kwargs,
                                                               official_keys_to_recognizer,
                                                               select_state_dict)


def test_permutation_names():
    assert canonical_permutation('invcov') == 'reverse'  # the checkpoints' spelling
    assert canonical_permutation('invconv') == 'inv1x1'
    with pytest.raises(ValueError, match='unknown permutation'):
        canonical_permutation('bogus')


def test_official_args():
    args = Namespace(seg_len=16, K=8, R=3.0, flow_permutation='invcov')
    kwargs = official_args_to_kwargs(args)
    assert kwargs['seg_len'] == 16 and kwargs['permutation'] == 'invcov'
    architecture = dict(kwargs, permutation='reverse', temporal_kernel=9)
    check_official_args(args, architecture, 'a.tar')
    with pytest.raises(ValueError, match=r"a\.tar .*'seg_len': \(24, 16\)"):
        check_official_args(args, dict(architecture, seg_len=24), 'a.tar')
    check_official_args({'not': 'official'}, architecture, 'a.tar')  # not checked
    with pytest.raises(NotImplementedError, match='L=2'):
        official_args_to_kwargs(dict(seg_len=24, L=2))


def test_select_state_dict():
    weights = {'module.backbone.a': torch.zeros(1), 'module.head.b': torch.zeros(1)}
    assert list(select_state_dict({'state_dict': weights}, 'backbone')) == ['a']
    assert sorted(select_state_dict(weights, None)) == ['backbone.a', 'head.b']
    with pytest.raises(KeyError, match="prefix 'neck.'"):
        select_state_dict(weights, 'neck.')


def test_official_keys_move_under_backbone():
    state = {'flow.layers.0.x': torch.zeros(1), 'prior_h': torch.zeros(1)}
    moved = official_keys_to_recognizer(state, '')
    assert sorted(moved) == ['flow.layers.0.x', 'prior_h'] and state == {}
    already = {'backbone.flow.layers.0.x': torch.zeros(1)}
    assert official_keys_to_recognizer(already, '') is None and len(already) == 1
