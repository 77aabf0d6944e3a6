"""Tests of the frozen-pretrained helpers: freezing, and the train() guard."""
from typing import List

import torch.nn as nn

from mgenet_mm.models.utils.freezing import FrozenModuleMixin, freeze_module


class _NoneTrain(nn.Module):
    """Like mmaction backbones, whose train() returns None."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(2)
        self.drop = nn.Dropout(0.5)

    def train(self, mode: bool = True) -> None:
        super().train(mode)


class _WholeFrozen(FrozenModuleMixin, _NoneTrain):

    def __init__(self, frozen: bool) -> None:
        super().__init__()
        self.frozen = frozen

    def frozen_modules(self) -> List[nn.Module]:
        return [self] if self.frozen else []


class _PartFrozen(FrozenModuleMixin, nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.teacher = freeze_module(_NoneTrain())
        self.student = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))

    def frozen_modules(self) -> List[nn.Module]:
        return [self.teacher]


def test_freeze_module():
    module = _NoneTrain()
    assert freeze_module(module) is module
    assert not module.training and not any(m.training for m in module.modules())
    assert not any(p.requires_grad for p in module.parameters())


def test_whole_module_stays_in_eval_mode():
    module = _WholeFrozen(frozen=True)
    assert module.train() is module  # the base returns None; the guard returns the module
    assert not any(m.training for m in module.modules())
    unfrozen = _WholeFrozen(frozen=False)
    assert unfrozen.train() is unfrozen
    assert all(m.training for m in unfrozen.modules())
    assert unfrozen.eval() is unfrozen and not unfrozen.training


def test_frozen_part_stays_in_eval_mode():
    model = _PartFrozen()
    assert model.train() is model
    assert model.training and all(m.training for m in model.student.modules())
    assert not any(m.training for m in model.teacher.modules())
    assert not any(p.requires_grad for p in model.teacher.parameters())
    assert all(p.requires_grad for p in model.student.parameters())
    model.eval()
    assert not any(m.training for m in model.modules())
