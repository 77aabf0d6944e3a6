"""The BSMM write pass (paper eq. 8-9): after the last epoch, over the normal training data."""
from __future__ import annotations

import logging
import time
from typing import Any, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import all_gather, broadcast, get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import Tensor

from mmaction.registry import HOOKS


def gather_in_sampler_order(tensors: Sequence[Tensor], seen: Sequence[int], total: int
                            ) -> Tuple[List[Tensor], List[int]]:
    """Every rank's batch, in the order of the global (single-process) sample sequence.

    mmengine's ``DefaultSampler`` deals the (padded) index list out in turn: the ``i``-th sample
    of rank ``r`` is global position ``i * world_size + r``, and positions ``>= total`` (the
    dataset length) are padding repeated from the start. The batches of all ranks are gathered,
    interleaved by position, and the padding is dropped, so each window appears once and in the
    order one process would see it.

    Args:
        tensors (Sequence[Tensor]): This rank's batch tensors, each (B_r, ...), same B_r.
        seen (Sequence[int]): Per rank, how many samples it has gathered before this batch.
        total (int): The dataset length.

    Returns:
        tuple[list[Tensor], list[int]]: The gathered tensors (each (B_global, ...)) and the
        updated per-rank counts of ``seen``.
    """
    _, world_size = get_dist_info()
    local = tensors[0].new_tensor([tensors[0].shape[0]], dtype=torch.long)
    sizes = [int(size) for size in all_gather(local)]
    longest = max(sizes)
    # (rank, index) of every gathered row, in position order: index-major, then rank
    order = [(rank, index) for index in range(longest) for rank in range(world_size)
             if index < sizes[rank] and (seen[rank] + index) * world_size + rank < total]
    gathered = []
    for tensor in tensors:
        padded = tensor.new_zeros((longest, *tensor.shape[1:]))
        padded[:tensor.shape[0]] = tensor
        parts = all_gather(padded)  # world_size x (longest, ...)
        gathered.append(torch.stack([parts[rank][index] for rank, index in order])
                        if order else tensor[:0])
    return gathered, [count + size for count, size in zip(seen, sizes)]


class FinalPassHook(Hook):
    """A pass of the model over the training data once, after the last epoch.

    Subclasses name the model part the pass is for (``part``: skipped when the model has none)
    and implement ``run(model, dataloader)``.

    Args:
        max_batches (int, optional): Stop after this many batches (for quick runs).
        log_interval (int): Log progress every this many batches.
    """

    part = ''

    def __init__(self, max_batches: Optional[int] = None, log_interval: int = 50) -> None:
        self.max_batches = max_batches
        self.log_interval = log_interval

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 < runner.max_epochs:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(model, self.part, None) is None:
            return
        self.run(model, runner.train_dataloader)

    def run(self, model, dataloader) -> Any:
        """The pass itself."""
        raise NotImplementedError

    def num_batches(self, dataloader) -> int:
        """How many batches the pass runs (``max_batches`` at most)."""
        return len(dataloader) if self.max_batches is None else \
            min(self.max_batches, len(dataloader))


@HOOKS.register_module()
class BSMMWriteHook(FinalPassHook):
    """Write MGENet's Behavior-Scene Matching Memory once, at the end of training.

    The paper writes the BSMM "only in the final round", with the behaviour and scene memories
    kept unchanged: after the last training epoch this hook runs the model in eval mode over the
    training dataloader (normal data only; its sampler shuffles, so the first windows that seed
    the memory items come from many videos) and writes each batch's W_b, W_s
    (``model.bsmm_weights``) with ``model.bsmm.write``. It runs before the checkpoint hook of that
    epoch, so the last checkpoint holds the written memory.

    In a distributed run each rank computes the weights of its own shard; the weights of all
    ranks are gathered in the single-process sample order (:func:`gather_in_sampler_order`, the
    sampler's padding dropped), and every rank writes the whole global batch. So every training
    window is written exactly once, as one process with the global batch size would write it
    (the write is order-dependent: empty items are filled by the first distinct windows). Rank
    0's memory is broadcast at the end as well.

    Args:
        max_batches (int, optional): Stop after this many batches (for quick runs).
        log_interval (int): Log progress every this many batches.
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW) saves the final epoch
    part = 'bsmm'

    def run(self, model, dataloader) -> None:
        self.write(model, dataloader)

    def write(self, model, dataloader) -> None:
        """Run the write pass of ``model`` over ``dataloader``."""
        model.bsmm.reset()
        was_training = model.training
        model.eval()
        total = self.num_batches(dataloader)
        _, world_size = get_dist_info()
        seen = [0] * world_size
        written = torch.zeros(model.bsmm.num_items, dtype=torch.long)
        start = time.time()
        for index, data_batch in enumerate(dataloader):
            if index >= total:
                break
            data = model.data_preprocessor(data_batch, False)
            w_b, w_s = model.bsmm_weights(data['inputs'])
            if world_size > 1:
                (w_b, w_s), seen = gather_in_sampler_order((w_b, w_s), seen,
                                                           len(dataloader.dataset))
            written += model.bsmm.write(w_b, w_s).cpu()
            if (index + 1) % self.log_interval == 0 or index + 1 == total:
                print_log(f'BSMM write pass: batch {index + 1}/{total}, '
                          f'{int(written.sum())} windows, {time.time() - start:.1f} s',
                          logger='current')
        if world_size > 1:
            for buffer in model.bsmm.buffers():
                broadcast(buffer, 0)
        filled = int((written > 0).sum())
        print_log(f'BSMM written: {int(written.sum())} windows into {filled}/'
                  f'{model.bsmm.num_items} items', logger='current',
                  level=logging.INFO if filled else logging.WARNING)
        model.train(was_training)
