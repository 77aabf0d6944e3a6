"""Fit MGENet's calibrated fusion on the normal training windows, once, after training."""
import logging
import time
from typing import Dict, List

import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.logging import print_log

from mmaction.registry import HOOKS
from .bsmm_write_hook import FinalPassHook


@HOOKS.register_module()
class ScoreCalibrationHook(FinalPassHook):
    """Score the training windows once after the last epoch and fit ``model.score_calibration``.

    Runs after :class:`BSMMWriteHook` (S_mm needs the written BSMM) and before the checkpoint
    hook saves the last epoch, so that checkpoint holds the fitted statistics
    (:class:`~mgenet_mm.models.modules.ScoreCalibration`). The model is in eval mode and scores
    every training window with ``anomaly_components``, as the test loop would (raw components,
    the test mask pair of eq. 14). In a distributed run every rank scores its shard and the
    components of all ranks are gathered before fitting (the statistics are order-free; the
    sampler's padding repeats a few windows, which moves a median by a negligible amount).

    A model without ``score_calibration`` is left alone.

    Args:
        max_batches (int, optional): Stop after this many batches (for quick runs).
        log_interval (int): Log progress every this many batches.
    """

    priority = 'NORMAL'  # after BSMMWriteHook (ABOVE_NORMAL), before CheckpointHook (VERY_LOW)
    part = 'score_calibration'

    def run(self, model, dataloader) -> Dict[str, tuple]:
        return self.fit(model, dataloader)

    def fit(self, model, dataloader) -> Dict[str, tuple]:
        """Score ``dataloader``'s windows with ``model`` and fit its calibration.

        Returns:
            dict: Component -> ``(center, spread)`` as fitted.
        """
        was_training = model.training
        model.eval()
        total = self.num_batches(dataloader)
        parts: Dict[str, List[torch.Tensor]] = {}
        start = time.time()
        for index, data_batch in enumerate(dataloader):
            if index >= total:
                break
            data = model.data_preprocessor(data_batch, False)
            for name, values in model.anomaly_components(data['inputs']).items():
                parts.setdefault(name, []).append(values.detach().cpu())
            if (index + 1) % self.log_interval == 0 or index + 1 == total:
                print_log(f'score calibration pass: batch {index + 1}/{total}, '
                          f'{time.time() - start:.1f} s', logger='current')
        components = {name: torch.cat(values) for name, values in parts.items()}
        _, world_size = get_dist_info()
        if world_size > 1:
            gathered = all_gather_object(components)
            components = {name: torch.cat([rank[name] for rank in gathered])
                          for name in components}
        fitted = model.score_calibration.fit(components)
        summary = ', '.join(f'{name}: median {center:.6g}, spread {spread:.6g}'
                            for name, (center, spread) in fitted.items())
        missing = sorted(set(model.score_calibration.components) - set(fitted))
        print_log(f'score calibration fitted on {int(model.score_calibration.num_windows)} '
                  f'training windows: {summary}' +
                  (f'; not scored, left at 0 / 1: {missing}' if missing else ''),
                  logger='current', level=logging.WARNING if missing else logging.INFO)
        model.train(was_training)
        return fitted
