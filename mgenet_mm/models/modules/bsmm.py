"""Behavior-Scene Matching Memory (paper section 3.4, eq. 8-11 and 15)."""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmaction.registry import MODELS
from torch import Tensor

from .memory_bank import cosine_matrix, separateness_loss, updated_items

#: ``'topk'``: eq. 15 (paper); ``'nearest'``: distance to the nearest written pair.
SCORE_MODES = ('topk', 'nearest')
#: A query whose cosine with an existing item reaches ``1 - DUPLICATE_TOLERANCE`` is not new.
DUPLICATE_TOLERANCE = 1e-6


@MODELS.register_module()
class BSMM(BaseModule):
    """Memory of normal (behaviour, scene) pairs, stored as addressing-weight patterns.

    Each item of M^r (num_items, L_b + L_s) holds a behaviour part (the first
    ``L_b = P * N_b`` channels, a flattened behaviour-memory weight matrix W_b) and a scene part
    (the last ``L_s = N_s`` channels, a flattened scene-memory weight vector W_s).

    - ``query``: eq. 8, ``W^r = [flat(W_b), flat(W_s)]``; W_b is flattened row-major (token
      major, behaviour item minor), so channel ``p * N_b + i`` is ``W_b[p, i]``.
    - ``write``: eq. 9, without autograd, for one final pass over the normal training windows
      with the behaviour and scene memories frozen (see "Initial state" below). Every written
      window is counted in the ``num_written`` buffer, saved with the checkpoint.
    - ``matching_weights``: eq. 10, C_b and C_s, each a softmax over the (filled) items of the
      cosine between W_b (resp. W_s) and the behaviour (resp. scene) part of each item. A pure
      read, allowed at any time.
    - ``score``: eq. 15 with top-K (paper section 6): the K items with the largest C_b, C_s at
      the same items, ``S_mm = ||C_b[topK] - C_s[topK]||_2``. C_b and C_s stay the softmaxes over
      all items; the top-K entries are not renormalised. Refused (RuntimeError) until something
      has been written: an unwritten memory holds no behaviour-scene pattern.
    - ``separateness_loss``: eq. 11 with W^r as the single query of each window, against the
      filled items (all items while fewer than two are filled).

    Initial state and the first writes. All items start at zero ("empty") and
    ``num_written = 0``, a deterministic state. Eq. 9 is applied as written, with one rule the
    paper leaves open: while empty items remain, a written window whose W^r is not already an
    item (cosine below ``1 - 1e-6`` with every filled item) takes the next empty item instead of
    its nearest filled one. For an empty item eq. 9 gives ``f(0 + v W^r) = W^r / ||W^r||`` for
    any weight v, so the window seeds the item. Later windows go to their nearest filled item by
    eq. 9. Why not random initial items: every W^r is a concatenation of softmax rows with a
    large common (near uniform) component, so after one update the touched item is nearer to
    every later W^r than any random item and the whole pass collapses into it; seeding items
    with distinct windows avoids that. Shuffle the windows of the write pass, so that the seeds
    come from across the training set rather than its first video. Empty items (fewer distinct
    windows than items) take no part in the reads. ``reset()`` restores the initial state.

    Args:
        behaviour_len (int): L_b = P * N_b (tokens times behaviour-memory items).
        scene_len (int): L_s = N_s (scene-memory items).
        num_items (int): Number of matching items. Defaults to 64.
        top_k (int): Items compared by the score. Defaults to 4.
        margin (float): Margin epsilon of the separateness loss. Defaults to 1.
        temperature (float): Divisor of the cosines in eq. 9-10; 1 follows the paper.
            Defaults to 1.
        center_weights (bool): Subtract the uniform weight 1/N from every row of W_b and W_s
            in eq. 8, so that the cosines of eq. 9-11 compare where the weights depart from
            uniform rather than their large common (near uniform) part. Not in the paper;
            defaults to False.
        score_mode (str): ``'topk'``: eq. 15 as above (the paper). ``'nearest'``: ``S_mm = 1 -
            max_i cos(W^r, m^r_i)`` over the filled items, how far the window's (behaviour,
            scene) pair is from the nearest normal pair written (the query and cosine of eq. 9).
            Why: in eq. 15, C_s spreads over every item written from the same scene (a few
            scenes, many items), so its values at the top-K behaviour items are small next to
            C_b's and the norm mostly measures how peaked C_b is, not whether the scene fits.
            Defaults to ``'topk'``.
        balance_parts (bool): Scale the behaviour and the scene part of W^r to unit norm each
            in eq. 8. Flattened, W_b has P rows against W_s's one, so the scene part weighs
            about 1/P in the cosine that assigns a window to an item (eq. 9): items then gather
            behaviours regardless of the scene. Not in the paper; defaults to False. Eq. 10
            normalises each part anyway, so the read is unchanged by it.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 behaviour_len: int,
                 scene_len: int,
                 num_items: int = 64,
                 top_k: int = 4,
                 margin: float = 1.,
                 temperature: float = 1.,
                 center_weights: bool = False,
                 balance_parts: bool = False,
                 score_mode: str = 'topk',
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if score_mode not in SCORE_MODES:
            raise ValueError(f'score_mode must be one of {SCORE_MODES}, got {score_mode!r}')
        self.score_mode = score_mode
        self.center_weights = center_weights
        self.balance_parts = balance_parts
        if not 1 <= top_k <= num_items:
            raise ValueError(f'top_k must be in [1, num_items={num_items}], got {top_k}')
        self.behaviour_len = behaviour_len
        self.scene_len = scene_len
        self.num_items = num_items
        self.top_k = top_k
        self.margin = margin
        self.temperature = temperature
        self.register_buffer('items', torch.zeros(num_items, behaviour_len + scene_len))
        self.register_buffer('num_written', torch.zeros((), dtype=torch.long))

    @property
    def is_written(self) -> bool:
        """Whether any window has been written into the memory."""
        return bool(self.num_written.item() > 0)

    @property
    def filled(self) -> Tensor:
        """Bool (num_items, ): the items that hold a pattern (non-zero)."""
        return self.items.abs().sum(dim=1) > 0

    @torch.no_grad()
    def reset(self) -> None:
        """Return to the initial, unwritten state (e.g. before repeating the write pass)."""
        self.items.zero_()
        self.num_written.zero_()

    def query(self, w_b: Tensor, w_s: Tensor) -> Tensor:
        """Concatenate the flattened addressing weights, eq. 8 (with the optional centring and
        balancing of the parts, see the class arguments).

        Args:
            w_b (Tensor): Behaviour-memory weights W_b of shape (B, P, N_b).
            w_s (Tensor): Scene-memory weights W_s of shape (B, 1, N_s).

        Returns:
            Tensor: W^r of shape (B, L_b + L_s).
        """
        if self.center_weights:
            w_b = w_b - 1. / w_b.shape[-1]
            w_s = w_s - 1. / w_s.shape[-1]
        # (B, P, N_b) -> (B, P*N_b) and (B, 1, N_s) -> (B, N_s), row-major
        flat_b, flat_s = w_b.flatten(1), w_s.flatten(1)
        if flat_b.shape[1] != self.behaviour_len or flat_s.shape[1] != self.scene_len:
            raise ValueError(
                f'W_b {tuple(w_b.shape)} and W_s {tuple(w_s.shape)} flatten to '
                f'{flat_b.shape[1]} + {flat_s.shape[1]} channels; this BSMM was built for '
                f'behaviour_len={self.behaviour_len}, scene_len={self.scene_len}')
        if self.balance_parts:
            flat_b = F.normalize(flat_b, dim=1)
            flat_s = F.normalize(flat_s, dim=1)
        return torch.cat([flat_b, flat_s], dim=1)

    @torch.no_grad()
    def _seed_empty_items(self, w_r: Tensor, counts: Tensor) -> Tensor:
        """Let new windows, in batch order, fill empty items; return which windows did."""
        seeded = torch.zeros(w_r.shape[0], dtype=torch.bool, device=w_r.device)
        for index in range(w_r.shape[0]):
            filled = self.filled
            if filled.all():
                break
            if filled.any():
                best_cosine = cosine_matrix(w_r[index], self.items[filled]).max()
                if best_cosine >= 1. - DUPLICATE_TOLERANCE:
                    continue
            slot = int((~filled).nonzero()[0])
            self.items[slot] = w_r[index] / w_r[index].norm().clamp_min(1e-12)
            counts[slot] += 1
            seeded[index] = True
        return seeded

    @torch.no_grad()
    def write(self, w_b: Tensor, w_s: Tensor) -> Tensor:
        """Write normal windows into the memory, eq. 9, without autograd.

        Args:
            w_b (Tensor): Shape (B, P, N_b).
            w_s (Tensor): Shape (B, 1, N_s).

        Returns:
            Tensor: How many of the B windows each item took, shape (num_items, ).
        """
        w_r = self.query(w_b, w_s).to(self.items.dtype)  # (B, L_b + L_s)
        counts = torch.zeros(self.num_items, dtype=torch.long, device=self.items.device)
        seeded = self._seed_empty_items(w_r, counts)
        remaining = w_r[~seeded]
        filled_index = self.filled.nonzero().squeeze(1)
        if remaining.shape[0] > 0 and filled_index.numel() > 0:
            new_items, item_counts = updated_items(self.items[filled_index], remaining,
                                                   self.temperature)
            self.items[filled_index] = new_items
            counts[filled_index] += item_counts
        self.num_written += w_r.shape[0]
        return counts

    def _softmax_over_filled(self, cosine: Tensor) -> Tensor:
        """Softmax over items of cosine / temperature, empty items left out when any is filled."""
        logits = cosine / self.temperature
        filled = self.filled
        if filled.any():
            logits = logits.masked_fill(~filled, float('-inf'))
        return logits.softmax(dim=-1)

    def matching_weights(self, w_b: Tensor, w_s: Tensor) -> Tuple[Tensor, Tensor]:
        """Matching weights, eq. 10.

        Args:
            w_b (Tensor): Shape (B, P, N_b).
            w_s (Tensor): Shape (B, 1, N_s).

        Returns:
            tuple[Tensor, Tensor]: C_b and C_s, each (B, num_items), each a softmax over the
            items (0 at empty items).
        """
        w_r = self.query(w_b, w_s)
        behaviour_part = self.items[:, :self.behaviour_len]  # (num_items, L_b)
        scene_part = self.items[:, self.behaviour_len:]  # (num_items, L_s)
        c_b = self._softmax_over_filled(
            cosine_matrix(w_r[:, :self.behaviour_len], behaviour_part))
        c_s = self._softmax_over_filled(cosine_matrix(w_r[:, self.behaviour_len:], scene_part))
        return c_b, c_s

    def score(self, w_b: Tensor, w_s: Tensor) -> Tensor:
        """Scene-related anomaly score, eq. 15 over the top-K behaviour matches (or the
        distance to the nearest written pair, ``score_mode='nearest'``).

        Args:
            w_b (Tensor): Shape (B, P, N_b).
            w_s (Tensor): Shape (B, 1, N_s).

        Returns:
            Tensor: S_mm of shape (B, ).
        """
        if not self.is_written:
            raise RuntimeError(
                'BSMM.score called before any write: the matching memory is filled by a final '
                'pass over normal training windows (BSMM.write) after training; run that pass '
                'or load a checkpoint saved after it')
        if self.score_mode == 'nearest':
            # (B, L) against the filled items (num_filled, L)
            cosine = cosine_matrix(self.query(w_b, w_s).to(self.items.dtype),
                                   self.items[self.filled])
            return 1. - cosine.max(dim=1).values
        c_b, c_s = self.matching_weights(w_b, w_s)
        c_b_top, top_items = c_b.topk(self.top_k, dim=1)  # (B, K), (B, K)
        c_s_top = c_s.gather(1, top_items)  # (B, K)
        return torch.linalg.vector_norm(c_b_top - c_s_top, dim=1)

    def forward(self, w_b: Tensor, w_s: Tensor) -> Tensor:
        """Same as :meth:`score`."""
        return self.score(w_b, w_s)

    def separateness_loss(self, w_b: Tensor, w_s: Tensor) -> Tensor:
        """Feature separateness loss of W^r against M^r, eq. 11.

        Before the write pass every item is zero, so the loss is the constant margin per window
        and passes no gradient: L_sep^r acts only once M^r has been written.

        Args:
            w_b (Tensor): Shape (B, P, N_b).
            w_s (Tensor): Shape (B, 1, N_s).

        Returns:
            Tensor: Scalar, averaged over the B windows (one query each).
        """
        filled = self.filled
        items = self.items[filled] if int(filled.sum()) >= 2 else self.items
        # (B, L) -> (B, 1, L): one query per window
        return separateness_loss(self.query(w_b, w_s)[:, None, :], items, self.margin)
