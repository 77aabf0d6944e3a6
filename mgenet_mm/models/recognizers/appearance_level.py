"""Level 2 of MGENet: the appearance target f_u and the masked passes f_m (eq. 5-6, 14).

:class:`AppearanceLevelMixin` holds the parts of :class:`~.mgenet.MGENetRecognizer` that build
the level-2 inputs and targets: which head projects the teacher into f_u
(``appearance_head_sharing``), its EMA, and what the masks act on (``mask_input``). The
recognizer's constructor validates and builds the modules these methods use.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import Tensor

from ..modules.masking import mask_pixels
from ..utils.ema import ema_update_

__all__ = ['APPEARANCE_HEAD_SHARING', 'APPEARANCE_TEACHERS', 'MASK_INPUTS', 'AppearanceLevelMixin']

#: What H_u projects into the level-2 target f_u: the behaviour-memory read-out f_b (paper),
#: the RGB encoder's tokens e_b, or both concatenated along channels (MNAD's [e_b, read-out]).
APPEARANCE_TEACHERS = ('readout', 'embedding', 'concat')
#: Which head projects the teacher into f_u: its own H_u (``appearance_head``, never trained: L_app
#: detaches f_u), the mask head H_m itself under a stop-gradient (the paper's single "projection
#: head"), or an exponential moving average of H_m (BYOL's target network).
APPEARANCE_HEAD_SHARING = ('separate', 'shared', 'ema')
#: Where the level-2 masks act: on the cube tokens (the frozen stage's output, as so far), or on
#: the frames before the cube embedding (the paper's order, eq. 5: no visible token then carries
#: masked content mixed in by the frozen stage's attention windows).
MASK_INPUTS = ('tokens', 'pixels')


class AppearanceLevelMixin:
    """f_u and f_m of MGENet's level 2, for a recognizer that has built ``backbone``,
    ``behaviour_memory``, ``mask_encoder``, ``mask_head``, ``cube_embed``, ``token_grid`` and the
    options ``appearance_teacher``, ``appearance_head_sharing``, ``mask_input`` (with
    ``appearance_head``, ``appearance_ema_head``, ``appearance_predictor`` where they apply)."""

    def _check_shared_width(self) -> None:
        """A shared or EMA H_m projects the teacher too: it must be as wide as H_m's input."""
        e_b = getattr(self.backbone, 'embed_dims', self.behaviour_memory.dim)
        f_b = self.behaviour_memory.dim
        teacher = dict(readout=(f_b, 'behaviour_memory.dim'),
                       embedding=(e_b, 'backbone.embed_dims'),
                       concat=(e_b + f_b, 'backbone.embed_dims + behaviour_memory.dim'))
        width, keys = teacher[self.appearance_teacher]
        head_width = self.mask_head.in_channels
        encoder_width = getattr(self.mask_encoder, 'embed_dims', head_width)
        if width != head_width or width != encoder_width:
            raise ValueError(
                f"appearance_head_sharing='{self.appearance_head_sharing}' projects the level-2 "
                f"teacher with the mask head: the teacher (appearance_teacher="
                f"'{self.appearance_teacher}', {keys} = {width} channels) must be as wide as "
                f'the mask encoder output mask_encoder.embed_dims = {encoder_width} and the mask '
                f'head input mask_head.in_channels = {head_width}; make them equal, choose '
                "another appearance_teacher, or use appearance_head_sharing='separate'")

    def masked_tokens(self, inputs: Dict[str, Tensor], tokens: Tensor, mask: Tensor) -> Tensor:
        """The mask encoder's input tokens for one masked pass (see ``mask_input``).

        Args:
            inputs (dict[str, Tensor]): The batch inputs (``imgs`` (B, 3, T, H, W) for
                ``'pixels'``).
            tokens (Tensor): The unmasked cube tokens (B, C_in, t, h, w) of :meth:`_tokens`.
            mask (Tensor): The tube mask (B, t*h*w) bool, True = masked.

        Returns:
            Tensor: (B, C_in, t, h, w): ``tokens`` themselves (``'tokens'``), or the cube
            embedding of ``imgs`` with the masked blocks' pixels set to 0 (``'pixels'``).
        """
        if self.mask_input == 'tokens':
            return tokens
        if 'imgs' not in inputs:
            cached = (', only cached `tokens`: a feature cache holds unmasked tokens'
                      if 'tokens' in inputs else '')
            raise ValueError("mask_input='pixels' masks the frames before the cube embedding, "
                             f'but the batch has no `imgs`{cached}; use a config that reads '
                             'imgs (e.g. configs/mgenet/demo.py), not demo_cached*.py, or set '
                             "model.mask_input='tokens'")
        with torch.no_grad():
            # (B, 3, T, H, W) -> (B, C_in, t, h, w), the grid of the unmasked tokens
            masked = self.cube_embed(mask_pixels(inputs['imgs'], mask, self.token_grid))
        if masked.shape != tokens.shape:
            raise ValueError(f'cube_embed turns the masked imgs into tokens of shape '
                             f'{tuple(masked.shape)}, the unmasked tokens are '
                             f'{tuple(tokens.shape)}: the cached tokens and the imgs of a batch '
                             'must come from the same clips and cube_embed')
        return masked

    def masked_features(self, inputs: Dict[str, Tensor], tokens: Tensor,
                        mask: Tensor) -> Tensor:
        """f_m of one masked pass: :meth:`_masked_features` of :meth:`masked_tokens`."""
        return self._masked_features(self.masked_tokens(inputs, tokens, mask), mask)

    def _masked_features(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """f_m = [P](H_m(mask encoder(tokens, mask))), as L_app and S_app both use it."""
        # (B, t, C_app) pooled, or (B, P, C_app) per token
        f_m = self.mask_head(self.mask_encoder(tokens, mask), self.token_grid)
        if self.appearance_predictor is not None:
            f_m = self.appearance_predictor(f_m)  # same shape
        return f_m

    def appearance_target_head(self) -> torch.nn.Module:
        """The head that projects the teacher into f_u: ``appearance_head`` (``'separate'``),
        ``mask_head`` (``'shared'``) or ``appearance_ema_head`` (``'ema'``)."""
        return dict(separate=self.appearance_head, shared=self.mask_head,
                    ema=self.appearance_ema_head)[self.appearance_head_sharing]

    def appearance_target(self, e_b: Tensor) -> Tuple[Tensor, Tensor]:
        """The level-2 target f_u = H_u(teacher) and the behaviour weights W_b (B, P, N_b).

        H_u is :meth:`appearance_target_head`. With a shared or EMA head f_u carries no
        gradient (computed under ``no_grad``: the stop-gradient of eq. 6 made explicit, so that
        a shared H_m learns through f_m only).

        Args:
            e_b (Tensor): The RGB encoder's tokens (B, P, C_b).

        Returns:
            tuple[Tensor, Tensor]: f_u, (B, t, C_app) pooled or (B, P, C_app), and W_b.
        """
        f_b, w_b = self.behaviour_memory.read(e_b)  # (B, P, C_b), (B, P, N_b)
        teacher = dict(readout=f_b, embedding=e_b).get(self.appearance_teacher)
        if teacher is None:  # 'concat'
            teacher = torch.cat([e_b, f_b], dim=-1)  # (B, P, 2 C_b)
        head = self.appearance_target_head()
        with torch.set_grad_enabled(torch.is_grad_enabled() and
                                    self.appearance_head_sharing == 'separate'):
            return head(teacher, self.token_grid), w_b

    @torch.no_grad()
    def update_appearance_ema(self) -> None:
        """One EMA step of the target head: ``H_ema <- m H_ema + (1 - m) H_m`` (``'ema'``
        only; the training ``loss`` calls it before computing f_u)."""
        if self.appearance_ema_head is None:
            raise RuntimeError("update_appearance_ema needs appearance_head_sharing='ema'")
        ema_update_(self.appearance_ema_head, self.mask_head, self.appearance_ema_momentum)
        self.appearance_ema_steps += 1
