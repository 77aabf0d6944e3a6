"""Frozen pretrained parts: no gradients, and eval mode whatever ``train()`` is asked.

A frozen feature stage (cube embedding, scene encoder) or teacher (the guidance flow) must keep
BatchNorm on its running statistics and dropout off while the rest of the model trains, or its
features would depend on the batch and drift from those cached for training.
:func:`freeze_module` freezes a module once; :class:`FrozenModuleMixin` gives a module a
``train()`` that keeps its frozen parts in eval mode afterwards.
"""
from __future__ import annotations

from typing import List, TypeVar

import torch.nn as nn

__all__ = ['freeze_module', 'FrozenModuleMixin']

ModuleT = TypeVar('ModuleT', bound=nn.Module)


def freeze_module(module: ModuleT) -> ModuleT:
    """Turn off the gradients of every parameter and put ``module`` in eval mode.

    Args:
        module (nn.Module): The module.

    Returns:
        nn.Module: ``module`` itself (mmaction backbones' ``train()``, hence ``eval()``, return
        None, so their result cannot be chained on).
    """
    module.requires_grad_(False)
    module.train(False)
    return module


class FrozenModuleMixin:
    """``train(mode)`` that keeps the frozen parts in eval mode and returns the module.

    Put it before the ``nn.Module`` base (``class Encoder(FrozenModuleMixin, BaseModule)``) and
    override :meth:`frozen_modules`. When the list holds the module itself, the whole module
    stays in eval mode; otherwise the module takes ``mode`` and the listed parts are put back
    into eval mode. The base's ``train()`` is still the one that sets the modes (mmaction
    backbones do their own freezing of stages there).
    """

    def frozen_modules(self) -> List[nn.Module]:
        """The sub-modules (or the module itself) that stay in eval mode. Defaults to none."""
        return []

    def train(self, mode: bool = True) -> 'FrozenModuleMixin':
        """Set the training mode; frozen parts stay in eval mode.

        Args:
            mode (bool): Training (True) or eval (False) mode. Defaults to True.

        Returns:
            nn.Module: The module itself (mmaction backbones' ``train()`` returns None).
        """
        frozen = self.frozen_modules()
        if any(part is self for part in frozen):
            super().train(False)
            return self
        super().train(mode)
        for part in frozen:
            part.train(False)
        return self
