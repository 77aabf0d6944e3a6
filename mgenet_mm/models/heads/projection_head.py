"""Projection head for the appearance level: H_u and the mask encoder's head (section 3.3)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmaction.registry import MODELS
from torch import Tensor

TokenGrid = Tuple[int, int, int]


def cosine_distance(first: Tensor, second: Tensor, eps: float = 1e-8) -> Tensor:
    """``sim(a, b) = 1 - a.b / (||a|| ||b||)`` of eq. 6 and 14, one value per window.

    Each window's features are flattened into one vector, so the cosine compares whole windows.

    Args:
        first (Tensor): Shape (B, ...).
        second (Tensor): Same shape as ``first``.
        eps (float): Guard against zero norms. Defaults to 1e-8.

    Returns:
        Tensor: Shape (B, ), values in [0, 2].
    """
    if first.shape != second.shape:
        raise ValueError(f'shapes differ: {tuple(first.shape)} vs {tuple(second.shape)}')
    # (B, t, C_app) -> (B, t*C_app)
    return 1. - F.cosine_similarity(first.flatten(1), second.flatten(1), dim=1, eps=eps)


@MODELS.register_module()
class ProjectionHead(BaseModule):
    """Spatially pooled MLP projection to latent appearance features f_u / f_m (B, t, C_app).

    Tokens (B, P, C) are averaged over the h*w positions of each time step, giving (B, t, C), and
    an MLP maps every step to ``out_channels`` features. Pooling first keeps the head cheap and
    makes f_u and f_m one vector per step, as f_rgb is in the motion level.

    The head owns the appearance loss and score:

    - ``loss(f_m, f_u)``: eq. 6, ``L_app = 1 - cos(f_m, f_u)`` with ``f_u`` detached (the RGB
      encoder side is the fixed teacher). The cosine is taken over the flattened (t*C_app) vector
      of each window, then averaged over the batch.
    - ``appearance_score(f_u, f_m1, f_m2)``: eq. 14, ``(sim(f_u, f_m1) + sim(f_u, f_m2)) / 2``
      with ``sim = 1 - cos`` over the same flattened vectors, f_m1 / f_m2 from two complementary
      masks.

    Args:
        in_channels (int): Token width C. Defaults to 384.
        out_channels (int): Appearance feature width C_app. Defaults to 256.
        token_grid (Sequence[int]): Default (t, h, w) of the tokens. Defaults to (12, 8, 8).
        hidden_channels (int, optional): Hidden width; ``in_channels`` when None.
        num_layers (int): Number of linear layers (GELU between them). Defaults to 2.
        loss_weight (float): Factor on ``loss_app`` (alpha of eq. 12 may be set here).
            Defaults to 1.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to truncated
            normal (std 0.02) linear layers.
    """

    def __init__(self,
                 in_channels: int = 384,
                 out_channels: int = 256,
                 token_grid: Sequence[int] = (12, 8, 8),
                 hidden_channels: Optional[int] = None,
                 num_layers: int = 2,
                 loss_weight: float = 1.,
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='TruncNormal', layer='Linear', std=0.02, bias=0.)) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.token_grid: TokenGrid = tuple(int(size) for size in token_grid)
        self.loss_weight = loss_weight
        hidden_channels = hidden_channels or in_channels
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        layers: List[nn.Module] = []
        for index in range(num_layers):
            if index > 0:
                layers.append(nn.GELU())
            layers.append(nn.Linear(widths[index], widths[index + 1]))
        self.mlp = nn.Sequential(*layers)

    def forward(self, tokens: Tensor, token_grid: Optional[Sequence[int]] = None) -> Tensor:
        """Pool tokens over space per step and project them.

        Args:
            tokens (Tensor): Shape (B, P, C), (t, h, w) row-major token order (e.g. the
                behaviour-memory read-out f_b, or the mask encoder's output).
            token_grid (Sequence[int], optional): (t, h, w); the configured grid when None.

        Returns:
            Tensor: Shape (B, t, out_channels).
        """
        grid_t, grid_h, grid_w = tuple(token_grid) if token_grid is not None else self.token_grid
        batch_size, num_tokens, channels = tokens.shape
        if num_tokens != grid_t * grid_h * grid_w:
            raise ValueError(f'{num_tokens} tokens do not fill the token grid '
                             f'{(grid_t, grid_h, grid_w)}')
        # (B, P, C) -> (B, t, h*w, C) -> mean over space -> (B, t, C)
        pooled = tokens.reshape(batch_size, grid_t, grid_h * grid_w, channels).mean(dim=2)
        return self.mlp(pooled)

    def loss(self, f_m: Tensor, f_u: Tensor) -> Dict[str, Tensor]:
        """Appearance distillation loss, eq. 6.

        Args:
            f_m (Tensor): Mask-encoder features, shape (B, t, C_app).
            f_u (Tensor): Unmasked-branch features, shape (B, t, C_app); detached here.

        Returns:
            dict[str, Tensor]: ``loss_app``, the batch mean of ``1 - cos``.
        """
        return dict(loss_app=self.loss_weight * cosine_distance(f_m, f_u.detach()).mean())

    @staticmethod
    def appearance_score(f_u: Tensor, f_m1: Tensor, f_m2: Tensor) -> Tensor:
        """Appearance anomaly score, eq. 14.

        Args:
            f_u (Tensor): Unmasked-branch features, shape (B, t, C_app).
            f_m1 (Tensor): Mask-encoder features under a mask, shape (B, t, C_app).
            f_m2 (Tensor): Mask-encoder features under the complementary mask.

        Returns:
            Tensor: S_app of shape (B, ).
        """
        return 0.5 * cosine_distance(f_u, f_m1) + 0.5 * cosine_distance(f_u, f_m2)
