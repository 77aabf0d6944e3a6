"""MGENet recognizer: the two guidance levels and the behaviour-scene matching, wired together.

This is the only place that knows about data samples, training levels and loss weights; the
maths lives in the backbones, heads and memory modules.
"""
from __future__ import annotations

import copy
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from torch import Tensor

from mmaction.models import BaseRecognizer
from mmaction.registry import MODELS
from mmaction.utils import SampleList
from ...preprocessing import DEFAULT_PREPROCESSOR
from ..heads.lsta_head import MOTION_SCORE_VARIANTS, MOTION_VECTOR_VARIANTS, motion_vector
from ..modules.masking import complementary_masks, global_batch_share, tube_mask
from ..utils.ema import ema_update_
from ..utils.freezing import FrozenModuleMixin, freeze_module
from ..utils.guidance_cache import cached_guidance_features
from .appearance_level import (APPEARANCE_HEAD_SHARING, APPEARANCE_TEACHERS, MASK_INPUTS,
                               AppearanceLevelMixin)
from .scene_level import SceneLevelMixin
from .stgnf_recognizer import pose_inputs

LEVELS = ('motion', 'appearance')


@MODELS.register_module()
class MGENetRecognizer(AppearanceLevelMixin, SceneLevelMixin, FrozenModuleMixin,
                       BaseRecognizer):
    """Multilevel Guidance-Exploration Network with Behavior-Scene Matching.

    Inputs (a dict, one entry per modality, batched by ``MultiModalDataPreprocessor``):

    - ``pose``: (B, T, V, C) normalised skeleton windows (C = 2 or 3).
    - ``tokens``: (B, C_in, t, h, w) cube tokens of the person tube, read from a feature cache;
      or ``imgs``: (B, 3, T, H, W) tubes, embedded on the fly by the frozen ``cube_embed``.
    - ``scene_feat``: (B, C_s) scene features from a cache; or ``scene``: (B, 3, H, W) scene
      images encoded on the fly by the frozen ``scene_encoder``.

    Level 1 (``'motion'``): the frozen pretrained flow gives f_sk (eq. 1); the RGB encoder and the
    LSTA head give f_rgb and learn L_mo (eq. 4). Level 2 (``'appearance'``): the behaviour-memory
    read-out f_b of the RGB encoder's tokens, projected by H_u, gives f_u; the mask encoder sees
    tube-masked tokens (or the tokens of tube-masked frames, ``mask_input='pixels'``) and its
    projection f_m learns L_app = 1 - cos(f_m, f_u) (eq. 6) with f_u detached, so L_app never
    reaches the RGB encoder. ``train_cfg.levels`` selects the levels: ``('motion',)`` then
    ``('appearance',)`` (the RGB encoder is then run without gradient), or both at once. Total loss eq. 12: L_mo + alpha L_app + beta (L_sep^b + L_sep^s + L_sep^r),
    with alpha the mask head's ``loss_weight`` and beta ``sep_loss_weight``.

    Memories: the behaviour memory is queried by every token of e_b (W_b: P x N_b), the scene
    memory by e_s (W_s: 1 x N_s). Both are updated without gradient at every training step.
    Only the queries receive gradients from the separateness losses; since e_s comes from a
    frozen encoder, L_sep^s is logged but moves no parameter. The BSMM is written once, after the
    last epoch, by :class:`~mgenet_mm.engine.hooks.BSMMWriteHook` (eq. 8-9); L_sep^r is added
    only once it holds items (before that it would be a constant).

    ``predict`` attaches ``anomaly_scores = dict(mo=S_mo, app=S_app, mm=S_mm)`` (eq. 13-15) to
    each data sample (``mm`` only once the BSMM is written); :class:`VADAUCMetric` min-max
    normalises them over the evaluated set and mixes them with lambda_app = lambda_mm = 0.1
    (eq. 16). With ``score_calibration`` they are standardised on the scale of the normal
    training windows instead (calibrated fusion, see :class:`ScoreCalibration`).

    Args:
        guidance (dict): The pretrained, frozen :class:`STGNF` (load it with ``init_cfg``).
        backbone (dict): The RGB encoder (a :class:`SpaceTimeViT`).
        motion_head (dict): H_B, an :class:`LSTAHead` (``use_lsta=False`` for the ablation).
        mask_encoder (dict, optional): The mask encoder (a :class:`SpaceTimeViT` with
            ``use_mask_token=True``); None disables level 2 (the "no L_app" ablation).
        appearance_head (dict, optional): H_u, a :class:`ProjectionHead` applied to the
            level-2 teacher (see ``appearance_teacher``). Required with
            ``appearance_head_sharing='separate'``, and must be None otherwise (the mask head
            then projects the teacher; a config that still sets it is refused rather than
            silently ignored).
        mask_head (dict, optional): The mask encoder's :class:`ProjectionHead`; owns L_app.
        behaviour_memory (dict): :class:`MemoryBank` of N_b items of width C_b.
        scene_memory (dict, optional): :class:`MemoryBank` of N_s items of width C_s.
        bsmm (dict, optional): :class:`BSMM` (``behaviour_len`` and ``scene_len`` are derived);
            None is the "no BSMM" ablation.
        bsmm_behaviour (str): The behaviour half of the BSMM query (eq. 8): ``'rgb'`` (default,
            the paper): W_b of the RGB encoder's tokens; ``'guidance'``: W_g, the addressing
            weights of the flow's skeleton features f_sk in ``guidance_memory`` (see
            :mod:`.scene_level` for why).
        guidance_memory (dict, optional): With ``bsmm_behaviour='guidance'`` (and only then), a
            :class:`MemoryBank` queried by every frame of f_sk (``dim`` defaults to the
            motion head's ``out_channels``, C_mo), written by eq. 9 at every training step.
        mask_generator (dict, optional): :class:`BlockMaskGenerator` over the (h, w) grid.
        cube_embed (dict, optional): Frozen cube embedding F_B for ``imgs`` inputs.
        scene_encoder (dict, optional): Frozen scene encoder F_S for ``scene`` inputs.
        motion_whitening (dict, optional): A :class:`GapWhitening` (``dim`` is C_mo): once
            fitted on the normal training windows
            (:class:`~mgenet_mm.engine.hooks.GapWhiteningHook`), S_mo is the gap f_sk - f_rgb
            measured in the units of its own spread on them (a Mahalanobis norm) instead of
            eq. 13's plain norm. Needs
            ``test_cfg.motion_score`` 'diff' (or another norm variant of Table 3, e.g. 'f_sk':
            the flow's latent alone, whitened). None (the paper): eq. 13.
        score_calibration (dict, optional): A :class:`ScoreCalibration`: once fitted on the
            normal training windows (:class:`~mgenet_mm.engine.hooks.ScoreCalibrationHook`),
            ``predict`` attaches the components standardised with its stored statistics, to be
            summed by a metric with ``normalize=False``. None (the paper-literal setting): raw
            components, min-max normalised by the metric.
        sep_loss_weight (float): beta of eq. 12.
        appearance_teacher (str): What H_u projects into f_u: ``'readout'`` (f_b, the paper),
            ``'embedding'`` (e_b) or ``'concat'`` ([e_b, f_b], H_u then takes 2 C_b channels).
            The read-out is a normal prototype of each token; as the teacher it hides the very
            appearance the student should fail to predict. Defaults to ``'readout'``.
        appearance_head_sharing (str): Which head gives f_u. ``'separate'`` (default, as so
            far): ``appearance_head``, a head of its own that no loss trains (f_u is a fixed
            random projection of the teacher). ``'shared'``: f_u = sg(H_m(teacher)) with the
            mask head's own weights, the paper's single "projection head"; H_m is trained
            through f_m only. ``'ema'``: f_u = H_ema(teacher), H_ema an exponential moving
            average of H_m (module ``appearance_ema_head``, no gradient, saved in the
            checkpoint), updated once per training ``loss`` call, before f_u is computed, with
            H_m as the last optimiser step left it: ``H_ema <- m H_ema + (1 - m) H_m`` (with
            gradient accumulation: once per micro-batch). Sharing needs a teacher as wide as
            the mask head's input (ValueError otherwise).
        appearance_predictor (dict, optional): A predictor on the mask side (e.g.
            :class:`AppearancePredictor`), the guard against collapse of a shared head: f_m =
            P(H_m(mask tokens)) in L_app and in S_app alike. None (default): f_m = H_m(...).
        appearance_ema_momentum (float): m of ``'ema'``, in [0, 1). Defaults to 0.99.
        mask_input (str): What the level-2 masks of the masked passes (L_app in training, the
            two complementary passes of S_app, eq. 14) act on. ``'tokens'`` (default, as so
            far): the mask encoder gets the unmasked cube tokens and puts its mask token at the
            masked positions; the frozen stage mixes neighbouring cubes, so visible tokens
            carry some masked content. ``'pixels'`` (the paper's order, eq. 5): the clips
            ``imgs`` (after the data preprocessor's normalisation) have every pixel of a masked
            token's (T/t, H/h, W/w) block set to 0, i.e. to the normalised mean colour, and are
            embedded again by the frozen ``cube_embed``; the mask encoder still puts its mask
            token at the masked positions, so L_app stays over the masked tokens. The unmasked
            pass (e_b, f_u) is unchanged. Needs ``cube_embed`` and ``imgs`` inputs: a feature
            cache holds unmasked tokens only (ValueError otherwise).
        train_cfg (dict, optional): ``levels`` (default both), ``update_memories`` (True),
            ``cache_guidance`` (True: f_sk of each training window is computed once and kept,
            see :mod:`~mgenet_mm.models.utils.guidance_cache`) and
            ``guidance_cache_windows`` (its bound, default 262,144 windows).
        test_cfg (dict, optional): ``motion_score`` (``'diff'`` = eq. 13, or a Table 3
            variant), ``mask_seed`` (seed of the complementary test mask pair shared by all windows,
            default 0).
        data_preprocessor (dict, optional): Defaults to
            :data:`mgenet_mm.preprocessing.DEFAULT_PREPROCESSOR`.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 guidance: dict,
                 backbone: dict,
                 motion_head: dict,
                 behaviour_memory: dict,
                 mask_encoder: Optional[dict] = None,
                 appearance_head: Optional[dict] = None,
                 mask_head: Optional[dict] = None,
                 scene_memory: Optional[dict] = None,
                 bsmm: Optional[dict] = None,
                 bsmm_behaviour: str = 'rgb',
                 guidance_memory: Optional[dict] = None,
                 mask_generator: Optional[dict] = None,
                 cube_embed: Optional[dict] = None,
                 scene_encoder: Optional[dict] = None,
                 score_calibration: Optional[dict] = None,
                 motion_whitening: Optional[dict] = None,
                 sep_loss_weight: float = 0.001,
                 appearance_teacher: str = 'readout',
                 appearance_head_sharing: str = 'separate',
                 appearance_predictor: Optional[dict] = None,
                 appearance_ema_momentum: float = 0.99,
                 mask_input: str = 'tokens',
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor or DEFAULT_PREPROCESSOR)
        self.init_cfg = init_cfg
        self.guidance = MODELS.build(guidance)
        self.motion_head = MODELS.build(motion_head)
        self.behaviour_memory = MODELS.build(behaviour_memory)
        self.scene_memory = MODELS.build(scene_memory) if scene_memory else None
        self.cube_embed = MODELS.build(cube_embed) if cube_embed else None
        self.scene_encoder = MODELS.build(scene_encoder) if scene_encoder else None
        self.token_grid: Tuple[int, int, int] = tuple(self.motion_head.token_grid)

        if appearance_head_sharing not in APPEARANCE_HEAD_SHARING:
            raise ValueError(f'appearance_head_sharing must be one of {APPEARANCE_HEAD_SHARING}, '
                             f'got {appearance_head_sharing!r}')
        self.appearance_head_sharing = appearance_head_sharing
        separate = appearance_head_sharing == 'separate'
        if not separate and appearance_head is not None:
            raise ValueError(f"appearance_head_sharing='{appearance_head_sharing}' projects the "
                             'teacher with the mask head: appearance_head must be None (set '
                             "model.appearance_head=None in the config), or use "
                             "appearance_head_sharing='separate'")
        level2 = (mask_encoder, mask_head, mask_generator) + ((appearance_head, )
                                                              if separate else ())
        if any(part is not None for part in level2) and not all(p is not None for p in level2):
            raise ValueError('level 2 needs mask_encoder, appearance_head, mask_head and '
                             'mask_generator together (or none of them)' if separate else
                             'level 2 needs mask_encoder, mask_head and mask_generator '
                             'together (or none of them)')
        self.with_appearance = mask_encoder is not None
        if not self.with_appearance and (not separate or appearance_predictor is not None):
            raise ValueError('appearance_head_sharing and appearance_predictor act on level 2, '
                             'which this config has not (no mask_encoder): leave them at '
                             "'separate' and None")
        if appearance_teacher not in APPEARANCE_TEACHERS:
            raise ValueError(f'appearance_teacher must be one of {APPEARANCE_TEACHERS}, got '
                             f'{appearance_teacher!r}')
        self.appearance_teacher = appearance_teacher
        self.appearance_head = None
        self.appearance_predictor = None
        self.appearance_ema_head = None
        if self.with_appearance:
            self.mask_encoder = MODELS.build(mask_encoder)
            if separate:  # built in this order as before: the same seed gives the same weights
                self.appearance_head = MODELS.build(appearance_head)
            self.mask_head = MODELS.build(mask_head)
            self.mask_generator = MODELS.build(mask_generator)
            if (self.mask_generator.height, self.mask_generator.width) != self.token_grid[1:]:
                raise ValueError('mask_generator.input_size '
                                 f'{(self.mask_generator.height, self.mask_generator.width)} '
                                 f'must be the (h, w) of the token grid {self.token_grid}')
            if not separate:
                self._check_shared_width()
            if appearance_head_sharing == 'ema':
                if not 0. <= appearance_ema_momentum < 1.:
                    raise ValueError('appearance_ema_momentum must be in [0, 1), got '
                                     f'{appearance_ema_momentum}')
                # starts as H_m (init_weights copies H_m again after initialising it); a
                # parameter-only target: frozen, never in an optimiser step
                self.appearance_ema_head = freeze_module(copy.deepcopy(self.mask_head))
                self.register_buffer('appearance_ema_steps', torch.zeros((), dtype=torch.long))
            if appearance_predictor is not None:
                self.appearance_predictor = MODELS.build(appearance_predictor)
                width = getattr(self.appearance_predictor, 'in_channels', None)
                if width is not None and width != self.mask_head.out_channels:
                    raise ValueError(f'appearance_predictor.in_channels ({width}) must be the '
                                     'width of f_m, mask_head.out_channels '
                                     f'({self.mask_head.out_channels})')
        self.appearance_ema_momentum = float(appearance_ema_momentum)
        if mask_input not in MASK_INPUTS:
            raise ValueError(f'mask_input must be one of {MASK_INPUTS}, got {mask_input!r}')
        if mask_input == 'pixels' and not self.with_appearance:
            raise ValueError("mask_input='pixels' acts on level 2, which this config has not (no "
                             "mask_encoder): leave mask_input at 'tokens'")
        if mask_input == 'pixels' and self.cube_embed is None:
            raise ValueError("mask_input='pixels' embeds the masked frames with the frozen "
                             'cube_embed, and this config has none (model.cube_embed=None, as in '
                             'the demo_cached*.py configs, whose feature cache holds unmasked '
                             'tokens): use a config that reads imgs with a cube_embed (e.g. '
                             "configs/mgenet/demo.py), or mask_input='tokens'")
        self.mask_input = mask_input

        self.check_bsmm_behaviour(bsmm_behaviour, guidance_memory, with_bsmm=bsmm is not None)
        self.bsmm_behaviour = bsmm_behaviour
        self.guidance_memory = MODELS.build(
            dict(dict(dim=self.motion_head.out_channels), **guidance_memory)
        ) if guidance_memory is not None else None
        if bsmm is not None:
            if self.scene_memory is None:
                raise ValueError('the BSMM matches behaviour against scene: it needs a '
                                 'scene_memory')
            bsmm = dict(bsmm, behaviour_len=self.bsmm_behaviour_len,
                        scene_len=self.scene_memory.num_items)
            self.bsmm = MODELS.build(bsmm)
        else:
            self.bsmm = None
        self.sep_loss_weight = sep_loss_weight
        self.score_calibration = MODELS.build(score_calibration) if score_calibration else None
        self._warned_uncalibrated = False

        train_cfg = dict(train_cfg or {})
        self.levels = tuple(train_cfg.get('levels', LEVELS))
        unknown = set(self.levels) - set(LEVELS)
        if unknown or not self.levels:
            raise ValueError(f'train_cfg.levels must be a non-empty subset of {LEVELS}, '
                             f'got {self.levels}')
        if 'appearance' in self.levels and not self.with_appearance:
            raise ValueError("train_cfg.levels has 'appearance' but no mask_encoder is set")
        self.update_memories = bool(train_cfg.get('update_memories', True))
        test_cfg = dict(test_cfg or {})
        self.motion_score = test_cfg.get('motion_score', 'diff')
        if self.motion_score not in MOTION_SCORE_VARIANTS:
            raise ValueError(f'test_cfg.motion_score must be one of {MOTION_SCORE_VARIANTS}')
        self.mask_seed = int(test_cfg.get('mask_seed', 0))
        if motion_whitening is not None and self.motion_score not in MOTION_VECTOR_VARIANTS:
            raise ValueError('motion_whitening whitens the vector whose norm S_mo takes: it '
                             f'needs test_cfg.motion_score in {MOTION_VECTOR_VARIANTS}, got '
                             f'{self.motion_score!r}')
        self.motion_whitening = MODELS.build(
            dict(dict(dim=self.motion_head.out_channels), **motion_whitening)
        ) if motion_whitening is not None else None
        self._warned_unwhitened = False

        for frozen in self.frozen_modules():
            freeze_module(frozen)

    # ------------------------------------------------------------------ plumbing
    def frozen_modules(self) -> List[torch.nn.Module]:
        """The frozen parts, kept in eval mode by ``train()``: the guidance flow (BatchNorm must
        keep its running statistics), the feature stages when present, and the EMA target head
        of ``appearance_head_sharing='ema'`` (moved by its average, never by a gradient)."""
        return [part for part in (self.guidance, self.cube_embed, self.scene_encoder,
                                  self.appearance_ema_head) if part is not None]

    def init_weights(self) -> None:
        """Initialise the parts; the EMA target head then starts as a copy of the mask head.

        Left as it is when it has been averaged already (``appearance_ema_steps`` > 0, e.g.
        restored by a whole-model ``init_cfg``).
        """
        super().init_weights()
        if self.appearance_ema_head is not None and int(self.appearance_ema_steps) == 0:
            ema_update_(self.appearance_ema_head, self.mask_head, 0.)

    def _tokens(self, inputs: Dict[str, Tensor]) -> Tensor:
        if 'tokens' in inputs:
            return inputs['tokens']
        if 'imgs' in inputs and self.cube_embed is not None:
            with torch.no_grad():
                return self.cube_embed(inputs['imgs'])  # (B, C_in, t, h, w)
        raise KeyError('MGENet needs `tokens` (cached cube features) or `imgs` with a '
                       'cube_embed in the config')

    def _scene(self, inputs: Dict[str, Tensor]) -> Optional[Tensor]:
        if self.scene_memory is None:
            return None
        if 'scene_feat' in inputs:
            return inputs['scene_feat']
        if 'scene' in inputs and self.scene_encoder is not None:
            with torch.no_grad():
                return self.scene_encoder(inputs['scene'])  # (B, C_s)
        raise KeyError('MGENet with a scene memory needs `scene_feat` (cached) or `scene` '
                       'images with a scene_encoder in the config')

    def guidance_features(self, pose: Tensor) -> Tensor:
        """f_sk (B, T, C_mo) of the frozen flow (eq. 1)."""
        with torch.no_grad():
            return self.guidance.latent_features(pose_inputs(pose))

    def extract_feat(self, inputs: Dict[str, Tensor], stage: str = 'backbone',
                     **kwargs) -> Tuple[Tensor, dict]:
        """e_b (B, P, C_b): the RGB encoder's tokens (``mode='tensor'``)."""
        return self.backbone(self._tokens(inputs)), dict()

    # ------------------------------------------------------------------ training
    def loss(self, inputs: Dict[str, Tensor], data_samples: SampleList,
             **kwargs) -> Dict[str, Tensor]:
        tokens = self._tokens(inputs)
        scene = self._scene(inputs)
        losses: Dict[str, Tensor] = {}
        train_motion = 'motion' in self.levels
        with torch.set_grad_enabled(train_motion):
            e_b = self.backbone(tokens)  # (B, P, C_b)
        f_sk = None
        if train_motion or self.guidance_memory is not None:
            # The flow is frozen: f_sk of a window seen before comes from the cache.
            f_sk = cached_guidance_features(self, inputs['pose'], data_samples)
        if train_motion:
            f_rgb = self.motion_head(e_b, self.token_grid)
            losses.update(self.motion_head.loss(f_rgb, f_sk))
            losses['loss_sep_b'] = self.sep_loss_weight * \
                self.behaviour_memory.separateness_loss(e_b)
        if 'appearance' in self.levels:
            if self.appearance_ema_head is not None and self.training:
                # H_m as the previous optimiser step left it enters the average before f_u is
                # computed (BYOL's order: update the target after a step, then use it)
                self.update_appearance_ema()
            f_u, _ = self.appearance_target(e_b)
            # This rank's share of masks drawn for the whole global batch: see
            # global_batch_share (distributed runs follow the single-process run).
            rank, world_size = get_dist_info()
            masks = global_batch_share(self.mask_generator, tokens.shape[0], rank, world_size)
            mask = tube_mask(masks.to(tokens.device), self.token_grid[0])  # (B, P)
            losses.update(self.mask_head.loss(self.masked_features(inputs, tokens, mask), f_u,
                                              mask))
        if scene is not None:
            query = scene[:, None]  # (B, C_s) -> (B, 1, C_s): one query per window
            # e_s is frozen: this term is logged for eq. 12 but moves no parameter.
            losses['loss_sep_s'] = self.sep_loss_weight * \
                self.scene_memory.separateness_loss(query)
            if self.bsmm is not None and self.bsmm.is_written:
                w_b = self.bsmm_behaviour_weights(e_b, f_sk)
                w_s = self.scene_memory.address(query)
                losses['loss_sep_r'] = self.sep_loss_weight * \
                    self.bsmm.separateness_loss(w_b, w_s)
        if self.update_memories:
            self.behaviour_memory.update(e_b.detach())
            if self.guidance_memory is not None:
                self.guidance_memory.update(f_sk)
            if scene is not None:
                self.scene_memory.update(scene[:, None].detach())
        return losses

    @torch.no_grad()
    def bsmm_weights(self, inputs: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
        """The addressing weights a batch writes into the BSMM: W_b (B, P, N_b) (W_g (B, T, N_g)
        with ``bsmm_behaviour='guidance'``), W_s (B, 1, N_s).
        """
        if self.bsmm is None:
            raise RuntimeError('this MGENet has no BSMM to write')
        e_b = self.backbone(self._tokens(inputs))
        f_sk = self.guidance_features(inputs['pose']) if self.guidance_memory is not None \
            else None
        w_b = self.bsmm_behaviour_weights(e_b, f_sk)
        w_s = self.scene_memory.address(self._scene(inputs)[:, None])  # (B, 1, N_s)
        return w_b, w_s

    @torch.no_grad()
    def write_bsmm(self, inputs: Dict[str, Tensor]) -> Tensor:
        """One batch of the BSMM write pass (eq. 8-9), memories frozen.

        Returns:
            Tensor: (num_items,) how many windows were written into each item.
        """
        return self.bsmm.write(*self.bsmm_weights(inputs))

    # ------------------------------------------------------------------ scoring
    def test_mask_pair(self, batch_size: int, device: torch.device) -> Tuple[Tensor, Tensor]:
        """The complementary test masks of eq. 14, each (B, t*h*w) bool.

        One mask pair, drawn from ``test_cfg.mask_seed`` and shared by every window: a window's
        S_app must not depend on its batch or its place in it (streaming scores one window at a
        time, the test loop many; distributed ranks split batches differently).
        """
        generator = torch.Generator().manual_seed(self.mask_seed)
        mask, complement = complementary_masks(self.mask_generator, 1, self.token_grid[0],
                                               generator=generator)  # (1, t*h*w) each
        # (1, t*h*w) -> (B, t*h*w)
        return (mask.expand(batch_size, -1).to(device),
                complement.expand(batch_size, -1).to(device))

    @torch.no_grad()
    def motion_gap(self, inputs: Dict[str, Tensor]) -> Tensor:
        """The level-1 vectors (B, T, C_mo) of a batch whose norm S_mo takes: the gap
        f_sk - f_rgb of eq. 13, or the vector of another ``test_cfg.motion_score`` (what
        :class:`~mgenet_mm.engine.hooks.GapWhiteningHook` collects)."""
        f_rgb = self.motion_head(self.backbone(self._tokens(inputs)), self.token_grid)
        return motion_vector(f_rgb, self.guidance_features(inputs['pose']), self.motion_score)

    def motion_score_of(self, f_rgb: Tensor, f_sk: Tensor) -> Tensor:
        """S_mo (B,): eq. 13 (or ``test_cfg.motion_score``), or its vector whitened once
        ``motion_whitening`` is fitted."""
        if self.motion_whitening is None:
            return self.motion_head.score(f_rgb, f_sk, self.motion_score)
        if not self.motion_whitening.is_fitted:
            if not self._warned_unwhitened:
                # e.g. validation during training, before the final passes
                print_log('MGENet: motion_whitening is configured but not fitted yet; S_mo is '
                          'the plain norm of eq. 13', logger='current', level=logging.WARNING)
                self._warned_unwhitened = True
            return self.motion_head.score(f_rgb, f_sk, self.motion_score)
        self.motion_head.check_pair(f_rgb, f_sk)
        return self.motion_whitening(motion_vector(f_rgb, f_sk, self.motion_score))

    @torch.no_grad()
    def anomaly_components(self, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """S_mo, S_app, S_mm (eq. 13-15) per window, each (B,), for the enabled branches."""
        tokens = self._tokens(inputs)
        e_b = self.backbone(tokens)
        f_rgb = self.motion_head(e_b, self.token_grid)
        f_sk = self.guidance_features(inputs['pose'])
        components = dict(mo=self.motion_score_of(f_rgb, f_sk))
        w_b = None
        if self.with_appearance:
            f_u, w_b = self.appearance_target(e_b)
            mask, complement = self.test_mask_pair(tokens.shape[0], tokens.device)
            components['app'] = self.mask_head.appearance_score(
                f_u, self.masked_features(inputs, tokens, mask),
                self.masked_features(inputs, tokens, complement), mask, complement,
                self.token_grid)
        # Before the write pass (e.g. validation during training) the BSMM holds nothing to match
        # against: S_mm is left out, and the metric says so.
        if self.bsmm is not None and self.bsmm.is_written:
            w_behaviour = self.bsmm_behaviour_weights(e_b, f_sk, w_b)
            w_s = self.scene_memory.address(self._scene(inputs)[:, None])
            components['mm'] = self.bsmm.score(w_behaviour, w_s)
        return components

    def scored_components(self, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """The components ``predict`` attaches: :meth:`anomaly_components`, standardised by the
        fitted ``score_calibration`` when there is one."""
        components = self.anomaly_components(inputs)
        if self.score_calibration is None:
            return components
        if not self.score_calibration.is_fitted:
            if not self._warned_uncalibrated:
                # e.g. validation during training, before the calibration pass
                print_log('MGENet: score_calibration is configured but not fitted yet; '
                          'the raw components are attached', logger='current',
                          level=logging.WARNING)
                self._warned_uncalibrated = True
            return components
        return self.score_calibration(components)

    def predict(self, inputs: Dict[str, Tensor], data_samples: SampleList,
                **kwargs) -> SampleList:
        components = self.scored_components(inputs)
        for index, sample in enumerate(data_samples):
            sample.anomaly_scores = {name: value[index].cpu()
                                     for name, value in components.items()}
        return data_samples


__all__: Sequence[str] = ['MGENetRecognizer', 'LEVELS', 'MASK_INPUTS']
