"""Checkpoints that a kill cannot leave half-written, and that never lose the one to resume from.

mmengine 0.10.7's ``CheckpointHook`` has three windows where a killed job damages its work dir:

1. ``save_checkpoint`` pickles to memory, then ``LocalBackend.put`` opens ``epoch_N.pth`` with
   ``'wb'`` and writes it in place: a kill during the write leaves a truncated ``epoch_N.pth``
   (``tools/test.py`` or an explicit ``--resume epoch_N.pth`` then fails on it, and a best
   checkpoint being rewritten is lost);
2. with ``max_keep_ckpts``, the oldest checkpoint is deleted *before* the new one is written:
   with ``max_keep_ckpts=1`` a kill during the write leaves ``last_checkpoint`` naming a deleted
   file, so ``--resume`` cannot continue at all;
3. ``last_checkpoint`` (what ``--resume`` without a path reads) is rewritten in place with
   ``'w'``: a kill in between leaves it empty.

:class:`AtomicCheckpointHook` keeps everything else of ``CheckpointHook`` (intervals, best
checkpoints, publishing, resume bookkeeping) and changes only that: checkpoint files go through
:class:`AtomicLocalBackend` (a temporary sibling renamed into place), ``last_checkpoint`` is
written the same way, and the checkpoint that falls out of ``max_keep_ckpts`` is removed only
after the new one and ``last_checkpoint`` are in place. A kill in that last step leaves one
extra old checkpoint on disk, never a missing one. Remote ``out_dir`` / ``backend_args`` are left
to mmengine's backends.
"""
from __future__ import annotations

import os.path as osp
from pathlib import Path
from typing import Union

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook

from mmaction.registry import HOOKS

from ...fileio import atomic_write_bytes

__all__ = ['AtomicLocalBackend', 'AtomicCheckpointHook']


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic (:func:`atomic_write_bytes`).

    Registered as mmengine file backend ``'atomic_local'`` (not bound to a path prefix, so plain
    paths keep mmengine's ``LocalBackend`` unless ``backend_args=dict(backend='atomic_local')``
    asks for this one).
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(str(filepath), lambda f: f.write(obj))

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)


register_backend('atomic_local', AtomicLocalBackend, force=True)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with atomic checkpoint and ``last_checkpoint`` writes (module docstring).

    Takes exactly ``CheckpointHook``'s arguments. When neither ``backend_args`` nor
    ``file_client_args`` is given and ``out_dir`` is local, checkpoints are written through
    ``backend_args=dict(backend='atomic_local')``.
    """

    def __init__(self, *args, **kwargs) -> None:
        out_dir = kwargs.get('out_dir')
        if (kwargs.get('backend_args') is None and kwargs.get('file_client_args') is None
                and (out_dir is None or '://' not in str(out_dir))):
            kwargs['backend_args'] = dict(backend='atomic_local')
        super().__init__(*args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # CheckpointHook._save_checkpoint_with_step of mmengine 0.10.7, with the removal of the
        # checkpoint that falls out of max_keep_ckpts moved after the writes.
        stale = None
        if self.max_keep_ckpts > 0 and not (len(self.keep_ckpt_ids) > 0
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        if not is_main_process():
            return
        text = str(self.last_ckpt).encode('utf-8')
        atomic_write_bytes(osp.join(runner.work_dir, 'last_checkpoint'), lambda f: f.write(text))

        if stale is not None and stale != step:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(stale))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed checkpoints are folders
                self.file_backend.rmtree(path)
