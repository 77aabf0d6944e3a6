"""STG-NF: a spatio-temporal graph normalizing flow over human pose windows.

Re-implementation of the model of Hirschorn & Avidan, "Normalizing Flows for Human Pose Anomaly
Detection" (ICCV 2023), written so that the published checkpoints load with strict key matching
and reproduce the published numbers.

A pose window ``x`` of shape (B, C, T, V) (C = 2 for x, y; V = 18 OpenPose joints) is mapped by
K flow steps to a latent ``z`` of the same shape. Every step is

1. ActNorm: ``y = (x + bias) * exp(logs)`` per channel, log-det ``sum(logs) * T * V``;
2. a channel permutation: reversal (the checkpoints' ``flow_permutation='invcov'``), a random
   shuffle, or a learned invertible 1x1 convolution (LU parametrised);
3. an affine coupling: ``z1, z2 = y[:, :C/2], y[:, C/2:]``; ``h = STGCN(z1)`` (C channels);
   ``shift = h[:, 0::2]``, ``scale = sigmoid(h[:, 1::2] + 2) + 1e-6``;
   ``z2' = (z2 + shift) * scale``, log-det ``sum(log(scale))``.

The prior is N(R, 1) per dimension for normal samples (N(-R, 1) for samples labelled abnormal,
which only the supervised variant uses). The negative log-likelihood is reported in bits per
dimension, ``nll = -(log p(z) + log|det dz/dx|) / (ln 2 * C * T * V)``, and the normality score is
``-nll``.

This module holds the model and the sequence of steps; the skeleton graph is in
:mod:`mgenet_mm.models.utils.graph`, the layers in :mod:`mgenet_mm.models.layers.stgnf_layers`,
the fused evaluation pass in :mod:`mgenet_mm.models.layers.stgnf_fused` and the translation of
official checkpoints in :mod:`mgenet_mm.models.model_converters.stgnf_converter`.
"""
from __future__ import annotations

import math
from argparse import Namespace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import PretrainedInit

from ..layers.stgnf_fast import (FastFlowPlan, fast_flow_applies, fast_flow_forward,
                                 fast_flow_plan, fast_flow_plan_key)
from ..layers.stgnf_fused import fused_flow_applies, fused_flow_forward
from ..layers.stgnf_layers import ActNorm, FlowStep
from ..model_converters.stgnf_converter import (canonical_permutation, check_official_args,
                                                official_args_to_kwargs, read_stgnf_checkpoint,
                                                select_state_dict)
from ..utils.checkpoint import init_weights_without_pretrained, load_state_dict_checked
from ..utils.graph import build_adjacency

__all__ = ['STGNF', 'FlowSequence', 'INFERENCE_MODES']

#: Evaluation passes of the flow (eval mode, no autograd): ``'exact'`` reproduces the
#: step-by-step float32 arithmetic to the bit; ``'fast'`` folds the published layout's constants
#: (:mod:`~mgenet_mm.models.layers.stgnf_fast`), about twice as fast and closer to float64.
INFERENCE_MODES = ('exact', 'fast')

# Variance floor inside the Gaussian log-density. The official implementation adds it; keeping it
# keeps the reported nll identical to the published numbers.
_PRIOR_VAR_EPS = 1e-6


# --------------------------------------------------------------------------------------------
# Flow
# --------------------------------------------------------------------------------------------
class FlowSequence(nn.Module):
    """K flow steps applied in order (``layers`` is part of the checkpoint key names).

    In eval mode without autograd, with the published layout and a uniform graph, the forward
    pass runs as one fused computation with the same numbers (see
    :func:`~mgenet_mm.models.layers.stgnf_fused.fused_flow_forward`);
    ``fused_inference = False`` forces the step-by-step one. With ``inference='fast'`` it runs
    the folded pass of :func:`~mgenet_mm.models.layers.stgnf_fast.fast_flow_forward` instead.

    Args:
        steps (Sequence[FlowStep]): The flow steps.
        inference (str): One of :data:`INFERENCE_MODES`. Defaults to ``'exact'``.
    """

    def __init__(self, steps: Sequence[FlowStep], inference: str = 'exact') -> None:
        super().__init__()
        if inference not in INFERENCE_MODES:
            raise ValueError(f'inference must be one of {INFERENCE_MODES}, got {inference!r}')
        self.layers = nn.ModuleList(steps)
        self.inference = inference
        # Not a state-dict entry: a switch for the fused inference pass (tests compare both).
        self.fused_inference = True
        # The fast pass's folded constants and what they were folded from (see _fast_plan).
        self._fast_plan: Optional[Tuple[tuple, FastFlowPlan]] = None

    def forward(self, x: torch.Tensor,
                adjacency: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Apply all steps.

        Args:
            x (torch.Tensor): (B, C, T, V).
            adjacency (torch.Tensor): (P, V, V).

        Returns:
            tuple[torch.Tensor, torch.Tensor]: z (B, C, T, V) and the summed log-det (B,).
        """
        if self.inference == 'fast' and not self.training \
                and fast_flow_applies(self.layers, x, adjacency):
            plan = self._current_fast_plan(x, adjacency)
            return fast_flow_forward(self.layers, x, adjacency, plan)
        if self._fused_applies(x, adjacency):
            return fused_flow_forward(self.layers, x, adjacency)
        logdet = x.new_zeros(x.shape[0])
        z = x
        for step in self.layers:
            z, step_logdet = step(z, adjacency)
            logdet = logdet + step_logdet
        return z, logdet

    def inverse(self, z: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Apply the inverse steps in reverse order.

        Args:
            z (torch.Tensor): (B, C, T, V).
            adjacency (torch.Tensor): (P, V, V).

        Returns:
            torch.Tensor: x (B, C, T, V).
        """
        x = z
        for step in reversed(self.layers):
            x = step.inverse(x, adjacency)
        return x

    def _current_fast_plan(self, x: torch.Tensor, adjacency: torch.Tensor) -> FastFlowPlan:
        """The folded constants for these weights, rebuilt when any of them changed."""
        key = fast_flow_plan_key(self.layers, x, adjacency)
        if self._fast_plan is None or self._fast_plan[0] != key:
            self._fast_plan = (key, fast_flow_plan(self.layers, x.shape[2], adjacency))
        return self._fast_plan[1]

    def _fused_applies(self, x: torch.Tensor, adjacency: torch.Tensor) -> bool:
        """Whether the fused pass computes this forward pass (see :func:`fused_flow_applies`)."""
        return (self.fused_inference and not self.training
                and fused_flow_applies(self.layers, x, adjacency))


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
@MODELS.register_module()
class STGNF(BaseModule):
    """STG-NF normalizing flow over pose windows (one level of K flow steps).

    Defaults match the published ShanghaiTech checkpoint (``ShanghaiTech_85_9.tar``). Its
    state dict loads with strict key matching: keys are ``flow.layers.<k>.actnorm.{bias,logs}``,
    ``flow.layers.<k>.block.0.{gcn.conv, tcn.0, tcn.2, tcn.3, residual.0, residual.1}.*`` (no
    ``residual`` in step 0) and the prior buffers ``prior_h``, ``prior_h_normal``,
    ``prior_h_abnormal``.

    Args:
        in_channels (int): Flow channels C (x, y -> 2). Must be even. Inputs may carry one extra
            trailing channel (keypoint confidence), which is dropped. Defaults to 2.
        num_joints (int): Joints V; must be 18 (OpenPose layout). Defaults to 18.
        seg_len (int): Window length T. Defaults to 24.
        num_steps (int): Number of flow steps K. Defaults to 8.
        prior_mean (float): R: the prior is N(R, 1) for normal, N(-R, 1) for abnormal samples.
            Defaults to 3.0.
        permutation (str): ``'reverse'`` (alias ``'invcov'``, the checkpoints' spelling),
            ``'shuffle'`` or ``'inv1x1'`` (alias ``'invconv'``). Defaults to ``'reverse'``.
        strategy (str): Adjacency partitioning (``'uniform'``, ``'distance'``, ``'spatial'``).
            Defaults to ``'uniform'``.
        max_hop (int): Joints within this many hops are connected. Defaults to 8.
        temporal_kernel (int, optional): Temporal kernel of the ST-GCN blocks; ``None`` means
            ``seg_len // 2 + 1`` (13 for T = 24, 9 for T = 16). Must be odd.
        hidden_channels (int): Width of an extra ST-GCN block in the coupling network; 0 (the
            published models) for a single block ``C/2 -> C``. Defaults to 0.
        inference (str): The evaluation pass (eval mode, no autograd): ``'exact'``, the
            step-by-step float32 arithmetic to the bit, or ``'fast'``, the folded pass of
            :mod:`~mgenet_mm.models.layers.stgnf_fast` (same maths, different rounding; no
            state-dict change). Training and layouts the fast pass does not cover always run
            step by step. Defaults to ``'exact'``.
        init_cfg (dict | list[dict], optional): mmengine init config. A ``Pretrained`` entry
            (``checkpoint``, optional ``prefix``) is loaded by :meth:`load_official_checkpoint`,
            i.e. strictly and with ActNorm marked initialised.
    """

    def __init__(self,
                 in_channels: int = 2,
                 num_joints: int = 18,
                 seg_len: int = 24,
                 num_steps: int = 8,
                 prior_mean: float = 3.0,
                 permutation: str = 'reverse',
                 strategy: str = 'uniform',
                 max_hop: int = 8,
                 temporal_kernel: Optional[int] = None,
                 hidden_channels: int = 0,
                 inference: str = 'exact',
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 2 or in_channels % 2:
            raise ValueError(f'in_channels must be even (coupling halves), got {in_channels}')
        if num_steps < 1:
            raise ValueError(f'num_steps must be >= 1, got {num_steps}')
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.seg_len = seg_len
        self.num_steps = num_steps
        self.prior_mean = float(prior_mean)
        self.permutation = canonical_permutation(permutation)
        self.strategy = strategy
        self.max_hop = max_hop
        self.temporal_kernel = seg_len // 2 + 1 if temporal_kernel is None else temporal_kernel
        self.hidden_channels = hidden_channels

        adjacency = torch.from_numpy(build_adjacency(strategy, max_hop, num_joints)).float()
        # Fixed graph: a buffer so it follows .to(device), not saved (the checkpoints lack it).
        self.register_buffer('adjacency', adjacency, persistent=False)
        self.flow = FlowSequence([
            FlowStep(in_channels, hidden_channels, self.temporal_kernel, adjacency.shape[0],
                     self.permutation, first=(k == 0)) for k in range(num_steps)
        ], inference=inference)
        # Prior parameters as in the checkpoints: (mean, log-std) stacked on the channel axis.
        # 'prior_h' (zeros: N(0, 1)) is used for label 0, '_normal' for +1, '_abnormal' for -1.
        shape = (in_channels, seg_len, num_joints)
        zeros = torch.zeros(shape)
        self.register_buffer('prior_h', torch.zeros(1, 2 * in_channels, seg_len, num_joints))
        self.register_buffer('prior_h_normal', torch.cat((zeros + self.prior_mean, zeros)))
        self.register_buffer('prior_h_abnormal', torch.cat((zeros - self.prior_mean, zeros)))

    # ---------------------------------------------------------------- construction / loading
    @staticmethod
    def official_args_to_kwargs(args: Union[Namespace, Mapping[str, Any]]) -> Dict[str, Any]:
        """Translate the official training arguments into constructor kwargs.

        See :func:`~mgenet_mm.models.model_converters.official_args_to_kwargs`.

        Args:
            args (Namespace | Mapping): The ``args`` stored in an official checkpoint.

        Returns:
            dict: kwargs for :class:`STGNF` (without ``init_cfg``).
        """
        return official_args_to_kwargs(args)

    @classmethod
    def from_official_args(cls, args: Union[Namespace, Mapping[str, Any]],
                           **overrides: Any) -> 'STGNF':
        """Build an (untrained) model with the architecture described by official ``args``.

        Args:
            args (Namespace | Mapping): The ``args`` stored in an official checkpoint.
            **overrides: Constructor kwargs that replace the derived ones.

        Returns:
            STGNF: The new model.
        """
        kwargs = cls.official_args_to_kwargs(args)
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def from_official_checkpoint(cls, path: str, map_location: Union[str, torch.device] = 'cpu',
                                 **overrides: Any) -> 'STGNF':
        """Build the model from an official checkpoint's ``args`` and load its weights strictly.

        The file's ``args`` (an ``argparse.Namespace``) is on the weights-only allowlist of
        :mod:`mgenet_mm.utils`, so official files load without ``--trust-checkpoint``. The
        returned model is in training mode like any new module: call ``.eval()`` for scoring.

        Args:
            path (str): Checkpoint path (e.g. ``ShanghaiTech_85_9.tar``).
            map_location (str | torch.device): Where to put the tensors. Defaults to ``'cpu'``.
            **overrides: Constructor kwargs that replace those derived from ``args``.

        Returns:
            STGNF: The loaded model, ActNorm marked initialised.
        """
        checkpoint = read_stgnf_checkpoint(path, map_location)
        if not isinstance(checkpoint, Mapping) or 'args' not in checkpoint:
            raise KeyError(f"{path} has no 'args' entry; build STGNF(...) and call "
                           'load_official_checkpoint instead')
        model = cls.from_official_args(checkpoint['args'], **overrides)
        model._load_checkpoint_dict(checkpoint, source=path, strict=True, prefix=None,
                                    check_args=not set(overrides) - {'inference'})
        return model

    def load_official_checkpoint(self, path: str, strict: bool = True,
                                 prefix: Optional[str] = None,
                                 map_location: Union[str, torch.device] = 'cpu',
                                 check_args: bool = True) -> 'STGNF':
        """Load weights from an official STG-NF checkpoint (or any checkpoint of this module).

        Loaded under the checkpoint trust policy of :mod:`mgenet_mm.utils` (official
        checkpoints, with their ``argparse.Namespace`` under ``args``, need no flag). The weights
        are taken from ``checkpoint['state_dict']`` (or the file itself if it is a bare state
        dict). ActNorm layers whose parameters were loaded are marked initialised, so evaluation
        never re-initialises them from data.

        Args:
            path (str): Checkpoint path.
            strict (bool): Raise if keys are missing or unexpected or shapes differ (listing
                them). With ``False`` only the fitting entries are loaded and the mismatches
                are logged as a warning. Defaults to True.
            prefix (str, optional): Load only keys under this prefix (e.g. ``'backbone.'``),
                with the prefix removed.
            map_location (str | torch.device): Where to put the tensors. Defaults to ``'cpu'``.
            check_args (bool): If the checkpoint carries official ``args``, raise when they
                describe a different architecture than this model. Defaults to True.

        Returns:
            STGNF: ``self``.
        """
        checkpoint = read_stgnf_checkpoint(path, map_location)
        self._load_checkpoint_dict(checkpoint, source=path, strict=strict, prefix=prefix,
                                   check_args=check_args)
        return self

    def _load_checkpoint_dict(self, checkpoint: Any, source: str, strict: bool,
                              prefix: Optional[str], check_args: bool) -> None:
        if check_args and prefix is None and isinstance(checkpoint, Mapping) \
                and checkpoint.get('args') is not None:
            check_official_args(checkpoint['args'], self.architecture(), source)
        report = load_state_dict_checked(self, select_state_dict(checkpoint, prefix),
                                         strict=strict, source=f'STGNF checkpoint {source}',
                                         target='the model')
        if report.message:  # only without strict: the fitting entries are loaded
            print_log(report.message, logger='current', level=30)  # logging.WARNING

    def architecture(self) -> Dict[str, Any]:
        """The constructor settings of this model (permutation canonical, kernel resolved).

        Returns:
            dict: The kwargs of :class:`STGNF` without ``init_cfg`` and ``inference`` (how the
            flow is evaluated, not what it is).
        """
        return dict(in_channels=self.in_channels, num_joints=self.num_joints,
                    seg_len=self.seg_len, num_steps=self.num_steps, prior_mean=self.prior_mean,
                    permutation=self.permutation, strategy=self.strategy, max_hop=self.max_hop,
                    temporal_kernel=self.temporal_kernel, hidden_channels=self.hidden_channels)

    def init_weights(self) -> None:
        """Run mmengine initialisation, loading ``Pretrained`` entries strictly.

        mmengine's own ``Pretrained`` initialiser loads with ``strict=False`` and only logs key
        mismatches; here such entries go through :meth:`load_official_checkpoint` instead
        (``state_dict`` entry, optional ``prefix``, ActNorm marked initialised, mismatches raise).
        """
        if self.is_init:
            super().init_weights()  # mmengine warns about the repeated call
            return
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else (
            [self.init_cfg] if self.init_cfg else [])
        pretrained = [c for c in cfgs if c.get('type') in ('Pretrained', PretrainedInit)]
        if not pretrained:
            super().init_weights()
            return
        # the rest goes through mmengine as usual
        init_weights_without_pretrained(self, [c for c in cfgs if c not in pretrained],
                                        super().init_weights)
        for cfg in pretrained:
            self.load_official_checkpoint(cfg['checkpoint'], strict=True,
                                          prefix=cfg.get('prefix'),
                                          map_location=cfg.get('map_location', 'cpu'))

    # ---------------------------------------------------------------- ActNorm state
    @property
    def actnorm_initialized(self) -> bool:
        """Whether every ActNorm layer has its parameters (from data or from a checkpoint)."""
        return all(m.initialized for m in self.modules() if isinstance(m, ActNorm))

    def set_actnorm_initialized(self, value: bool = True) -> None:
        """Mark all ActNorm layers (un)initialised, e.g. after assigning parameters by hand.

        Args:
            value (bool): The new state. Defaults to True.
        """
        for m in self.modules():
            if isinstance(m, ActNorm):
                m.initialized = value

    # ---------------------------------------------------------------- flow
    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f'expected (B, C, T, V) input, got shape {tuple(x.shape)}')
        b, c, t, v = x.shape
        if c == self.in_channels + 1:
            x = x[:, :self.in_channels]  # drop the confidence channel: the flow sees x, y only
        elif c != self.in_channels:
            raise ValueError(f'expected {self.in_channels} (or {self.in_channels + 1} with '
                             f'confidence) channels, got {c}')
        if (t, v) != (self.seg_len, self.num_joints):
            raise ValueError(f'expected T={self.seg_len}, V={self.num_joints}, got T={t}, V={v}')
        return x.to(self.prior_h.dtype)

    def prior(self, batch_size: int,
              labels: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-std of the Gaussian prior per sample.

        Args:
            batch_size (int): B.
            labels (torch.Tensor, optional): (B,) with 1 = normal (mean +R), -1 = abnormal
                (mean -R), anything else mean 0. ``None``: all normal, as the official test does.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: mean and log-std, each (B, C, T, V).
        """
        if labels is None:
            h = self.prior_h_normal.unsqueeze(0).expand(batch_size, -1, -1, -1)  # (B, 2C, T, V)
        else:
            labels = labels.to(self.prior_h.device).view(-1, 1, 1, 1)  # (B,) -> (B, 1, 1, 1)
            h = torch.where(labels == 1, self.prior_h_normal.unsqueeze(0),
                            torch.where(labels == -1, self.prior_h_abnormal.unsqueeze(0),
                                        self.prior_h))  # (B, 2C, T, V)
        return h[:, :self.in_channels], h[:, self.in_channels:]

    def forward(self, x: torch.Tensor,
                labels: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode pose windows.

        Args:
            x (torch.Tensor): (B, C, T, V) normalised windows (x, y), or (B, C+1, T, V) with a
                trailing confidence channel that is ignored.
            labels (torch.Tensor, optional): Prior selection, see :meth:`prior`.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: latent z (B, C, T, V) and nll (B,) in bits per
            dimension; the anomaly-detection normality score is ``-nll``.
        """
        x = self._check_input(x)
        z, logdet = self.flow(x, self.adjacency)
        if labels is None:  # every sample has the normal prior: (C, T, V), broadcast over B
            mean = self.prior_h_normal[:self.in_channels]
            logs = self.prior_h_normal[self.in_channels:]
        else:
            mean, logs = self.prior(x.shape[0], labels)  # (B, C, T, V) each
        # log N(z; mean, exp(logs)^2) summed over (C, T, V):
        # -0.5 * (sum (z - mean)^2 / var + sum (2 logs + log 2 pi)), var = exp(2 logs) + eps
        var = torch.exp(2.0 * logs) + _PRIOR_VAR_EPS
        diff = z - mean
        quadratic = (diff * diff).div_(var).sum(dim=(-3, -2, -1))  # (B,)
        constant = (2.0 * logs + math.log(2.0 * math.pi)).sum(dim=(-3, -2, -1))  # () or (B,)
        log_pz = -0.5 * (quadratic + constant)
        log_px = log_pz + logdet  # change of variables, nats per window
        nll = -log_px / (math.log(2.0) * z[0].numel())  # bits per dimension (C*T*V dims)
        return z, nll

    def normality_score(self, x: torch.Tensor) -> torch.Tensor:
        """Per-window normality score (higher is more normal).

        Args:
            x (torch.Tensor): (B, C, T, V) or (B, C+1, T, V) pose windows.

        Returns:
            torch.Tensor: ``-nll`` (B,).
        """
        return -self.forward(x)[1]

    def latent_features(self, x: torch.Tensor, return_nll: bool = False
                        ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Per-frame skeleton features f_sk from the latent z.

        The flow's latent z (B, C, T, V) is permuted to (B, T, C, V) and flattened to
        (B, T, C*V): feature index ``c * V + v`` holds latent channel c of joint v (for C = 2:
        the first V entries are z channel 0, the next V are channel 1; joints in the 18-joint
        OpenPose order of the input). z channel 0 is the half that the last coupling left
        unchanged, channel 1 the half it transformed; after the channel reversals they are not
        plain x and y.

        Args:
            x (torch.Tensor): (B, C, T, V) or (B, C+1, T, V) pose windows.
            return_nll (bool): Also return the nll (B,) computed in the same pass.

        Returns:
            torch.Tensor | tuple[torch.Tensor, torch.Tensor]: (B, T, C*V) features (and nll).
        """
        z, nll = self.forward(x)
        b, c, t, v = z.shape
        # (B, C, T, V) -> (B, T, C, V) -> (B, T, C*V)
        feats = z.permute(0, 2, 1, 3).reshape(b, t, c * v)
        return (feats, nll) if return_nll else feats

    def reverse(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse pass: map latents back to pose windows.

        Args:
            z (torch.Tensor): (B, C, T, V) latents.

        Returns:
            torch.Tensor: (B, C, T, V) pose windows x with ``forward(x)[0] == z``.
        """
        if z.dim() != 4 or z.shape[1:] != (self.in_channels, self.seg_len, self.num_joints):
            raise ValueError(f'expected (B, {self.in_channels}, {self.seg_len}, '
                             f'{self.num_joints}) latents, got {tuple(z.shape)}')
        return self.flow.inverse(z.to(self.prior_h.dtype), self.adjacency)

    def sample(self, num_samples: int, temperature: float = 1.0,
               labels: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw pose windows: z ~ N(mean, (temperature * std)^2), then :meth:`reverse`.

        Args:
            num_samples (int): B.
            temperature (float): Scales the prior's standard deviation. Defaults to 1.
            labels (torch.Tensor, optional): Prior selection, see :meth:`prior`.
            generator (torch.Generator, optional): Random source.

        Returns:
            torch.Tensor: (B, C, T, V) samples.
        """
        mean, logs = self.prior(num_samples, labels)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device,
                            dtype=mean.dtype)
        return self.reverse(mean + torch.exp(logs) * temperature * noise)
