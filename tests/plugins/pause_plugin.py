"""Test-only hook that parks a training process at a chosen iteration so a test can SIGKILL it.

Loaded through ``custom_imports`` by configs that tests write. Inert unless the environment
variable ``MGENET_TEST_PAUSE_AT`` is set: after training iteration N (1-based, counted over the
whole run, so the optimizer step of iteration N is done) the hook writes the file named by
``MGENET_TEST_PAUSE_MARKER`` and sleeps until it is killed. It draws no random numbers and
changes no state, so a run with the hook and one without are the same run.
"""
import os
import time

from mmengine.hooks import Hook

from mmaction.registry import HOOKS


@HOOKS.register_module()
class PauseAtIterHook(Hook):

    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        pause_at = os.environ.get('MGENET_TEST_PAUSE_AT')
        if not pause_at or runner.iter + 1 != int(pause_at):
            return
        marker = os.environ['MGENET_TEST_PAUSE_MARKER']
        with open(marker + '.tmp', 'w') as f:
            f.write(f'{runner.epoch} {runner.iter + 1} {batch_idx}\n')
        os.replace(marker + '.tmp', marker)
        while True:  # until SIGKILL
            time.sleep(1)
