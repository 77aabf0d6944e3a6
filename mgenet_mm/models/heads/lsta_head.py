"""Spatio-temporal head H_B with Large Spatial-Temporal Attention (paper section 3.2)."""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmaction.registry import MODELS
from torch import Tensor

TokenGrid = Tuple[int, int, int]


def tokens_to_grid(tokens: Tensor, token_grid: Sequence[int]) -> Tensor:
    """Turn encoder tokens into the per-step feature maps the head works on.

    Args:
        tokens (Tensor): Shape (B, P, C), ``P = t*h*w`` in (t, h, w) row-major order (the
            order of :class:`SpaceTimeViT`).
        token_grid (Sequence[int]): (t, h, w).

    Returns:
        Tensor: Shape (B, t, C, h, w).
    """
    grid_t, grid_h, grid_w = token_grid
    batch_size, num_tokens, channels = tokens.shape
    if num_tokens != grid_t * grid_h * grid_w:
        raise ValueError(f'{num_tokens} tokens do not fill the token grid {tuple(token_grid)}')
    # (B, P, C) -> (B, t, h, w, C) -> (B, t, C, h, w); a permute, not the bare reshape the
    # paper's wording suggests, so that channels stay channels
    return tokens.reshape(batch_size, grid_t, grid_h, grid_w, channels).permute(0, 1, 4, 2, 3)


class LSTA(nn.Module):
    """Large Spatial-Temporal Attention (paper eq. 2-3).

    ``f`` = mean over channels of ``e_in`` (B, t, C, h, w) -> (B, t, 1, h, w); reshaped to
    ``f*`` (B, 1, t, h, w) it goes through the 3D large-kernel attention

        3DLKA(f*) = CONV_1x1x1(DWDC(DWC(f*)))

    and ``e_out = e_in + e_in * sigmoid(f_o)``, the attention broadcast over channels.

    Kernel sizes follow the Large Kernel Attention convention (VAN) for an effective kernel
    ``kernel_size`` built with dilation ``d``: a depth-wise conv of size ``(2d-1)^3`` (DWC),
    then a depth-wise dilated conv of size ``ceil(k/d)^3`` with dilation ``d`` (DWDC), e.g.
    k=21, d=3 gives 5^3 then 7^3 dilated by 3. The paper's text swaps the two names (it calls the
    dilated one DWC); the order of operations is LKA's. All convs use 'same' padding. As ``f*``
    has a single channel, "depth-wise" convs are plain single-channel convs here.

    The default k=9, d=2 (3^3 then 5^3 dilated by 2, receptive field 11) suits small grids such
    as t=12, h=w=8; k=21, d=3 would mostly look at zero padding there.

    Args:
        kernel_size (int): Effective kernel size k. Defaults to 9.
        dilation (int): Dilation d. Defaults to 2.
    """

    def __init__(self, kernel_size: int = 9, dilation: int = 2) -> None:
        super().__init__()
        if kernel_size < 1 or dilation < 1:
            raise ValueError(f'kernel_size and dilation must be >= 1, got {kernel_size}, '
                             f'{dilation}')
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.local_kernel = 2 * dilation - 1
        self.dilated_kernel = math.ceil(kernel_size / dilation)
        self.depthwise_conv = nn.Conv3d(1, 1, self.local_kernel, padding='same')
        self.depthwise_dilated_conv = nn.Conv3d(
            1, 1, self.dilated_kernel, padding='same', dilation=dilation)
        self.pointwise_conv = nn.Conv3d(1, 1, kernel_size=1)

    def attention(self, x: Tensor) -> Tensor:
        """The attention map sigmoid(f_o) of eq. 3.

        Args:
            x (Tensor): e_in of shape (B, t, C, h, w).

        Returns:
            Tensor: Shape (B, t, 1, h, w), values in (0, 1).
        """
        # eq. 2: f = channel mean (B, t, 1, h, w); f* = (B, 1, t, h, w) so that conv3d sees
        # time as depth
        f_star = x.mean(dim=2, keepdim=True).transpose(1, 2)
        f_o_star = self.pointwise_conv(self.depthwise_dilated_conv(self.depthwise_conv(f_star)))
        # f_o: (B, 1, t, h, w) -> (B, t, 1, h, w)
        return f_o_star.transpose(1, 2).sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        """Apply eq. 3.

        Args:
            x (Tensor): e_in of shape (B, t, C, h, w).

        Returns:
            Tensor: e_out of shape (B, t, C, h, w).
        """
        return x + x * self.attention(x)


@MODELS.register_module()
class LSTAHead(BaseModule):
    """Spatio-temporal head H_B: L LSTA modules then an MLP to the motion feature f_rgb.

    ``e_b`` (B, P, C_b) is laid out as (B, t, C_b, h, w), refined by ``num_lsta`` LSTA modules,
    averaged over space to (B, t, C_b), and each time step is mapped by the MLP to
    ``frames_per_step`` frames of ``out_channels`` features: step ``s`` yields frames
    ``frames_per_step * s + j``. With the defaults f_rgb is (B, T = 2t, C_mo = 36), the layout of
    the flow's latent f_sk. ``use_lsta=False`` skips the LSTA modules (the "no LSTA" ablation: a
    plain MLP head on the pooled tokens).

    The head owns the motion loss and score. The flow is a frozen teacher, so ``f_sk`` is detached
    in the loss.

    - ``loss``: eq. 4, ``L_mo = ||f_sk - f_rgb||_2^2``. ``loss_reduction='sum'`` (default) takes
      eq. 4 literally per window: the squared error summed over the (T, C_mo) features, then
      averaged over the batch. ``'mean'`` averages over every element instead (the same value
      divided by T*C_mo, a scale that suits larger learning rates).
    - ``score``: eq. 13, ``S_mo = ||f_sk - f_rgb||_2`` over the whole window, per window.

    Args:
        in_channels (int): Token width C_b. Defaults to 384.
        out_channels (int): Motion feature width C_mo. Defaults to 36.
        token_grid (Sequence[int]): Default (t, h, w) of the tokens. Defaults to (12, 8, 8).
        frames_per_step (int): Frames per token step (the cube's temporal size). Defaults to 2.
        num_lsta (int): Number L of LSTA modules. Defaults to 2.
        lsta_kernel_size (int): Effective LKA kernel size k. Defaults to 9.
        lsta_dilation (int): LKA dilation d. Defaults to 2.
        use_lsta (bool): Whether to apply the LSTA modules. Defaults to True.
        hidden_channels (int, optional): MLP hidden width; ``in_channels`` when None.
        dropout (float): Dropout before the last linear layer. Defaults to 0.
        loss_reduction (str): 'sum' or 'mean', see above. Defaults to 'sum'.
        loss_weight (float): Factor on ``loss_mo``. Defaults to 1.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to truncated
            normal (std 0.02) linear layers.
    """

    def __init__(self,
                 in_channels: int = 384,
                 out_channels: int = 36,
                 token_grid: Sequence[int] = (12, 8, 8),
                 frames_per_step: int = 2,
                 num_lsta: int = 2,
                 lsta_kernel_size: int = 9,
                 lsta_dilation: int = 2,
                 use_lsta: bool = True,
                 hidden_channels: Optional[int] = None,
                 dropout: float = 0.,
                 loss_reduction: str = 'sum',
                 loss_weight: float = 1.,
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='TruncNormal', layer='Linear', std=0.02, bias=0.)) -> None:
        super().__init__(init_cfg=init_cfg)
        if loss_reduction not in ('sum', 'mean'):
            raise ValueError(f"loss_reduction must be 'sum' or 'mean', got {loss_reduction}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.token_grid: TokenGrid = tuple(int(size) for size in token_grid)
        self.frames_per_step = frames_per_step
        self.use_lsta = use_lsta
        self.loss_reduction = loss_reduction
        self.loss_weight = loss_weight
        hidden_channels = hidden_channels or in_channels
        self.lsta_layers = nn.Sequential(*[
            LSTA(lsta_kernel_size, lsta_dilation) for _ in range(num_lsta)
        ]) if use_lsta else nn.Identity()
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hidden_channels), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden_channels, frames_per_step * out_channels))

    def forward(self, e_b: Tensor, token_grid: Optional[Sequence[int]] = None) -> Tensor:
        """Map encoder tokens to the motion feature.

        Args:
            e_b (Tensor): Shape (B, P, C_b), tokens in (t, h, w) row-major order.
            token_grid (Sequence[int], optional): (t, h, w) of ``e_b``; the configured grid
                when None.

        Returns:
            Tensor: f_rgb of shape (B, frames_per_step * t, out_channels).
        """
        grid = tuple(token_grid) if token_grid is not None else self.token_grid
        features = self.lsta_layers(tokens_to_grid(e_b, grid))  # (B, t, C, h, w)
        per_step = self.mlp(features.mean(dim=(3, 4)))  # (B, t, frames_per_step * C_mo)
        # (B, t, frames_per_step * C_mo) -> (B, t * frames_per_step, C_mo), frames in time order
        return per_step.reshape(e_b.shape[0], grid[0] * self.frames_per_step, self.out_channels)

    @staticmethod
    def check_pair(f_rgb: Tensor, f_sk: Tensor) -> None:
        """Refuse an f_rgb and f_sk of different shapes (broadcasting would hide it)."""
        if f_rgb.shape != f_sk.shape:
            raise ValueError(f'f_rgb {tuple(f_rgb.shape)} and f_sk {tuple(f_sk.shape)} must '
                             'have the same (B, T, C_mo) shape')

    def loss(self, f_rgb: Tensor, f_sk: Tensor) -> Dict[str, Tensor]:
        """Motion loss, eq. 4.

        Args:
            f_rgb (Tensor): Shape (B, T, C_mo).
            f_sk (Tensor): The flow's latent, shape (B, T, C_mo); detached here.

        Returns:
            dict[str, Tensor]: ``loss_mo``, a scalar (reduction: see the class docstring).
        """
        self.check_pair(f_rgb, f_sk)
        squared_error = (f_sk.detach() - f_rgb).pow(2)
        if self.loss_reduction == 'sum':
            loss = squared_error.flatten(1).sum(dim=1).mean()
        else:
            loss = squared_error.mean()
        return dict(loss_mo=self.loss_weight * loss)

    def score(self, f_rgb: Tensor, f_sk: Tensor, variant: str = 'diff') -> Tensor:
        """Motion anomaly score, eq. 13 (``variant='diff'``) or a Table 3 variant.

        Args:
            f_rgb (Tensor): Shape (B, T, C_mo).
            f_sk (Tensor): Shape (B, T, C_mo).
            variant (str): See :func:`motion_anomaly_score`.

        Returns:
            Tensor: S_mo of shape (B, ).
        """
        self.check_pair(f_rgb, f_sk)
        return motion_anomaly_score(f_rgb, f_sk, variant)


#: Motion scores of the paper's Table 3 (all end with a norm over the window).
MOTION_SCORE_VARIANTS = ('diff', 'sim', 'f_sk', 'f_rgb', 'sum')


#: The Table 3 variants that are the norm of a per-frame vector (see :func:`motion_vector`).
MOTION_VECTOR_VARIANTS = ('diff', 'f_sk', 'f_rgb', 'sum')


def motion_vector(f_rgb: Tensor, f_sk: Tensor, variant: str = 'diff') -> Tensor:
    """The (B, T, C_mo) vectors whose norm over the window a motion score takes.

    ``'diff'``: the gap ``f_sk - f_rgb`` (eq. 13); ``'f_sk'``, ``'f_rgb'``: one side alone;
    ``'sum'``: ``f_sk + f_rgb``. ``'sim'`` is a cosine, not a norm, and has no such vector.
    """
    if variant == 'diff':
        return f_sk - f_rgb
    if variant == 'f_sk':
        return f_sk
    if variant == 'f_rgb':
        return f_rgb
    if variant == 'sum':
        return f_sk + f_rgb
    raise ValueError(f'motion score variant must be one of {MOTION_VECTOR_VARIANTS} here, '
                     f'got {variant!r}')


def motion_anomaly_score(f_rgb: Tensor, f_sk: Tensor, variant: str = 'diff') -> Tensor:
    """Per-window motion anomaly score.

    ``'diff'`` is eq. 13, ``||f_sk - f_rgb||``; the others are the Table 3 comparisons:
    ``'sim'`` = ``1 - cos(f_rgb, f_sk)``, ``'f_sk'`` = ``||f_sk||`` (the flow alone),
    ``'f_rgb'`` = ``||f_rgb||`` (the RGB branch alone), ``'sum'`` = ``||f_sk + f_rgb||``.

    Args:
        f_rgb (Tensor): Shape (B, T, C_mo).
        f_sk (Tensor): Shape (B, T, C_mo).
        variant (str): One of :data:`MOTION_SCORE_VARIANTS`.

    Returns:
        Tensor: Shape (B, ).
    """
    if variant == 'sim':
        # (B, T, C_mo) -> (B, T*C_mo): one vector per window
        return 1 - torch.nn.functional.cosine_similarity(f_rgb.flatten(1), f_sk.flatten(1),
                                                         dim=1, eps=1e-8)
    if variant not in MOTION_SCORE_VARIANTS:
        raise ValueError(f'motion score variant must be one of {MOTION_SCORE_VARIANTS}, '
                         f'got {variant!r}')
    # (B, T, C_mo) -> (B, T*C_mo): one vector per window
    return torch.linalg.vector_norm(motion_vector(f_rgb, f_sk, variant).flatten(1), dim=1)
