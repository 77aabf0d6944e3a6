"""The BSMM write pass (paper eq. 8-9): after the last epoch, over the normal training data."""
from __future__ import annotations

import logging
import time
from typing import Optional

import torch
from mmengine.dist import broadcast, get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmaction.registry import HOOKS


@HOOKS.register_module()
class BSMMWriteHook(Hook):
    """Write MGENet's Behavior-Scene Matching Memory once, at the end of training.

    The paper writes the BSMM "only in the final round", with the behaviour and scene memories
    kept unchanged: after the last training epoch this hook runs the model in eval mode over the
    training dataloader (normal data only; its sampler shuffles, so the first windows that seed
    the memory items come from many videos) and calls ``model.write_bsmm`` on each batch. It runs
    before the checkpoint hook of that epoch, so the last checkpoint holds the written memory.

    In a distributed run every rank writes from its own shard; rank 0's memory is then broadcast
    to all ranks (and is the one saved).

    Args:
        max_batches (int, optional): Stop after this many batches (for quick runs).
        log_interval (int): Log progress every this many batches.
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW) saves the final epoch

    def __init__(self, max_batches: Optional[int] = None, log_interval: int = 50) -> None:
        self.max_batches = max_batches
        self.log_interval = log_interval

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 < runner.max_epochs:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(model, 'bsmm', None) is None:
            return
        self.write(model, runner.train_dataloader)

    def write(self, model, dataloader) -> None:
        """Run the write pass of ``model`` over ``dataloader``."""
        model.bsmm.reset()
        was_training = model.training
        model.eval()
        total = len(dataloader) if self.max_batches is None else \
            min(self.max_batches, len(dataloader))
        written = torch.zeros(model.bsmm.num_items, dtype=torch.long)
        start = time.time()
        for index, data_batch in enumerate(dataloader):
            if index >= total:
                break
            data = model.data_preprocessor(data_batch, False)
            written += model.write_bsmm(data['inputs']).cpu()
            if (index + 1) % self.log_interval == 0 or index + 1 == total:
                print_log(f'BSMM write pass: batch {index + 1}/{total}, '
                          f'{int(written.sum())} windows, {time.time() - start:.1f} s',
                          logger='current')
        _, world_size = get_dist_info()
        if world_size > 1:
            for buffer in model.bsmm.buffers():
                broadcast(buffer, 0)
        filled = int((written > 0).sum())
        print_log(f'BSMM written: {int(written.sum())} windows into {filled}/'
                  f'{model.bsmm.num_items} items', logger='current',
                  level=logging.INFO if filled else logging.WARNING)
        model.train(was_training)
