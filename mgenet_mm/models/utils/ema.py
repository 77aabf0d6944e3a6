"""Exponential moving average of a module's parameters, for an EMA target head.

``MGENetRecognizer(appearance_head_sharing='ema')`` projects the level-2 teacher with a slowly
moving copy of the mask head (BYOL's target network). The update is a plain function so that its
convention is fixed in one place: ``target <- m * target + (1 - m) * source`` (m close to 1 keeps
the target slow). mmengine's ``ExponentialMovingAverage`` names the complementary factor the
momentum, hence this helper instead.
"""
import torch
import torch.nn as nn

__all__ = ['ema_update_']


@torch.no_grad()
def ema_update_(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """Move every parameter of ``target`` towards the same-named one of ``source``, in place.

    ``target.p <- momentum * target.p + (1 - momentum) * source.p``. Buffers are left alone: the
    target keeps its own (a head's running statistics are not averaged weights).

    Args:
        target (nn.Module): The averaged copy (its parameters need no gradient).
        source (nn.Module): The trained module, of the same architecture.
        momentum (float): m in [0, 1]; 0 copies ``source``, 1 leaves ``target`` as it is.

    Raises:
        ValueError: ``momentum`` outside [0, 1], or parameters that do not match by name and
            shape.
    """
    if not 0. <= momentum <= 1.:
        raise ValueError(f'the EMA momentum must be in [0, 1], got {momentum}')
    sources = dict(source.named_parameters())
    targets = dict(target.named_parameters())
    if sources.keys() != targets.keys() or any(
            targets[name].shape != value.shape for name, value in sources.items()):
        raise ValueError('the EMA target and its source have different parameters: '
                         f'{sorted(set(targets) ^ set(sources)) or "shapes differ"}')
    for name, value in sources.items():
        targets[name].mul_(momentum).add_(value.detach(), alpha=1. - momentum)
