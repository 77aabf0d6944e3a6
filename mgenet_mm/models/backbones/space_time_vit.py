"""Plain ViT with joint space-time attention: MGENet's RGB encoder and mask encoder.

The encoder works on the cube tokens of a frozen feature stage (Video Swin stages 1-2: one token
per 2x8x8 cube of the input window, paper section 3.2), not on pixels. Because of that, masking
(paper eq. 5) is applied at the token level: a masked token's features are replaced by a learned
[MASK] embedding, which lets cached feature-stage outputs serve the mask encoder as well.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmaction.registry import MODELS
from torch import Tensor

TokenGrid = Tuple[int, int, int]


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample with probability ``p``.

    Args:
        drop_prob (float): Probability of dropping the branch. Defaults to 0.
    """

    def __init__(self, drop_prob: float = 0.) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0. or not self.training:
            return x
        keep_prob = 1. - self.drop_prob
        # one Bernoulli draw per sample, broadcast over the token and channel dims
        keep = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1)).bernoulli_(keep_prob)
        return x * keep / keep_prob


class SpaceTimeAttention(nn.Module):
    """Multi-head self-attention over all ``P = t*h*w`` tokens at once (joint space-time).

    Args:
        embed_dims (int): Token width.
        num_heads (int): Number of heads; must divide ``embed_dims``.
        qkv_bias (bool): Whether the q, k, v projection has a bias. Defaults to True.
        attn_drop (float): Dropout on the attention weights (training only). Defaults to 0.
        proj_drop (float): Dropout after the output projection. Defaults to 0.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by '
                             f'num_heads ({num_heads})')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        """Attend every token to every token of the window.

        Args:
            x (Tensor): Tokens of shape (B, P, C).

        Returns:
            Tensor: Shape (B, P, C).
        """
        batch_size, num_tokens, channels = x.shape
        # (B, P, 3C) -> (B, P, 3, heads, C/heads) -> (3, B, heads, P, C/heads)
        qkv = self.qkv(x).reshape(batch_size, num_tokens, 3, self.num_heads,
                                  self.head_dims).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)
        out = F.scaled_dot_product_attention(
            query, key, value, dropout_p=self.attn_drop if self.training else 0.)
        # (B, heads, P, C/heads) -> (B, P, heads, C/heads) -> (B, P, C)
        out = out.transpose(1, 2).reshape(batch_size, num_tokens, channels)
        return self.proj_drop(self.proj(out))


class FeedForward(nn.Module):
    """Token-wise two-layer MLP with GELU.

    Args:
        embed_dims (int): Token width.
        hidden_dims (int): Hidden width.
        drop (float): Dropout after each linear layer. Defaults to 0.
    """

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class SpaceTimeBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``.

    Args:
        embed_dims (int): Token width.
        num_heads (int): Number of attention heads.
        mlp_ratio (float): Hidden width of the MLP relative to ``embed_dims``.
        qkv_bias (bool): Whether the q, k, v projection has a bias.
        drop (float): Dropout after the attention projection and in the MLP.
        attn_drop (float): Dropout on the attention weights.
        drop_path (float): Stochastic-depth probability of both residual branches.
        norm_eps (float): LayerNorm epsilon.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop: float = 0.,
                 attn_drop: float = 0.,
                 drop_path: float = 0.,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = SpaceTimeAttention(embed_dims, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = FeedForward(embed_dims, int(embed_dims * mlp_ratio), drop)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def _sincos_1d(positions: Tensor, dims: int) -> Tensor:
    """Sine-cosine encoding of integer positions: (n, ) -> (n, dims), ``dims`` even."""
    frequencies = 1. / 10000**(torch.arange(dims // 2, dtype=torch.float64) / (dims // 2))
    # (n, 1) * (1, dims/2) -> (n, dims/2)
    angles = positions.to(torch.float64)[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_pos_embed_3d(token_grid: Sequence[int], embed_dims: int) -> Tensor:
    """Fixed 3D sine-cosine position embedding for a (t, h, w) token grid.

    Each of the three axes gets ``2 * (embed_dims // 6)`` channels (first t, then h, then w); the
    few channels left over when ``embed_dims`` is not a multiple of 6 stay zero.

    Args:
        token_grid (Sequence[int]): Grid size (t, h, w).
        embed_dims (int): Token width.

    Returns:
        Tensor: Shape (1, t*h*w, embed_dims), tokens in (t, h, w) row-major order.
    """
    grid_t, grid_h, grid_w = token_grid
    axis_dims = 2 * (embed_dims // 6)
    if axis_dims == 0:
        raise ValueError(f'sincos position embedding needs embed_dims >= 6, got {embed_dims}')
    # 'ij' indexing so that flattening follows (t, h, w) row-major order
    pos_t, pos_h, pos_w = torch.meshgrid(
        torch.arange(grid_t), torch.arange(grid_h), torch.arange(grid_w), indexing='ij')
    parts = [_sincos_1d(pos.flatten(), axis_dims) for pos in (pos_t, pos_h, pos_w)]
    embed = torch.zeros(grid_t * grid_h * grid_w, embed_dims, dtype=torch.float64)
    embed[:, :3 * axis_dims] = torch.cat(parts, dim=1)
    # (P, C) -> (1, P, C)
    return embed.float().unsqueeze(0)


def resize_pos_embed(pos_embed: Tensor, old_grid: Sequence[int],
                     new_grid: Sequence[int]) -> Tensor:
    """Trilinearly resize a (1, P, C) position embedding from one (t, h, w) grid to another.

    Args:
        pos_embed (Tensor): Shape (1, t*h*w, C), (t, h, w) row-major.
        old_grid (Sequence[int]): The (t, h, w) it was made for.
        new_grid (Sequence[int]): The (t', h', w') wanted.

    Returns:
        Tensor: Shape (1, t'*h'*w', C), (t', h', w') row-major.
    """
    # (1, P, C) -> (1, t, h, w, C) -> (1, C, t, h, w) for trilinear resizing
    grid_embed = pos_embed.reshape(1, *old_grid, -1).permute(0, 4, 1, 2, 3)
    grid_embed = F.interpolate(
        grid_embed, size=tuple(new_grid), mode='trilinear', align_corners=False)
    # (1, C, t', h', w') -> (1, C, P') -> (1, P', C)
    return grid_embed.flatten(2).transpose(1, 2)


@MODELS.register_module()
class SpaceTimeViT(BaseModule):
    """Pre-norm ViT with joint space-time attention over cube tokens (MGENet RGB/mask encoder).

    Token order. The input (B, C_in, t, h, w) is flattened in (t, h, w) row-major order: token
    ``p = ti * h * w + hi * w + wi``. The output ``e_b`` (B, P, embed_dims), ``P = t*h*w``,
    keeps that order, so ``e_b.reshape(B, t, h, w, C)`` recovers the grid.

    Masking. With ``use_mask_token=True``, ``forward(x, mask)`` replaces the tokens where ``mask``
    is True by a learned [MASK] embedding *after* the input projection and *before* the position
    embedding is added (as BEiT does with patch embeddings): the masked token then carries no
    trace of its features but still knows where it is. ``mask`` is (B, h*w) (a tube: the same
    spatial mask at every time step, paper section 3.3) or (B, t*h*w) in the token order above.

    Position embedding and grid size. ``pos_embed='learned'`` (default) holds a (1, P, C)
    parameter sized for ``token_grid``. For an input of another grid size the embedding is
    trilinearly resized when ``interpolate_pos_embed=True``; otherwise (default) a ValueError is
    raised, because a silently resized embedding changes scores without notice.
    ``pos_embed='sincos'`` is a fixed 3D sine-cosine embedding (see :func:`sincos_pos_embed_3d`),
    computed for whatever grid comes in. ``pos_embed=None`` disables it.

    Args:
        in_channels (int): Channels of the input cube tokens (192 for Video Swin-T/S stage 2).
            Defaults to 192.
        embed_dims (int): Token width C_b of the encoder. Defaults to 384.
        token_grid (Sequence[int]): Expected (t, h, w) token grid. Defaults to (12, 8, 8)
            (24 frames of 64x64 pixels).
        depth (int): Number of transformer blocks. Defaults to 6.
        num_heads (int): Number of attention heads. Defaults to 6.
        mlp_ratio (float): MLP hidden width relative to ``embed_dims``. Defaults to 4.
        qkv_bias (bool): Bias in the q, k, v projection. Defaults to True.
        drop_rate (float): Dropout after the input projection, the attention projection and in
            the MLPs. Defaults to 0.
        attn_drop_rate (float): Dropout on the attention weights. Defaults to 0.
        drop_path_rate (float): Stochastic depth of the last block, linearly increasing from 0
            over the blocks. Defaults to 0.
        pos_embed (str, optional): 'learned', 'sincos' or None. Defaults to 'learned'.
        interpolate_pos_embed (bool): Resize a learned position embedding to another input grid
            instead of raising. Defaults to False.
        use_mask_token (bool): Create the learned [MASK] embedding and accept ``mask``.
            Defaults to False.
        final_norm (bool): Apply a LayerNorm to the output tokens. Defaults to True.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to truncated
            normal (std 0.02) linear layers and unit LayerNorms.
    """

    def __init__(self,
                 in_channels: int = 192,
                 embed_dims: int = 384,
                 token_grid: Sequence[int] = (12, 8, 8),
                 depth: int = 6,
                 num_heads: int = 6,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 pos_embed: Optional[str] = 'learned',
                 interpolate_pos_embed: bool = False,
                 use_mask_token: bool = False,
                 final_norm: bool = True,
                 norm_eps: float = 1e-6,
                 init_cfg: Optional[Union[dict, List[dict]]] = [
                     dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                     dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
                 ]) -> None:
        # BaseModule deep-copies init_cfg, so the shared default list is never mutated
        super().__init__(init_cfg=init_cfg)
        if len(token_grid) != 3:
            raise ValueError(f'token_grid must be (t, h, w), got {token_grid}')
        if pos_embed not in ('learned', 'sincos', None):
            raise ValueError(f"pos_embed must be 'learned', 'sincos' or None, got {pos_embed}")
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.token_grid: TokenGrid = tuple(int(size) for size in token_grid)
        self.pos_embed_type = pos_embed
        self.interpolate_pos_embed = interpolate_pos_embed
        self.use_mask_token = use_mask_token
        num_tokens = math.prod(self.token_grid)

        self.input_proj = nn.Linear(in_channels, embed_dims)
        if pos_embed == 'learned':
            self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, embed_dims))
            trunc_normal_(self.pos_embed, std=0.02)
        elif pos_embed == 'sincos':
            # not saved in checkpoints: it is a function of the grid, recomputed when needed
            self.register_buffer(
                'pos_embed', sincos_pos_embed_3d(self.token_grid, embed_dims), persistent=False)
        else:
            self.pos_embed = None
        if use_mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
            trunc_normal_(self.mask_token, std=0.02)
        else:
            self.mask_token = None
        self.drop_after_pos = nn.Dropout(drop_rate)

        drop_path_rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList([
            SpaceTimeBlock(embed_dims, num_heads, mlp_ratio, qkv_bias, drop_rate,
                           attn_drop_rate, drop_path_rates[index], norm_eps)
            for index in range(depth)
        ])
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps) if final_norm else nn.Identity()

    def _pos_embed_for(self, grid: TokenGrid, reference: Tensor) -> Optional[Tensor]:
        """The (1, P, C) position embedding for an input grid, resized or refused if needed."""
        if self.pos_embed is None:
            return None
        if grid == self.token_grid:
            return self.pos_embed.to(reference.dtype)
        if self.pos_embed_type == 'sincos':
            return sincos_pos_embed_3d(grid, self.embed_dims).to(reference)
        if not self.interpolate_pos_embed:
            raise ValueError(
                f'input token grid (t, h, w) = {grid} differs from the grid '
                f'{self.token_grid} the learned position embedding was built for; set '
                'token_grid to match the data, or interpolate_pos_embed=True to resize it')
        return resize_pos_embed(self.pos_embed, self.token_grid, grid).to(reference.dtype)

    def _expand_mask(self, mask: Tensor, batch_size: int, grid: TokenGrid) -> Tensor:
        """Bring ``mask`` (B, h*w) or (B, t*h*w) to (B, P) bool in token order."""
        grid_t, grid_h, grid_w = grid
        if mask.dtype != torch.bool:
            raise TypeError(f'mask must be a bool tensor, got {mask.dtype}')
        if mask.ndim != 2 or mask.shape[0] != batch_size:
            raise ValueError(f'mask must be (B, h*w) or (B, t*h*w) with B={batch_size}, '
                             f'got {tuple(mask.shape)}')
        if mask.shape[1] == grid_t * grid_h * grid_w:
            return mask
        if mask.shape[1] == grid_h * grid_w:
            # tube: (B, h*w) -> (B, 1, h*w) -> (B, t, h*w) -> (B, t*h*w), time-major like tokens
            return mask[:, None, :].expand(-1, grid_t, -1).reshape(batch_size, -1)
        raise ValueError(f'mask has {mask.shape[1]} entries per sample; expected h*w = '
                         f'{grid_h * grid_w} or t*h*w = {grid_t * grid_h * grid_w}')

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """Encode a window of cube tokens.

        Args:
            x (Tensor): Cube tokens of shape (B, C_in, t, h, w).
            mask (Tensor, optional): Bool, True = masked, of shape (B, h*w) (same mask for every
                time step) or (B, t*h*w) (token order). Needs ``use_mask_token=True``.

        Returns:
            Tensor: e_b of shape (B, t*h*w, embed_dims), tokens in (t, h, w) row-major order.
        """
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f'expected cube tokens (B, {self.in_channels}, t, h, w), '
                             f'got {tuple(x.shape)}')
        batch_size = x.shape[0]
        grid: TokenGrid = tuple(x.shape[2:])
        # (B, C_in, t, h, w) -> (B, C_in, P) -> (B, P, C_in), P in (t, h, w) row-major order
        tokens = self.input_proj(x.flatten(2).transpose(1, 2))
        if mask is not None:
            if self.mask_token is None:
                raise ValueError('a mask was given but this encoder has no [MASK] embedding; '
                                 'build it with use_mask_token=True')
            token_mask = self._expand_mask(mask, batch_size, grid)
            # (B, P) -> (B, P, 1) broadcast against the (1, 1, C) [MASK] embedding
            tokens = torch.where(token_mask[..., None], self.mask_token.to(tokens.dtype), tokens)
        pos_embed = self._pos_embed_for(grid, tokens)
        if pos_embed is not None:
            tokens = tokens + pos_embed
        tokens = self.drop_after_pos(tokens)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)
