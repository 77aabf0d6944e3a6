"""Frozen feature stages that turn an RGB window into cube tokens (cube embedding F_B).

The paper (section 3.2) treats every 2x8x8 cube of a window (T, H, W) as one token and maps it
to channels, giving a (t, h, w) = (T/2, H/8, W/8) token grid that the RGB and mask encoders
consume. Two registered modules produce that grid:

* :class:`SwinCubeEmbedding`: mmaction2's Video Swin Transformer built through stage 2 only
  (patch 2x4x4, then one 2x2 spatial patch merging: one token per 2x8x8 cube, 2 * embed_dims
  channels, i.e. 192 for Swin-T/S). Stages 3-4 are never built, so they cost neither memory nor
  time, and the parameter names are those of the full model so that Kinetics-400 recognizer
  checkpoints load directly.
* :class:`MMActionCubeEmbedding`: any other mmaction2 3D backbone (``ResNet3d``, ``X3D``...) run
  frozen, its feature map pooled onto the same grid, optionally projected by a 1x1x1 conv, for
  backbone-swap experiments.

Checkpoints given as ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` are
loaded by a checked loader rather than mmengine's lenient one: a missing or wrongly shaped key
that the module needs raises instead of silently leaving random weights in a frozen stage that
no later training step would ever fix.
"""
import copy
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.models.backbones.swin import SwinTransformer3D
from mmaction.registry import MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from ..utils.checkpoint import (InitCfg, init_weights_without_pretrained,
                                load_pretrained_state_dict, load_state_dict_checked,
                                split_init_cfg)
from ..utils.freezing import FrozenModuleMixin, freeze_module

__all__ = ['SwinCubeEmbedding', 'MMActionCubeEmbedding']

# Video Swin stages kept: stage 1 (index 0) and stage 2 (index 1).
_NUM_KEPT_STAGES = 2
_STAGE2_INDEX = 1


# ------------------------------------------------------------------------------ Video Swin
@MODELS.register_module()
class SwinCubeEmbedding(FrozenModuleMixin, SwinTransformer3D):
    """Video Swin Transformer stages 1-2 as a frozen cube embedding (paper section 3.2).

    Which tensor is "the stage-2 output". mmaction2's ``SwinTransformer3D`` attaches the patch
    merging that leads into stage ``i + 1`` to the *end* of stage ``i`` (``layers[i].downsample``)
    and, with ``out_after_downsample=False`` (default), reports stage ``i`` *before* that merge,
    normalised by ``norm{i}``. The tensor returned here is therefore exactly what the full model
    returns with ``out_indices=(1,)``: the output of the blocks of ``layers[1]`` (after
    ``layers[0].downsample`` merged the 96-channel H/4 tokens into 192-channel H/8 tokens),
    passed through ``norm1``; ``layers[1].downsample`` (into stage 3) is not applied. Shape
    (B, 2 * embed_dims, T/2, H/8, W/8): one token per 2x8x8 cube, 192 channels for Swin-T/S.

    How stages 3-4 are left out. The module is a ``SwinTransformer3D`` built with the arch's
    ``depths`` and ``num_heads`` cut to their first two entries and ``out_indices=(1,)``. The
    library then builds ``patch_embed``, ``layers.0`` (with its merging), ``layers.1`` without a
    merging (it is now the last stage) and ``norm1`` only, under the same names as in the full
    model, so ``backbone.``-prefixed K400 recognizer checkpoints load key for key; their
    ``layers.1.downsample``, ``layers.2``, ``layers.3``, ``norm3`` and ``cls_head`` entries are
    ignored.

    The output norm. Recognizer checkpoints are trained with ``out_indices=(3,)`` and therefore
    hold ``norm3`` only; ``norm1`` does not exist in them. The full model built with
    ``out_indices=(1,)`` and loaded from such a checkpoint keeps ``norm1`` at its initial value
    (weight 1, bias 0), i.e. a plain per-token standardisation, and so does this module (the key
    is optional when loading; a checkpoint that has it is used).

    Freezing. With ``frozen=True`` (default) every parameter has ``requires_grad=False``, the
    forward pass runs under ``torch.no_grad()`` and the module stays in eval mode whatever
    ``train()`` is asked (dropout and drop path stay off). ``frozen_stages`` of the parent is not
    used: it leaves the output norm trainable. Unlike the parent, ``train()`` returns the module.

    Args:
        arch (str or dict): 'tiny', 'small', 'base' or 'large' (mmaction2's arch zoo; tiny and
            small share stages 1-2), or a dict with ``embed_dims``, ``depths`` and ``num_heads``
            of the *full* model (at least two stages). Defaults to 'tiny'.
        patch_size (Sequence[int]): Patch size of the embedding. (2, 4, 4) gives 2x8x8 cubes at
            stage 2. Defaults to (2, 4, 4).
        in_channels (int): Input channels. Defaults to 3.
        window_size (Sequence[int]): Attention window; must match the checkpoint's (the relative
            position tables are sized by it). Defaults to (8, 7, 7).
        mlp_ratio (float): MLP hidden width ratio. Defaults to 4.
        qkv_bias (bool): Bias in the q, k, v projection. Defaults to True.
        qk_scale (float, optional): Override of the attention scale. Defaults to None.
        drop_rate (float): Dropout rate. Defaults to 0.
        attn_drop_rate (float): Attention dropout rate. Defaults to 0.
        drop_path_rate (float): Stochastic depth rate of the *full* model's last block. It is
            rescaled so that blocks of stages 1-2 get the rates they have in the full model (only
            matters with ``frozen=False``). Defaults to 0.1.
        act_cfg (dict): Activation config. Defaults to ``dict(type='GELU')``.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='LN')``.
        patch_norm (bool): Normalise after the patch embedding. Defaults to True.
        with_cp (bool): Gradient checkpointing (only useful with ``frozen=False``).
            Defaults to False.
        frozen (bool): Freeze as described above. Defaults to True.
        init_cfg (dict or list[dict], optional): ``dict(type='Pretrained', checkpoint=...,
            prefix='backbone.')`` for a recognizer checkpoint (loaded by the checked loader).
            None means mmaction2's default Swin initialisation (random weights).
    """

    def __init__(self,
                 arch: Union[str, Dict] = 'tiny',
                 patch_size: Sequence[int] = (2, 4, 4),
                 in_channels: int = 3,
                 window_size: Sequence[int] = (8, 7, 7),
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 act_cfg: Dict = dict(type='GELU'),
                 norm_cfg: Dict = dict(type='LN'),
                 patch_norm: bool = True,
                 with_cp: bool = False,
                 frozen: bool = True,
                 init_cfg: InitCfg = None) -> None:
        if isinstance(arch, str):
            if arch.lower() not in self.arch_zoo:
                raise KeyError(f'unknown Swin arch {arch!r}; choose from {sorted(self.arch_zoo)}')
            full_arch = self.arch_zoo[arch.lower()]
        else:
            full_arch = dict(arch)
        if len(full_arch['depths']) < _NUM_KEPT_STAGES:
            raise ValueError(f'arch {arch} has fewer than {_NUM_KEPT_STAGES} stages')
        truncated_arch = dict(
            embed_dims=full_arch['embed_dims'],
            depths=list(full_arch['depths'][:_NUM_KEPT_STAGES]),
            num_heads=list(full_arch['num_heads'][:_NUM_KEPT_STAGES]))
        # mmaction spreads drop path linearly over all blocks: block k of n gets
        # rate * k / (n - 1). Rescale so that the kept blocks get their full-model rates.
        full_blocks = sum(full_arch['depths'])
        kept_blocks = sum(truncated_arch['depths'])
        if full_blocks > 1 and kept_blocks > 1:
            drop_path_rate = drop_path_rate * (kept_blocks - 1) / (full_blocks - 1)
        if init_cfg is None:
            # the parent's default: random weights like an untrained Video Swin
            init_cfg = [
                dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
            ]
        super().__init__(
            arch=truncated_arch,
            # pretrained2d=True with pretrained=None crashes in init_weights; K400 weights come
            # through init_cfg instead
            pretrained=None,
            pretrained2d=False,
            patch_size=patch_size,
            in_channels=in_channels,
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
            act_cfg=act_cfg,
            norm_cfg=norm_cfg,
            patch_norm=patch_norm,
            frozen_stages=-1,
            with_cp=with_cp,
            out_indices=(_STAGE2_INDEX, ),
            out_after_downsample=False,
            init_cfg=init_cfg)
        self.frozen = frozen
        self.out_channels: int = self.num_features[_STAGE2_INDEX]
        # stride of one output token in input pixels/frames: patch size, then one 2x2 merging
        self.cube_size: Tuple[int, int, int] = (patch_size[0], patch_size[1] * 2,
                                                patch_size[2] * 2)
        if frozen:
            self._freeze()

    def _freeze(self) -> None:
        freeze_module(self)

    def init_weights(self) -> None:
        """Initialise randomly, or load a ``Pretrained`` checkpoint with every key checked.

        Required: all parameters and buffers of stages 1-2. Optional: ``norm1.*`` (recognizer
        checkpoints only hold ``norm3``) and ``relative_position_index`` (a constant of the
        window size that some re-saved checkpoints drop).
        """
        pretrained, others = split_init_cfg(self.init_cfg)
        if pretrained is None:
            super().init_weights()
        else:
            if others:
                init_weights_without_pretrained(self, others, super().init_weights)
            source = f"checkpoint {pretrained['checkpoint']}"
            if pretrained.get('prefix'):
                source += f" (prefix {pretrained['prefix']!r})"
            state_dict = load_pretrained_state_dict(pretrained['checkpoint'],
                                                    pretrained.get('prefix'),
                                                    pretrained.get('map_location', 'cpu'))
            report = load_state_dict_checked(
                self,
                state_dict,
                optional=(rf'^norm{_STAGE2_INDEX}\.', r'\.relative_position_index$'),
                ignore_unexpected=True,
                source=source)
            print_log(
                f'{self.__class__.__name__}: loaded stages 1-2 from {source}; ignored '
                f'{len(report.unexpected)} keys of later stages/heads; kept the initial value '
                f'of {report.missing or "nothing"}',
                logger='current')
            self._is_init = True
        if self.frozen:
            self._freeze()

    def forward(self, x: Tensor) -> Tensor:
        """Embed a window into cube tokens.

        Args:
            x (Tensor): Clip of shape (B, C_in, T, H, W).

        Returns:
            Tensor: Shape (B, out_channels, ceil(T/2), ceil(H/8), ceil(W/8)) (the patch
            embedding pads T to even and H, W to multiples of 4; the merging pads to even).
        """
        if x.ndim != 5:
            raise ValueError(f'expected a clip (B, C, T, H, W), got {tuple(x.shape)}')
        with torch.no_grad() if self.frozen else nullcontext():
            return super().forward(x)

    def frozen_modules(self) -> List[nn.Module]:
        """A frozen stage stays in eval mode as a whole (``train()`` returns the module)."""
        return [self] if self.frozen else []


# ----------------------------------------------------------------- any mmaction 3D backbone
@MODELS.register_module()
class MMActionCubeEmbedding(FrozenModuleMixin, BaseModule):
    """Any mmaction2 3D backbone as a frozen feature stage on the cube-token grid.

    For backbone-swap experiments: the backbone (``ResNet3d``, ``X3D``, ``ResNet2Plus1d`` ...,
    built from its mmaction2 config) runs frozen and its feature map (B, C_f, t', h', w') is
    brought onto the grid ``(T/ct, H/ch, W/cw)`` (rounded up) of ``cube_size = (ct, ch, cw)`` by
    adaptive average pooling, then optionally projected by a 1x1x1 conv. Pooling comes first: a
    per-token linear map commutes with averaging, so the result is the same at lower cost.

    What this is and is not. These backbones were not designed around 2x8x8 cubes: a token is
    the pooled backbone activation over a cube-sized cell, not an embedding of that cube alone
    (receptive fields are larger). Where the backbone's grid is coarser than the target along an
    axis, adaptive pooling repeats cells (nearest-neighbour upsampling) rather than inventing
    detail; choose the backbone's ``out_indices``/strides so that its grid is at least as fine
    (e.g. ``ResNet3d`` with ``out_indices=(1,)`` has strides (2, 8, 8) already). Backbones whose
    forward ends in fully connected layers (``C3D``) give no feature map and are refused.

    Projection. ``out_channels`` adds a 1x1x1 ``nn.Conv3d``. With ``trainable_proj=False`` it is
    frozen like the backbone, i.e. a fixed random projection unless a checkpoint fills it through
    the parent model; with ``trainable_proj=True`` it learns with the rest of the model while the
    backbone stays frozen (then cache features *before* the projection). The encoder's own input
    projection usually makes it unnecessary.

    Args:
        backbone (dict): mmaction2 backbone config, built with ``mmaction.registry.MODELS``.
        out_channels (int, optional): Width of the 1x1x1 projection; None keeps the backbone's
            width. Defaults to None.
        cube_size (Sequence[int], optional): (ct, ch, cw) of one output token in input frames
            and pixels; None returns the backbone grid unchanged. Defaults to (2, 8, 8).
        out_index (int): Which output to take when the backbone returns a tuple.
            Defaults to -1.
        feat_channels (int, optional): Channels of the backbone output. None infers them once
            at build time by running the backbone on a small zero clip (8x64x64); give them for
            backbones that need other input sizes. Defaults to None.
        frozen (bool): Freeze the backbone (``requires_grad=False``, eval mode, no autograd).
            Defaults to True.
        trainable_proj (bool): Let the projection learn even when ``frozen``. Defaults to False.
        init_cfg (dict or list[dict], optional): ``dict(type='Pretrained', checkpoint=...,
            prefix='backbone.')`` fills the wrapped backbone (checked: every backbone key must be
            present with its shape, BN ``num_batches_tracked`` excepted). Defaults to None (the
            backbone's own initialisation).
    """

    _PROBE_CLIP = (8, 64, 64)

    def __init__(self,
                 backbone: dict,
                 out_channels: Optional[int] = None,
                 cube_size: Optional[Sequence[int]] = (2, 8, 8),
                 out_index: int = -1,
                 feat_channels: Optional[int] = None,
                 frozen: bool = True,
                 trainable_proj: bool = False,
                 init_cfg: InitCfg = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if cube_size is not None and len(cube_size) != 3:
            raise ValueError(f'cube_size must be (ct, ch, cw), got {cube_size}')
        self.backbone = MODELS.build(copy.deepcopy(backbone))
        self.backbone_type = type(self.backbone).__name__
        self.cube_size = tuple(int(size) for size in cube_size) if cube_size else None
        self.out_index = out_index
        self.frozen = frozen
        self.trainable_proj = trainable_proj
        self.feat_channels = feat_channels or self._probe_channels()
        if out_channels is not None:
            self.proj = nn.Conv3d(self.feat_channels, out_channels, kernel_size=1)
            self.out_channels = out_channels
        else:
            self.proj = None
            self.out_channels = self.feat_channels
        if frozen:
            self._freeze()

    @property
    def _proj_frozen(self) -> bool:
        return self.frozen and not self.trainable_proj

    def _freeze(self) -> None:
        freeze_module(self.backbone)
        if self.proj is not None and self._proj_frozen:
            freeze_module(self.proj)
        self.train(self.training)  # applies the mode policy of train()

    def _backbone_features(self, x: Tensor) -> Tensor:
        return self._select_map(self.backbone(x))

    def _select_map(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Pick the configured output of the backbone and check that it is a 3D feature map."""
        if isinstance(feats, (tuple, list)):
            feats = feats[self.out_index]
        if not isinstance(feats, Tensor) or feats.ndim != 5:
            shape = tuple(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
            raise ValueError(f'{self.backbone_type} returned {shape}, not a (B, C, t, h, w) '
                             'feature map; it cannot serve as a cube embedding')
        return feats

    def _probe_channels(self) -> int:
        """Infer the backbone's output width from one forward pass on a small zero clip."""
        in_channels = getattr(self.backbone, 'in_channels', 3)
        was_training = self.backbone.training
        # eval: the probe must not touch BatchNorm running statistics
        self.backbone.train(False)
        probe = torch.zeros(1, in_channels, *self._PROBE_CLIP)
        try:
            with torch.no_grad():
                raw = self.backbone(probe)
        except Exception as error:  # e.g. a backbone with fully connected layers of fixed size
            raise RuntimeError(
                f'could not infer the output width of {self.backbone_type} from a '
                f'{tuple(probe.shape)} clip ({error}); pass feat_channels') from error
        finally:
            self.backbone.train(was_training)
        return int(self._select_map(raw).shape[1])

    def init_weights(self) -> None:
        """Initialise the backbone (its own scheme), then load a ``Pretrained`` checkpoint."""
        pretrained, others = split_init_cfg(self.init_cfg)
        init_weights_without_pretrained(self, others, super().init_weights)
        if pretrained is not None:
            source = f"checkpoint {pretrained['checkpoint']}"
            if pretrained.get('prefix'):
                source += f" (prefix {pretrained['prefix']!r})"
            state_dict = load_pretrained_state_dict(pretrained['checkpoint'],
                                                    pretrained.get('prefix'),
                                                    pretrained.get('map_location', 'cpu'))
            report = load_state_dict_checked(
                self.backbone, state_dict, optional=(r'num_batches_tracked$', ),
                ignore_unexpected=True, source=source)
            print_log(
                f'{self.__class__.__name__}: loaded {self.backbone_type} from {source}; '
                f'ignored {len(report.unexpected)} keys',
                logger='current')
        if self.frozen:
            self._freeze()

    def forward(self, x: Tensor) -> Tensor:
        """Run the backbone and bring its features onto the cube grid.

        Args:
            x (Tensor): Clip of shape (B, C_in, T, H, W).

        Returns:
            Tensor: Shape (B, out_channels, ceil(T / ct), ceil(H / ch), ceil(W / cw)), or the
            backbone grid when ``cube_size`` is None.
        """
        if x.ndim != 5:
            raise ValueError(f'expected a clip (B, C, T, H, W), got {tuple(x.shape)}')
        with torch.no_grad() if self.frozen else nullcontext():
            feats = self._backbone_features(x)  # (B, C_f, t', h', w')
            if self.cube_size is not None:
                # ceil, like the Swin stage, which pads partial cubes
                grid = tuple(-(-size // cube) for size, cube in zip(x.shape[2:], self.cube_size))
                if tuple(feats.shape[2:]) != grid:
                    feats = F.adaptive_avg_pool3d(feats, grid)  # (B, C_f, t, h, w)
        if self.proj is not None:
            with torch.no_grad() if self._proj_frozen else nullcontext():
                feats = self.proj(feats)  # (B, out_channels, t, h, w)
        return feats

    def frozen_modules(self) -> List[nn.Module]:
        """A frozen backbone stays in eval mode; so does the whole module when nothing in it
        learns (a frozen or no projection)."""
        if not self.frozen:
            return []
        fully_frozen = self.proj is None or self._proj_frozen
        return [self] if fully_frozen else [self.backbone]
