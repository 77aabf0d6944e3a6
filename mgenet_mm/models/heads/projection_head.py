"""Projection head for the appearance level: H_u and the mask encoder's head (section 3.3)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmaction.registry import MODELS
from torch import Tensor

TokenGrid = Tuple[int, int, int]
#: ``'space'``: f_u / f_m pooled over the h*w positions of each step; ``'none'``: per token.
POOLS = ('space', 'none')


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


def token_cosine_distance(first: Tensor, second: Tensor, eps: float = 1e-8) -> Tensor:
    """``sim = 1 - cos`` of eq. 6 and 14 per token: one value per (window, token).

    Args:
        first (Tensor): Shape (B, P, C).
        second (Tensor): Same shape as ``first``.
        eps (float): Guard against zero norms. Defaults to 1e-8.

    Returns:
        Tensor: Shape (B, P), values in [0, 2].
    """
    if first.shape != second.shape or first.ndim != 3:
        raise ValueError(f'need two (B, P, C) tensors of one shape, got {tuple(first.shape)} '
                         f'and {tuple(second.shape)}')
    return 1. - F.cosine_similarity(first, second, dim=2, eps=eps)


#: Per-token distances to one score per window: every token's mean, the mean of the k largest,
#: or the mean of the k largest grid positions after averaging each position over time.
SCORE_REDUCTIONS = ('mean', 'topk', 'position_topk')


def reduce_tokens(distance: Tensor, reduction: str = 'mean', top_k: int = 1,
                  token_grid: Optional[Sequence[int]] = None) -> Tensor:
    """One score per window from per-token distances.

    ``'mean'``: eq. 14's average over the tokens. ``'topk'``: the mean of the ``top_k`` largest
    tokens (an object on a few tokens). ``'position_topk'``: each (h, w) grid position's
    distances averaged over the t steps first, then the mean of the ``top_k`` largest positions:
    a carried object stays at its position for the whole window, so averaging over time keeps
    it while it evens out the single noisy tokens that ``'topk'`` picks up.

    Args:
        distance (Tensor): Shape (B, P), (t, h, w) row-major token order.
        reduction (str): One of :data:`SCORE_REDUCTIONS`.
        top_k (int): Tokens (``'topk'``) or positions (``'position_topk'``) averaged; clipped
            to the number there is.
        token_grid (Sequence[int], optional): (t, h, w) of the tokens, needed by
            ``'position_topk'``.

    Returns:
        Tensor: Shape (B, ).
    """
    if reduction == 'mean':
        return distance.mean(dim=1)
    if reduction == 'topk':
        return distance.topk(min(top_k, distance.shape[1]), dim=1).values.mean(dim=1)
    if reduction == 'position_topk':
        if token_grid is None:
            raise ValueError("reduction='position_topk' needs the (t, h, w) token_grid")
        grid_t, grid_h, grid_w = (int(size) for size in token_grid)
        if distance.shape[1] != grid_t * grid_h * grid_w:
            raise ValueError(f'{distance.shape[1]} token distances do not fill the token grid '
                             f'{(grid_t, grid_h, grid_w)}')
        # (B, P) -> (B, t, h*w) -> mean over time -> (B, h*w)
        per_position = distance.reshape(-1, grid_t, grid_h * grid_w).mean(dim=1)
        return per_position.topk(min(top_k, grid_h * grid_w), dim=1).values.mean(dim=1)
    raise ValueError(f'reduction must be one of {SCORE_REDUCTIONS}, got {reduction!r}')


@MODELS.register_module()
class ProjectionHead(BaseModule):
    """MLP projection to latent appearance features f_u / f_m, pooled per step or per token.

    ``pool='space'`` (the paper-literal setting of this project so far): tokens (B, P, C) are
    averaged over the h*w positions of each time step, giving (B, t, C), and an MLP maps every
    step to ``out_channels`` features, one vector per step as f_rgb is in the motion level.
    ``pool='none'``: every token is projected, f_u / f_m are (B, P, C_app), "the same size as
    f_b". Pooling dilutes a small object 1/(h*w): at the demo's 4x4 grid an object covering one
    token moves the pooled vector by a sixteenth only.

    The head owns the appearance loss and score:

    - ``loss(f_m, f_u, mask)``: eq. 6, ``L_app = 1 - cos(f_m, f_u)`` with ``f_u`` detached (the
      RGB encoder side is the fixed teacher). Pooled: the cosine is taken over the flattened
      (t*C_app) vector of each window, then averaged over the batch. Per token: the cosine of
      every token, averaged over the masked tokens of each window (the mask encoder has to
      predict what it cannot see), then over the batch.
    - ``appearance_score(f_u, f_m1, f_m2, mask1, mask2)``: eq. 14. Pooled:
      ``(sim(f_u, f_m1) + sim(f_u, f_m2)) / 2`` with ``sim = 1 - cos`` over the same flattened
      vectors, f_m1 / f_m2 from two complementary masks. Per token: each token is scored in the
      pass where it is masked (the two complementary masks cover every token once), and the
      per-token distances are reduced by ``score_reduction`` (``'mean'``: eq. 14's average;
      ``'topk'``: the mean of the ``score_top_k`` largest, for objects on a few tokens).

    Args:
        in_channels (int): Token width C. Defaults to 384.
        out_channels (int): Appearance feature width C_app. Defaults to 256.
        token_grid (Sequence[int]): Default (t, h, w) of the tokens. Defaults to (12, 8, 8).
        hidden_channels (int, optional): Hidden width; ``in_channels`` when None.
        num_layers (int): Number of linear layers (GELU between them). Defaults to 2.
        loss_weight (float): Factor on ``loss_app`` (alpha of eq. 12 may be set here).
            Defaults to 1.
        pool (str): ``'space'`` (one vector per step) or ``'none'`` (one per token).
            Defaults to ``'space'``.
        score_reduction (str): Per-token scores to one per window, one of
            :data:`SCORE_REDUCTIONS` (``pool='none'`` only; see :func:`reduce_tokens`).
            Defaults to ``'mean'``.
        score_top_k (int): Tokens averaged by ``'topk'``, grid positions by
            ``'position_topk'``. Defaults to 8.
        center_momentum (float, optional): Centre the teacher: keep an exponential moving
            average ``c`` of f_u (over windows and tokens or steps, updated by every training
            ``loss`` call as ``c <- m c + (1 - m) mean(f_u)``; buffer ``target_center``, saved
            with the checkpoint) and compare ``f_m - c`` with ``f_u - c`` in eq. 6 and 14. Why:
            f_u of different windows share a large common direction (cosine 0.98 between windows
            on the demo), so ``1 - cos`` is small and flat for every window and its noise hides
            the few tokens an object changes. None (the paper) disables it. Defaults to None.
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
                 pool: str = 'space',
                 score_reduction: str = 'mean',
                 score_top_k: int = 8,
                 center_momentum: Optional[float] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='TruncNormal', layer='Linear', std=0.02, bias=0.)) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        if pool not in POOLS:
            raise ValueError(f'pool must be one of {POOLS}, got {pool!r}')
        if score_reduction not in SCORE_REDUCTIONS:
            raise ValueError(f'score_reduction must be one of {SCORE_REDUCTIONS}, got '
                             f'{score_reduction!r}')
        if score_top_k < 1:
            raise ValueError(f'score_top_k must be >= 1, got {score_top_k}')
        self.pool = pool
        if center_momentum is not None:
            if not 0. <= center_momentum < 1.:
                raise ValueError(f'center_momentum must be in [0, 1), got {center_momentum}')
            self.register_buffer('target_center', torch.zeros(out_channels))
            self.register_buffer('center_updates', torch.zeros((), dtype=torch.long))
        self.center_momentum = center_momentum
        self.score_reduction = score_reduction
        self.score_top_k = int(score_top_k)
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
        """Pool tokens over space per step (``pool='space'``) and project them.

        Args:
            tokens (Tensor): Shape (B, P, C), (t, h, w) row-major token order (e.g. the
                behaviour-memory read-out f_b, or the mask encoder's output).
            token_grid (Sequence[int], optional): (t, h, w); the configured grid when None.

        Returns:
            Tensor: Shape (B, t, out_channels), or (B, P, out_channels) with ``pool='none'``.
        """
        grid_t, grid_h, grid_w = tuple(token_grid) if token_grid is not None else self.token_grid
        batch_size, num_tokens, channels = tokens.shape
        if num_tokens != grid_t * grid_h * grid_w:
            raise ValueError(f'{num_tokens} tokens do not fill the token grid '
                             f'{(grid_t, grid_h, grid_w)}')
        if self.pool == 'none':
            return self.mlp(tokens)  # (B, P, C_app)
        # (B, P, C) -> (B, t, h*w, C) -> mean over space -> (B, t, C)
        pooled = tokens.reshape(batch_size, grid_t, grid_h * grid_w, channels).mean(dim=2)
        return self.mlp(pooled)

    @torch.no_grad()
    def _update_center(self, f_u: Tensor) -> None:
        # (B, t or P, C_app) -> (C_app,); the first update takes the batch mean as it is
        batch_mean = f_u.reshape(-1, f_u.shape[-1]).mean(dim=0)
        momentum = self.center_momentum if int(self.center_updates) > 0 else 0.
        self.target_center.mul_(momentum).add_((1. - momentum) * batch_mean)
        self.center_updates += 1

    def _centred(self, features: Tensor) -> Tensor:
        return features - self.target_center

    def loss(self, f_m: Tensor, f_u: Tensor,
             mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Appearance distillation loss, eq. 6.

        Args:
            f_m (Tensor): Mask-encoder features, (B, t, C_app) pooled or (B, P, C_app).
            f_u (Tensor): Unmasked-branch features, same shape; detached here.
            mask (Tensor, optional): (B, P) bool, the tokens hidden from the mask encoder.
                Required per token (the loss is averaged over them); ignored when pooled.

        Returns:
            dict[str, Tensor]: ``loss_app``, the batch mean of ``1 - cos``.
        """
        f_u = f_u.detach()
        if self.center_momentum is not None:
            if self.training:
                self._update_center(f_u)
            f_m, f_u = self._centred(f_m), self._centred(f_u)
        if self.pool == 'space':
            return dict(loss_app=self.loss_weight * cosine_distance(f_m, f_u).mean())
        if mask is None or mask.shape != f_m.shape[:2]:
            raise ValueError('the per-token appearance loss needs the (B, P) mask of the pass, '
                             f'got {None if mask is None else tuple(mask.shape)} for f_m '
                             f'{tuple(f_m.shape)}')
        distance = token_cosine_distance(f_m, f_u)  # (B, P)
        weights = mask.to(distance.dtype)
        per_window = (distance * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.)
        return dict(loss_app=self.loss_weight * per_window.mean())

    def appearance_score(self, f_u: Tensor, f_m1: Tensor, f_m2: Tensor,
                         mask1: Optional[Tensor] = None,
                         mask2: Optional[Tensor] = None,
                         token_grid: Optional[Sequence[int]] = None) -> Tensor:
        """Appearance anomaly score, eq. 14.

        Args:
            f_u (Tensor): Unmasked-branch features, (B, t, C_app) pooled or (B, P, C_app).
            f_m1 (Tensor): Mask-encoder features under a mask, same shape.
            f_m2 (Tensor): Mask-encoder features under the complementary mask.
            mask1 (Tensor, optional): (B, P) bool, the first pass's mask (per token only).
            mask2 (Tensor, optional): (B, P) bool, the second pass's mask; every token must be
                masked in exactly one of the two passes.
            token_grid (Sequence[int], optional): (t, h, w) of the tokens, for
                ``score_reduction='position_topk'``; the configured grid when None.

        Returns:
            Tensor: S_app of shape (B, ).
        """
        if self.center_momentum is not None:
            f_u, f_m1, f_m2 = self._centred(f_u), self._centred(f_m1), self._centred(f_m2)
        if self.pool == 'space':
            return 0.5 * cosine_distance(f_u, f_m1) + 0.5 * cosine_distance(f_u, f_m2)
        if mask1 is None or mask2 is None:
            raise ValueError('the per-token appearance score needs the masks of both passes')
        if not bool((mask1 ^ mask2).all()):
            raise ValueError('the two masks of eq. 14 must be complementary: every token '
                             'masked in exactly one pass')
        # each token's distance from the pass in which it was masked
        distance = torch.where(mask1, token_cosine_distance(f_u, f_m1),
                               token_cosine_distance(f_u, f_m2))  # (B, P)
        return reduce_tokens(distance, self.score_reduction, self.score_top_k,
                             token_grid if token_grid is not None else self.token_grid)
