"""Random states saved in checkpoints and restored by ``--resume``.

mmengine 0.10.7 re-seeds on resume but does not restore the generators' states, so a resumed run
draws different random numbers from the uninterrupted one: e.g. ``RandomFlipPoseWindow`` (numpy),
the BEiT tube masks and the dataloader's base seed (torch). With this hook a run killed at any
point and resumed from its last checkpoint reaches the same weights as an uninterrupted run with
the same seed (``tests/engine/test_resume_after_kill.py``).
"""
from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmaction.registry import HOOKS

__all__ = ['RandomStateHook']


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Store the python, numpy and torch (CPU and CUDA) random states in every checkpoint under
    ``checkpoint['random_state']`` and restore them when training resumes from it.

    The states are taken when the checkpoint is written (the end of an epoch or interval, after
    the parameter schedulers stepped), which is where the resumed run continues. They are plain
    tensors, numpy arrays and tuples of ints, so they load without ``--trust-checkpoint``.

    Limits: only the main process's states are stored (rank 0 writes the checkpoint), so with
    more than one process they are not restored (each rank keeps its re-seeded generators, as
    without this hook); dataloader workers seed themselves (mmengine's ``worker_init_fn``) and
    ``persistent_workers=True`` carries their states across epochs, which no checkpoint sees:
    exact resumption needs ``num_workers=0`` or non-persistent workers.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_state'] = dict(
            python=random.getstate(),
            numpy=np.random.get_state(),
            torch=torch.get_rng_state(),
            cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('random_state')
        if state is None or not getattr(runner, '_resume', False):
            return  # load_from / Pretrained: a new run keeps its own seed's streams
        if get_world_size() > 1:
            print_log('RandomStateHook: random states are per process and the checkpoint holds '
                      'rank 0\'s only: not restored', logger='current')
            return
        random.setstate(_as_python_state(state['python']))
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'].cpu())
        cuda = state.get('cuda') or []
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
        print_log('RandomStateHook: restored the python, numpy and torch random states',
                  logger='current')


def _as_python_state(state):
    """``random.setstate`` wants tuples; pickling keeps them, but be lenient with lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
