"""Calibrated fusion of MGENet's anomaly components on the scale of normal training windows.

Eq. 16 sums the components after a min-max normalisation; over which windows the paper does not
say. Normalising over the test set makes one video's score depend on a test set, and stretches a
near-constant component to the span of the others. The calibrated fusion instead puts every
component on the scale of the **normal training windows**: after training (and after the BSMM
write pass, so that S_mm exists), :class:`~mgenet_mm.engine.hooks.ScoreCalibrationHook` scores
the training windows once and stores, per component c, a robust centre m_c and spread d_c in
this module's buffers, saved with the checkpoint. Every later score, in ``tools/test.py``,
``score_video`` or streaming, is then ``(s_c - m_c) / d_c`` from the same stored numbers, and
the metric sums them with the configured weights without any further normalisation
(``VADAUCMetric(normalize=False)``).

Spread (``spread``):

- ``'iqr'``: the interquartile range ``q75 - q25``;
- ``'quantile'``: ``q_p - median`` with ``p = quantile`` (e.g. 0.99): one unit is then the
  distance from a typical normal window to the upper tail of the normal windows, the part of
  the scale an anomaly threshold lives in.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from mmaction.registry import MODELS
from torch import Tensor

SPREADS = ('iqr', 'quantile')


def robust_center_spread(values: Tensor, spread: str = 'iqr',
                         quantile: float = 0.99) -> Tuple[float, float]:
    """Median and robust spread of one component's scores.

    Args:
        values (Tensor): (N,) finite scores, N >= 1.
        spread (str): ``'iqr'`` (q75 - q25) or ``'quantile'`` (q_quantile - median).
        quantile (float): The upper quantile of ``'quantile'``, in (0.5, 1].

    Returns:
        tuple[float, float]: ``(median, spread)``; the spread is > 0, or 0 when the scores are
        constant over that range (the caller decides what to do then).

    Raises:
        ValueError: No scores, non-finite scores, or an unknown spread.
    """
    values = values.detach().to(torch.float64).flatten()
    if values.numel() == 0:
        raise ValueError('no scores to calibrate on')
    if not bool(torch.isfinite(values).all()):
        raise ValueError('non-finite anomaly scores among the calibration windows')
    # torch.quantile interpolates linearly, as numpy's default does
    median = float(torch.quantile(values, 0.5))
    if spread == 'iqr':
        width = float(torch.quantile(values, 0.75) - torch.quantile(values, 0.25))
    elif spread == 'quantile':
        width = float(torch.quantile(values, quantile)) - median
    else:
        raise ValueError(f'spread must be one of {SPREADS}, got {spread!r}')
    return median, width


@MODELS.register_module()
class ScoreCalibration(BaseModule):
    """Robust per-component standardisation fitted on normal training windows (see module).

    Buffers (saved with the checkpoint): ``center`` and ``spread`` (one entry per name of
    ``components``) and ``num_windows`` (how many windows they were fitted on; 0 = not fitted).

    Args:
        components (Sequence[str]): Component names, in buffer order. Defaults to
            ``('mo', 'app', 'mm')``.
        spread (str): ``'iqr'`` or ``'quantile'``. Defaults to ``'iqr'``.
        quantile (float): Upper quantile of ``spread='quantile'``. Defaults to 0.99.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 components: Sequence[str] = ('mo', 'app', 'mm'),
                 spread: str = 'iqr',
                 quantile: float = 0.99,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if spread not in SPREADS:
            raise ValueError(f'spread must be one of {SPREADS}, got {spread!r}')
        if not 0.5 < quantile <= 1.:
            raise ValueError(f'quantile must be in (0.5, 1], got {quantile}')
        if len(set(components)) != len(components) or not components:
            raise ValueError(f'components must be distinct names, got {list(components)}')
        self.components = tuple(components)
        self.spread_kind = spread
        self.quantile = float(quantile)
        self.register_buffer('center', torch.zeros(len(self.components), dtype=torch.float64))
        self.register_buffer('spread', torch.ones(len(self.components), dtype=torch.float64))
        self.register_buffer('num_windows', torch.zeros((), dtype=torch.long))

    @property
    def is_fitted(self) -> bool:
        """Whether the statistics have been fitted (or loaded from a checkpoint)."""
        return bool(self.num_windows.item() > 0)

    @torch.no_grad()
    def fit(self, components: Mapping[str, Tensor]) -> Dict[str, Tuple[float, float]]:
        """Fit centre and spread of every configured component that is present.

        Args:
            components (Mapping[str, Tensor]): Name -> (N,) scores of normal windows. A
                configured component that is absent keeps centre 0 and spread 1.

        Returns:
            dict: Name -> ``(center, spread)`` as fitted.

        Raises:
            ValueError: The components have different lengths, or one is constant over the
                spread's range (it could not be put on any scale).
        """
        present = [name for name in self.components if name in components]
        lengths = {int(components[name].numel()) for name in present}
        if len(lengths) > 1:
            raise ValueError(f'calibration components {present} must score the same windows, '
                             f'got lengths {sorted(lengths)}')
        num_windows = lengths.pop() if present else 0
        fitted = {}
        for name in present:
            center, width = robust_center_spread(components[name], self.spread_kind,
                                                 self.quantile)
            if not width > 0:
                raise ValueError(
                    f'component {name!r} is constant over the {self.spread_kind} of the '
                    f'{num_windows} calibration windows (spread {width}): '
                    'it cannot be standardised; drop it from score_weights or check the model')
            index = self.components.index(name)
            self.center[index] = center
            self.spread[index] = width
            fitted[name] = (center, width)
        self.num_windows.fill_(num_windows)
        return fitted

    def forward(self, components: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        """``(s_c - center_c) / spread_c`` for every configured component present; others are
        passed through unchanged.

        Args:
            components (Mapping[str, Tensor]): Name -> (B,) raw scores.

        Returns:
            dict[str, Tensor]: Name -> (B,) standardised scores, dtype of the input.
        """
        out = {}
        for name, values in components.items():
            if name in self.components:
                index = self.components.index(name)
                center = self.center[index].to(values.dtype)
                spread = self.spread[index].to(values.dtype)
                values = (values - center) / spread
            out[name] = values
        return out

    def stats(self) -> Dict[str, Dict[str, float]]:
        """Name -> ``{'center', 'spread'}`` as stored (for logs and results files)."""
        return {name: dict(center=float(self.center[i]), spread=float(self.spread[i]))
                for i, name in enumerate(self.components)}


__all__ = ['ScoreCalibration', 'robust_center_spread', 'SPREADS']
