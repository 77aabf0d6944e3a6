"""Frozen 2D image backbone over a clip's scene image: the scene features F_S (e_s).

The scene branch of MGENet describes *where* a clip happens with one vector per clip, computed
from a scene image (a frame of the clip, or its median background) by an ImageNet-trained 2D
network, and written into the scene memory. Nothing in it is trained, so the features can be
computed once per clip and cached.
"""
import copy
import re
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from ..utils.checkpoint import (InitCfg, init_weights_without_pretrained,
                                load_pretrained_state_dict, load_state_dict_checked,
                                split_init_cfg)
from ..utils.freezing import FrozenModuleMixin, freeze_module

__all__ = ['SceneEncoder', 'torchvision_resnet_to_mmaction']

# torchvision ResNet names -> mmaction ``ResNet`` names. mmaction wraps every conv + BN pair in
# a ConvModule (``convN.conv`` / ``convN.bn``), whereas torchvision keeps them side by side
# (``convN`` / ``bnN``, the stem's ``conv1`` / ``bn1``, ``downsample.0`` / ``downsample.1``).
_TORCHVISION_TO_MMACTION = (
    (re.compile(r'^conv1\.weight$'), 'conv1.conv.weight'),
    (re.compile(r'^bn1\.(.+)$'), r'conv1.bn.\1'),
    (re.compile(r'^(layer\d+\.\d+)\.conv(\d)\.weight$'), r'\1.conv\2.conv.weight'),
    (re.compile(r'^(layer\d+\.\d+)\.bn(\d)\.(.+)$'), r'\1.conv\2.bn.\3'),
    (re.compile(r'^(layer\d+\.\d+)\.downsample\.0\.(.+)$'), r'\1.downsample.conv.\2'),
    (re.compile(r'^(layer\d+\.\d+)\.downsample\.1\.(.+)$'), r'\1.downsample.bn.\2'),
)


def torchvision_resnet_to_mmaction(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Rename a torchvision ResNet state dict to mmaction2's ``ResNet`` layout.

    The classifier (``fc.*``) has no counterpart and is dropped; other unknown keys are kept
    unchanged (the checked loader then ignores them).

    Args:
        state_dict (dict[str, Tensor]): torchvision names (``conv1.weight``, ``bn1.*``,
            ``layer1.0.conv1.weight``, ``layer1.0.downsample.0.weight`` ...).

    Returns:
        dict[str, Tensor]: mmaction names (``conv1.conv.weight``, ``conv1.bn.*`` ...).
    """
    renamed = {}
    for key, value in state_dict.items():
        if key.startswith('fc.'):
            continue
        for pattern, replacement in _TORCHVISION_TO_MMACTION:
            if pattern.match(key):
                key = pattern.sub(replacement, key)
                break
        renamed[key] = value
    return renamed


def _is_torchvision_resnet(state_dict: Dict[str, Tensor]) -> bool:
    return 'conv1.weight' in state_dict and 'bn1.weight' in state_dict


@MODELS.register_module()
class SceneEncoder(FrozenModuleMixin, BaseModule):
    """Frozen 2D backbone + global average pooling: scene image (B, 3, H, W) -> e_s (B, C_s).

    The backbone is any mmaction2 2D backbone config; the default is the 2D ``ResNet``
    (depth 50, C_s = 2048; depth 18/34 give 512). Its last feature map (the last entry when it
    returns several) is averaged over space. The input must be normalised as the weights expect
    (ImageNet mean/std for torchvision weights), which the recognizer's data preprocessor does.

    Weights. ``init_cfg=dict(type='Pretrained', checkpoint=...)`` is loaded into the backbone by
    a checked loader (every backbone key must be present with its shape, BN
    ``num_batches_tracked`` excepted). It accepts torchvision's ImageNet files
    (``'torchvision://resnet50'`` or a local copy; names are converted to mmaction's ConvModule
    layout and ``fc`` is dropped) as well as mmaction checkpoints (e.g. a TSN recognizer with
    ``prefix='backbone.'``). The backbone's own ``pretrained`` argument bypasses the checks
    (mmaction skips mismatching torchvision tensors with a log line only); prefer ``init_cfg``.

    Freezing. With ``frozen=True`` (default): ``requires_grad=False`` everywhere, forward under
    ``torch.no_grad()``, and eval mode whatever ``train()`` is asked, so BatchNorm uses its
    running statistics and a clip's e_s does not depend on the rest of the batch. ``train()``
    returns the module (mmaction's ``ResNet.train`` returns None).

    Args:
        backbone (dict): mmaction2 2D backbone config. Defaults to
            ``dict(type='ResNet', depth=50)``.
        frozen (bool): Freeze as described above. Defaults to True.
        out_index (int): Which output to take when the backbone returns a tuple.
            Defaults to -1.
        out_channels (int, optional): C_s. None infers it once at build time from a forward
            pass on a 64x64 zero image. Defaults to None.
        init_cfg (dict or list[dict], optional): See above. Defaults to None (the backbone's own
            random initialisation).
    """

    _PROBE_SIZE = (64, 64)

    def __init__(self,
                 backbone: dict = dict(type='ResNet', depth=50),
                 frozen: bool = True,
                 out_index: int = -1,
                 out_channels: Optional[int] = None,
                 init_cfg: InitCfg = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.backbone = MODELS.build(copy.deepcopy(backbone))
        self.backbone_type = type(self.backbone).__name__
        self.frozen = frozen
        self.out_index = out_index
        self.out_channels: int = out_channels or self._probe_channels()
        if frozen:
            self._freeze()

    def _freeze(self) -> None:
        freeze_module(self)

    def _feature_map(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Pick the configured output and check that it is a (B, C, h, w) map."""
        if isinstance(feats, (tuple, list)):
            feats = feats[self.out_index]
        if not isinstance(feats, Tensor) or feats.ndim != 4:
            shape = tuple(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
            raise ValueError(f'{self.backbone_type} returned {shape}, not a (B, C, h, w) map')
        return feats

    def _probe_channels(self) -> int:
        """Infer C_s from one forward pass on a small zero image."""
        in_channels = getattr(self.backbone, 'in_channels', 3)
        was_training = self.backbone.training
        # eval: the probe must not touch BatchNorm running statistics
        self.backbone.train(False)
        try:
            with torch.no_grad():
                feats = self.backbone(torch.zeros(1, in_channels, *self._PROBE_SIZE))
        finally:
            self.backbone.train(was_training)
        return int(self._feature_map(feats).shape[1])

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
            if _is_torchvision_resnet(state_dict):
                state_dict = torchvision_resnet_to_mmaction(state_dict)
                source += ' (torchvision layout)'
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
        """Encode scene images.

        Args:
            x (Tensor): Normalised scene images of shape (B, C_in, H, W).

        Returns:
            Tensor: e_s of shape (B, out_channels).
        """
        if x.ndim != 4:
            raise ValueError(f'expected scene images (B, C, H, W), got {tuple(x.shape)}')
        with torch.no_grad() if self.frozen else nullcontext():
            feats = self._feature_map(self.backbone(x))  # (B, C_s, h, w)
            return feats.mean(dim=(2, 3))  # global average pooling -> (B, C_s)

    def frozen_modules(self) -> List[nn.Module]:
        """A frozen encoder stays in eval mode as a whole (``train()`` returns the module)."""
        return [self] if self.frozen else []
