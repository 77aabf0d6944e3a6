"""ema_update_: target <- m target + (1 - m) source, on hand-set weights."""
import pytest
import torch
import torch.nn as nn

from mgenet_mm.models.utils.ema import ema_update_


def _linear(weight: float, bias: float) -> nn.Linear:
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.fill_(weight)
        layer.bias.fill_(bias)
    return layer


def test_moves_each_parameter_by_hand():
    target, source = _linear(1., 2.), _linear(3., -2.)
    ema_update_(target, source, 0.75)
    # 0.75 * 1 + 0.25 * 3 = 1.5; 0.75 * 2 + 0.25 * -2 = 1
    torch.testing.assert_close(target.weight, torch.full((1, 2), 1.5))
    torch.testing.assert_close(target.bias, torch.ones(1))
    torch.testing.assert_close(source.weight, torch.full((1, 2), 3.))  # source untouched
    ema_update_(target, source, 0.5)  # 0.5 * 1.5 + 0.5 * 3 = 2.25
    torch.testing.assert_close(target.weight, torch.full((1, 2), 2.25))


def test_momentum_zero_copies_one_keeps_and_buffers_stay():
    target, source = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        source.weight.fill_(4.)
    source.running_mean.fill_(7.)
    ema_update_(target, source, 1.)
    torch.testing.assert_close(target.weight, torch.ones(2))
    ema_update_(target, source, 0.)
    torch.testing.assert_close(target.weight, torch.full((2, ), 4.))
    torch.testing.assert_close(target.running_mean, torch.zeros(2))  # buffers are not averaged


def test_no_gradient_is_recorded():
    target, source = _linear(1., 0.), _linear(2., 0.)
    ema_update_(target, source, 0.5)
    assert target.weight.grad_fn is None and target.weight.grad is None


def test_bad_input():
    with pytest.raises(ValueError, match=r'momentum must be in \[0, 1\]'):
        ema_update_(_linear(1., 0.), _linear(1., 0.), 1.5)
    with pytest.raises(ValueError, match='different parameters'):
        ema_update_(nn.Linear(2, 1), nn.Linear(3, 1), 0.5)
    with pytest.raises(ValueError, match='different parameters'):
        ema_update_(nn.Linear(2, 1), nn.Sequential(nn.Linear(2, 1)), 0.5)
