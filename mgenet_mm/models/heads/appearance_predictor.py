"""Predictor on the mask side of the appearance level: a guard against collapse of a shared H_u.

When the mask head H_m also projects the teacher (``MGENetRecognizer(appearance_head_sharing=
'shared' | 'ema')``), L_app = 1 - cos(f_m, sg(f_u)) trains one head on both sides of the cosine.
A constant H_m would then give L_app = 0; as in BYOL and SimSiam, a small predictor P on the
student side only (f_m = P(H_m(mask tokens))) breaks the symmetry: the student must predict the
target through P, and the stop-gradient target cannot follow it.
"""
from typing import List, Optional, Union

import torch.nn as nn
from mmengine.model import BaseModule
from mmaction.registry import MODELS
from torch import Tensor

#: Normalisation after the first linear layer: LayerNorm per vector, BatchNorm over the vectors
#: of the batch (SimSiam's choice), or none.
NORMS = ('layer', 'batch', 'none')


@MODELS.register_module()
class AppearancePredictor(BaseModule):
    """Two-layer MLP applied to every vector of f_m: Linear, norm, GELU, Linear.

    It maps the last dimension and keeps the others, so it serves both the pooled f_m
    (B, t, C_app) and the per-token f_m (B, P, C_app).

    Args:
        in_channels (int): Width C_app of f_m (the mask head's ``out_channels``).
        hidden_channels (int, optional): Hidden width; ``in_channels`` when None.
        norm (str): ``'layer'``, ``'batch'`` or ``'none'``. With ``'batch'`` the statistics are
            taken over all the vectors of the batch (B * t or B * P of them), and the running
            statistics are used in eval mode. Defaults to ``'layer'``.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to truncated
            normal (std 0.02) linear layers, as :class:`ProjectionHead`.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: Optional[int] = None,
                 norm: str = 'layer',
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='TruncNormal', layer='Linear', std=0.02, bias=0.)) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 1:
            raise ValueError(f'in_channels must be >= 1, got {in_channels}')
        if norm not in NORMS:
            raise ValueError(f'norm must be one of {NORMS}, got {norm!r}')
        hidden_channels = hidden_channels or in_channels
        self.in_channels = in_channels
        self.out_channels = in_channels
        self.norm_type = norm
        self.fc1 = nn.Linear(in_channels, hidden_channels)
        if norm == 'layer':
            self.norm: nn.Module = nn.LayerNorm(hidden_channels)
        elif norm == 'batch':
            self.norm = nn.BatchNorm1d(hidden_channels)
        else:
            self.norm = nn.Identity()
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_channels, in_channels)

    def forward(self, features: Tensor) -> Tensor:
        """Predict the target vectors.

        Args:
            features (Tensor): f_m of shape (..., in_channels).

        Returns:
            Tensor: Same shape as ``features``.
        """
        if features.shape[-1] != self.in_channels:
            raise ValueError(f'the predictor takes {self.in_channels} channels, got features '
                             f'of shape {tuple(features.shape)}')
        hidden = self.fc1(features)
        if self.norm_type == 'batch':
            # (..., C_h) -> (N, C_h): BatchNorm1d normalises over the rows
            hidden = self.norm(hidden.reshape(-1, hidden.shape[-1])).reshape(hidden.shape)
        else:
            hidden = self.norm(hidden)
        return self.fc2(self.act(hidden))
