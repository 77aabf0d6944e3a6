"""Fit MGENet's whitened level-1 gap on the normal training windows, once, after training."""
import time

import torch
from mmengine.dist import all_reduce, get_dist_info
from mmengine.logging import print_log

from mmaction.registry import HOOKS
from mgenet_mm.models.modules.gap_whitening import gap_moments
from .bsmm_write_hook import FinalPassHook


@HOOKS.register_module()
class GapWhiteningHook(FinalPassHook):
    """Collect the gap f_sk - f_rgb of every training window after the last epoch and fit
    ``model.motion_whitening`` (:class:`~mgenet_mm.models.modules.GapWhitening`).

    Runs after :class:`BSMMWriteHook` (so the BSMM write sees the training loader's shuffle as
    without this hook), before :class:`ScoreCalibrationHook` (which must calibrate the whitened
    S_mo) and the checkpoint hook (so the last checkpoint holds the statistics). The model is in
    eval mode. The statistics are exact sums over the frames, so their order does not matter; in
    a distributed run the sums of all ranks are added (the sampler's padding repeats a few
    windows).

    A model without ``motion_whitening`` is left alone.

    Args:
        max_batches (int, optional): Stop after this many batches (for quick runs).
        log_interval (int): Log progress every this many batches.
    """

    priority = 45  # between BSMMWriteHook (ABOVE_NORMAL = 40) and ScoreCalibrationHook (50)
    part = 'motion_whitening'

    def run(self, model, dataloader) -> None:
        self.fit(model, dataloader)

    def fit(self, model, dataloader) -> None:
        """Collect the gaps of ``dataloader``'s windows and fit ``model.motion_whitening``."""
        was_training = model.training
        model.eval()
        total_batches = self.num_batches(dataloader)
        moments = None
        start = time.time()
        for index, data_batch in enumerate(dataloader):
            if index >= total_batches:
                break
            data = model.data_preprocessor(data_batch, False)
            batch = gap_moments(model.motion_gap(data['inputs']))
            moments = batch if moments is None else tuple(a + b for a, b in zip(moments, batch))
            if (index + 1) % self.log_interval == 0 or index + 1 == total_batches:
                print_log(f'gap whitening pass: batch {index + 1}/{total_batches}, '
                          f'{time.time() - start:.1f} s', logger='current')
        if moments is None:
            raise RuntimeError('the gap whitening pass saw no training batch')
        _, world_size = get_dist_info()
        if world_size > 1:
            for value in moments:
                all_reduce(value, op='sum')
        model.motion_whitening.fit(*moments)
        eigenvalues = torch.linalg.eigvalsh(torch.linalg.inv(model.motion_whitening.precision))
        print_log(f'gap whitening fitted on {int(model.motion_whitening.num_frames)} frames: '
                  f'|mean| {float(model.motion_whitening.mean.norm()):.4g}, regularised '
                  f'covariance eigenvalues {float(eigenvalues.min()):.3g} to '
                  f'{float(eigenvalues.max()):.3g}', logger='current')
        model.train(was_training)
