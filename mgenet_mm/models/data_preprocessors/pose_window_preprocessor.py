"""Batching of skeleton windows for the STG-NF recognizer."""
from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from mmengine.structures import BaseDataElement

from mmaction.registry import MODELS

__all__ = ['PoseWindowDataPreprocessor']


@MODELS.register_module()
class PoseWindowDataPreprocessor(BaseDataPreprocessor):
    """Stack (T, V, C) pose windows into one float32 batch on the model's device.

    The result is that of ``ActionDataPreprocessor()`` with its defaults (stack, float32, no
    normalisation) on same-shaped windows, number for number. What it leaves out is mmengine's
    generic ``cast_data`` walk, which visits every window tensor and every data sample of a batch
    through ``typing`` instance checks: about 19 us a window, half the STG-NF flow's own time
    on a 2-core CPU. Here the batch is stacked once and moved once, and each data sample is
    moved by its own ``to`` (which a sample without tensors answers with a cheap copy).

    Required keys of a batch: ``inputs``, a list of B (T, V, C) tensors (``pseudo_collate`` or
    :func:`~mgenet_mm.datasets.pose_window_collate`) or one (B, T, V, C) tensor; optional
    ``data_samples``, B data elements. Other keys are moved by ``cast_data``.

    Args:
        non_blocking (bool): Asynchronous host-to-device copies.
    """

    def forward(self, data: Mapping[str, Any], training: bool = False) -> dict:
        """Stack and move one batch.

        Args:
            data (Mapping): A collated batch (see the class docstring).
            training (bool): Unused: nothing differs between training and testing.

        Returns:
            dict: ``inputs`` (B, T, V, C) float32 on the device, ``data_samples`` moved (or
            None), other keys moved.

        Raises:
            TypeError: A batch that is not a mapping with ``inputs``, or inputs that are not
                tensors.
            ValueError: Windows of different shapes (they cannot be stacked; padding would
                invent joints and frames).
        """
        if not isinstance(data, Mapping) or 'inputs' not in data:
            raise TypeError(f'{type(self).__name__} expects a batch dict with "inputs", got '
                            f'{type(data).__name__}')
        result = {key: self.cast_data(value) for key, value in data.items()
                  if key not in ('inputs', 'data_samples')}
        result['inputs'] = self._stack(data['inputs']).to(
            self.device, dtype=torch.float32, non_blocking=self._non_blocking)
        samples = data.get('data_samples')
        if samples is not None:
            samples = self._move_samples(samples)
        result['data_samples'] = samples
        return result

    def _stack(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """(B, T, V, C) from a batch tensor or a list of B (T, V, C) windows."""
        if isinstance(inputs, torch.Tensor):
            return inputs
        if not isinstance(inputs, Sequence) or isinstance(inputs, (str, bytes)) \
                or not all(isinstance(window, torch.Tensor) for window in inputs):
            kinds = sorted({type(window).__name__ for window in inputs}) \
                if isinstance(inputs, Sequence) else [type(inputs).__name__]
            raise TypeError(f'{type(self).__name__}: "inputs" must be a tensor or a list of '
                            f'(T, V, C) window tensors, got {", ".join(kinds)}')
        if not inputs:
            raise ValueError(f'{type(self).__name__}: an empty batch (no windows)')
        shapes = {tuple(window.shape) for window in inputs}
        if len(shapes) != 1:
            raise ValueError(f'{type(self).__name__}: windows of different shapes '
                             f'{sorted(shapes)} cannot form one batch (check seg_len and the '
                             'number of joints of the pose files)')
        return torch.stack(list(inputs))  # B x (T, V, C) -> (B, T, V, C)

    def _move_samples(self, samples: Sequence[Any]) -> list:
        """Each data element moved by its own ``to``; anything else through ``cast_data``."""
        return [sample.to(self.device, non_blocking=self._non_blocking)
                if isinstance(sample, BaseDataElement) else self.cast_data(sample)
                for sample in samples]
