"""STG-NF as a recognizer: the pose flow trained and tested by mmengine's runner."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch
from mmaction.models import BaseRecognizer
from mmaction.registry import MODELS
from mmaction.utils import SampleList

from ..model_converters.stgnf_converter import official_keys_to_recognizer
from ..utils.checkpoint import load_state_dict_checked


def pose_inputs(inputs: torch.Tensor) -> torch.Tensor:
    """(B, T, V, C) packed skeleton windows -> (B, C, T, V), the flow's layout."""
    return inputs.permute(0, 3, 1, 2).contiguous()  # (B, T, V, C) -> (B, C, T, V)


@MODELS.register_module()
class STGNFRecognizer(BaseRecognizer):
    """Train and score the STG-NF flow on skeleton windows.

    ``loss`` minimises the nll (bits per dimension) of normal windows under the prior N(R, 1);
    ``predict`` attaches ``anomaly_scores=dict(nll=...)``, a float, to every data sample (higher
    = more abnormal; the official normality score is ``-nll``), which :class:`VADAUCMetric`
    reads.

    Official STG-NF checkpoints (``flow.*`` and ``prior_h*`` keys at the top level) can be given
    directly as ``load_from`` or to ``tools/test.py``: their keys are moved under ``backbone.``,
    and any key or shape mismatch is an error that lists the keys. Any other checkpoint given
    to ``tools/train.py`` / ``tools/test.py`` must fit too: their runner
    (:class:`~mgenet_mm.engine.CheckedRunner`) loads this project's models strictly, unless the
    config sets ``allow_partial_checkpoint=True``.

    Args:
        backbone (dict): The :class:`STGNF` config.
        data_preprocessor (dict, optional): Defaults to
            :class:`~mgenet_mm.models.data_preprocessors.PoseWindowDataPreprocessor` (stacking,
            the numbers of ``ActionDataPreprocessor``, without its per-window cost).
        train_cfg, test_cfg (dict, optional): Unused, kept for the mmaction interface.
    """

    def __init__(self, backbone: dict, **kwargs: Any) -> None:
        if kwargs.get('data_preprocessor') is None:
            kwargs['data_preprocessor'] = dict(type='PoseWindowDataPreprocessor')
        super().__init__(backbone=backbone, **kwargs)
        self._register_load_state_dict_pre_hook(self._adopt_official_keys)

    def _adopt_official_keys(self, state_dict: Dict[str, torch.Tensor], prefix: str,
                             *args: Any) -> None:
        moved = official_keys_to_recognizer(state_dict, prefix)
        if moved is None:
            return
        # Checked against the backbone here, so that a mismatch names the official keys:
        # after the move, a lenient loader (mmengine's strict=False) would only log them.
        load_state_dict_checked(self.backbone, moved, load=False,
                                source='official STG-NF checkpoint',
                                target='the configured STGNF backbone')
        for key, value in moved.items():
            state_dict[f'{prefix}backbone.{key}'] = value

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'backbone',
                     **kwargs: Any) -> Tuple[Tuple[torch.Tensor, torch.Tensor], dict]:
        """Latent z (B, C, T, V) and nll (B,) of (B, T, V, C) windows."""
        return self.backbone(pose_inputs(inputs)), dict()

    def loss(self, inputs: torch.Tensor, data_samples: SampleList,
             **kwargs: Any) -> Dict[str, torch.Tensor]:
        (_, nll), _ = self.extract_feat(inputs)
        return dict(loss_nll=nll.mean())

    def predict(self, inputs: torch.Tensor, data_samples: SampleList,
                **kwargs: Any) -> SampleList:
        (_, nll), _ = self.extract_feat(inputs)
        # One transfer per batch, then plain floats: a 0-d tensor and a .cpu() per window cost
        # about 20 us each, more than a third of the flow itself.
        values = nll.detach().cpu().tolist()  # (B,) float32 values as Python floats
        for sample, value in zip(data_samples, values):
            sample.anomaly_scores = dict(nll=value)
        return data_samples


__all__: List[str] = ['STGNFRecognizer', 'pose_inputs']
