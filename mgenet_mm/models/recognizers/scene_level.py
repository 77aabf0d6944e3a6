"""Level 3 of MGENet: which behaviour weights the Behavior-Scene Matching Memory stores (eq. 8).

:class:`SceneLevelMixin` holds the part of :class:`~.mgenet.MGENetRecognizer` that chooses the
behaviour half of the BSMM query W^r = [W_b, W_s] (``bsmm_behaviour``):

- ``'rgb'`` (the paper): W_b (P x N_b), the behaviour memory's addressing weights of the RGB
  encoder's tokens e_b (eq. 7).
- ``'guidance'``: W_g (T x N_g), the addressing weights of the frozen flow's per-frame skeleton
  features f_sk (eq. 1) in a ``guidance_memory`` of their own, written by eq. 9 at every training
  step like the other memories. Why: on the synthetic benchmark's validation split (seed 0), of
  the 8 nearest training windows of a jogging window, 24 % are jogging by W_b (29 % by the pooled
  e_b, 20 % by f_rgb) and 62 % by f_sk, against 7 % of the training windows: the RGB behaviour
  features hardly tell jogging from walking, so no matching of them with the scene can find a
  jogger outside the sports ground. The skeleton features, which the guidance flow computes for
  S_mo anyway, do.

The recognizer's constructor validates the option and builds ``guidance_memory``.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

__all__ = ['BSMM_BEHAVIOURS', 'SceneLevelMixin']

#: Where the behaviour half of the BSMM query comes from: the behaviour memory over the RGB
#: encoder's tokens (paper), or a memory over the guidance flow's skeleton features.
BSMM_BEHAVIOURS = ('rgb', 'guidance')


class SceneLevelMixin:
    """The BSMM's behaviour weights, for a recognizer that has built ``behaviour_memory``,
    ``motion_head``, ``token_grid``, ``guidance_memory`` (None unless ``bsmm_behaviour`` is
    ``'guidance'``) and the option ``bsmm_behaviour``."""

    def check_bsmm_behaviour(self, bsmm_behaviour: str, guidance_memory: Optional[dict],
                             with_bsmm: bool) -> None:
        """Refuse an unknown source, a memory that does not go with it, or a guidance source
        without a BSMM to store it."""
        if bsmm_behaviour not in BSMM_BEHAVIOURS:
            raise ValueError(f'bsmm_behaviour must be one of {BSMM_BEHAVIOURS}, got '
                             f'{bsmm_behaviour!r}')
        if bsmm_behaviour == 'guidance' and not with_bsmm:
            raise ValueError("bsmm_behaviour='guidance' chooses what the BSMM stores, and this "
                             'config has no bsmm')
        if (bsmm_behaviour == 'guidance') != (guidance_memory is not None):
            raise ValueError("bsmm_behaviour='guidance' addresses the BSMM's behaviour half in "
                             'a guidance_memory over f_sk: set both (e.g. guidance_memory='
                             "dict(type='MemoryBank', num_items=128)), or neither")

    @property
    def bsmm_behaviour_len(self) -> int:
        """L_b of the BSMM: rows times items of the behaviour weights it stores."""
        if self.guidance_memory is None:
            tokens = self.token_grid[0] * self.token_grid[1] * self.token_grid[2]
            return tokens * self.behaviour_memory.num_items
        frames = self.token_grid[0] * self.motion_head.frames_per_step  # f_sk rows, T
        return frames * self.guidance_memory.num_items

    def bsmm_behaviour_weights(self, e_b: Tensor, f_sk: Optional[Tensor],
                               w_b: Optional[Tensor] = None) -> Tensor:
        """The behaviour half of the BSMM query.

        Args:
            e_b (Tensor): The RGB encoder's tokens (B, P, C_b).
            f_sk (Tensor, optional): The flow's skeleton features (B, T, C_mo); needed with
                ``bsmm_behaviour='guidance'``.
            w_b (Tensor, optional): W_b of e_b when the caller has it already (level 2 reads
                the behaviour memory too): not computed twice.

        Returns:
            Tensor: W_b (B, P, N_b) (``'rgb'``) or W_g (B, T, N_g) (``'guidance'``).
        """
        if self.guidance_memory is not None:
            if f_sk is None:
                raise ValueError("bsmm_behaviour='guidance' needs f_sk (pose inputs)")
            return self.guidance_memory.address(f_sk)
        return self.behaviour_memory.address(e_b) if w_b is None else w_b
