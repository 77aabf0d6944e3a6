"""Read-write memory of normal patterns (MNAD-style), the behaviour and scene memories of MGENet.

The functions here are the shared mathematics of every MGENet memory: soft addressing (eq. 7),
the gradient-free item update (eq. 9) and the feature separateness loss (eq. 11). They are used
by :class:`MemoryBank` and by the behaviour-scene matching memory :class:`BSMM`.
"""
from typing import List, Optional, Tuple, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmaction.registry import MODELS
from torch import Tensor


# Added to the run's seed by ``init_seed='run'``, so that a memory's private stream is not the
# global generator's own first draws (which the first module built from the same seed takes).
RUN_SEED_OFFSET = 0x5EED_0F_17E35


def private_seed(seed: Union[int, str, None]) -> Optional[int]:
    """The seed of a memory's private generator: ``seed`` itself, None (the global generator),
    or, for ``'run'``, the global generator's initial seed (mmengine's ``randomness`` seed)
    plus :data:`RUN_SEED_OFFSET`, read without drawing from it.

    Args:
        seed (int | str | None): An integer, ``'run'`` or None.

    Returns:
        int, optional: The seed for ``torch.Generator.manual_seed``, or None.
    """
    if seed is None or isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    if seed == 'run':
        return (torch.initial_seed() + RUN_SEED_OFFSET) % 2**64
    raise ValueError(f"init_seed must be an int, 'run' or None, got {seed!r}")


def random_unit_items(num_items: int, dim: int, seed: Union[int, str, None] = None) -> Tensor:
    """L2-normalised Gaussian vectors, from a private generator or torch's global RNG.

    Args:
        num_items (int): Number of items N.
        dim (int): Item length.
        seed (int | str, optional): Seed of a private generator; ``'run'`` derives it from the
            run's seed (see :func:`private_seed`); None draws from the global generator.
            Defaults to None.

    Returns:
        Tensor: Shape (N, dim), unit rows.
    """
    seed = private_seed(seed)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(num_items, dim, generator=generator), dim=1)


def cosine_matrix(query: Tensor, items: Tensor) -> Tensor:
    """Cosine similarity of every query with every item (0 against an all-zero item).

    Args:
        query (Tensor): Shape (..., C).
        items (Tensor): Shape (N, C).

    Returns:
        Tensor: Shape (..., N).
    """
    return F.normalize(query, dim=-1) @ F.normalize(items, dim=-1).t()


def cosine_addressing(query: Tensor, items: Tensor, temperature: float = 1.) -> Tensor:
    """Soft addressing weights, eq. 7: softmax over items of cos(query, item) / temperature.

    Args:
        query (Tensor): Shape (..., C).
        items (Tensor): Shape (N, C).
        temperature (float): Divisor of the cosine; 1 is the paper. Defaults to 1.

    Returns:
        Tensor: Shape (..., N), rows sum to 1.
    """
    return (cosine_matrix(query, items) / temperature).softmax(dim=-1)


@torch.no_grad()
def item_increments(items: Tensor, queries: Tensor,
                    temperature: float = 1.) -> Tuple[Tensor, Tensor]:
    """The eq. 9 increments ``sum_{p in U_i} v_{p,i} q_p`` of every item, without autograd.

    ``U_i`` holds the queries whose nearest item (largest addressing weight, i.e. largest cosine)
    is ``i`` and ``v_{p,i}`` is the eq. 7 weight of query ``p`` on item ``i``: the softmax over
    items of that query, taken with the items as they are. Increments of disjoint sets of queries
    add up to the increment of their union (what a distributed update sums over ranks).

    Args:
        items (Tensor): Shape (N, C), unit rows.
        queries (Tensor): Shape (Q, C).
        temperature (float): Addressing temperature. Defaults to 1.

    Returns:
        tuple[Tensor, Tensor]: The increments (N, C) and how many queries each item took (N, ).
    """
    weights = cosine_addressing(queries, items, temperature)  # (Q, N)
    nearest = weights.argmax(dim=1)  # (Q, )
    # (Q, ) weight of each query on its own nearest item
    nearest_weight = weights.gather(1, nearest[:, None]).squeeze(1)
    increment = torch.zeros_like(items).index_add_(
        0, nearest, nearest_weight[:, None].to(items.dtype) * queries.to(items.dtype))
    counts = torch.bincount(nearest, minlength=items.shape[0])
    return increment, counts


@torch.no_grad()
def updated_items(items: Tensor, queries: Tensor,
                  temperature: float = 1.) -> Tuple[Tensor, Tensor]:
    """Items after one eq. 9 update, computed without autograd.

    ``m_i <- L2norm(m_i + sum_{p in U_i} v_{p,i} q_p)`` (see :func:`item_increments`), with the
    weights taken from the items as they were before this update. Items no query chose are
    returned unchanged.

    Args:
        items (Tensor): Shape (N, C), unit rows.
        queries (Tensor): Shape (Q, C).
        temperature (float): Addressing temperature. Defaults to 1.

    Returns:
        tuple[Tensor, Tensor]: The new items (N, C) and how many queries each item took (N, ).
    """
    increment, counts = item_increments(items, queries, temperature)
    return F.normalize(items + increment, dim=1), counts


def _world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def separateness_loss(query: Tensor, items: Tensor, margin: float) -> Tensor:
    """Feature separateness loss, eq. 11, summed over queries and averaged over the batch.

    For every query ``q``: ``[||q - m_1st||_2 - ||q - m_2nd||_2 + margin]_+`` with ``m_1st`` and
    ``m_2nd`` its nearest and second nearest items by Euclidean distance. Gradients reach the
    queries only (items are not learned by gradient).

    Args:
        query (Tensor): Shape (B, Q, C).
        items (Tensor): Shape (N, C), N >= 2.
        margin (float): The margin epsilon.

    Returns:
        Tensor: Scalar loss, ``sum over Q`` then ``mean over B``.
    """
    if items.shape[0] < 2:
        raise ValueError('the separateness loss needs at least two memory items')
    items = items.detach()
    with torch.no_grad():
        # ||q - m||^2 = ||q||^2 + ||m||^2 - 2 q.m; ||q||^2 does not change the ranking
        ranking_distance = items.pow(2).sum(dim=1) - 2 * query @ items.t()  # (B, Q, N)
        two_nearest = ranking_distance.topk(2, dim=-1, largest=False).indices  # (B, Q, 2)
    first_item = items[two_nearest[..., 0]]  # (B, Q, C)
    second_item = items[two_nearest[..., 1]]  # (B, Q, C)
    gap = (torch.linalg.vector_norm(query - first_item, dim=-1) -
           torch.linalg.vector_norm(query - second_item, dim=-1))  # (B, Q)
    return F.relu(gap + margin).sum(dim=1).mean()


@MODELS.register_module()
class MemoryBank(BaseModule):
    """Memory of ``num_items`` unit-norm items of length ``dim`` (behaviour or scene memory).

    - ``address`` / ``read``: eq. 7 addressing weights W and the read-out ``W @ M``.
    - ``update``: eq. 9, without gradient (see :func:`item_increments` for the weights ``v``).
      All queries of the batch take part; in a distributed run (``sync_updates``), all queries of
      the *global* batch: each rank computes the increments of its own queries against the
      (identical) items, the increments and counts are summed over the ranks, and every rank
      applies the same update. The memories therefore stay identical on all ranks and equal
      those of one process fed the whole global batch, up to float summation order. (mmengine
      wraps models with ``broadcast_buffers=False``: without the sum each rank's items would
      drift apart on its own shard until ``SyncBuffersHook`` averaged them, off the unit
      sphere, at the end of the epoch.) Every rank must then call ``update`` in step, as
      training does.
    - ``separateness_loss``: eq. 11 (see :func:`separateness_loss`: summed over queries,
      averaged over the batch).

    The items are a buffer, not a parameter: the paper updates them by eq. 9 only. They start
    as L2-normalised Gaussian vectors drawn from ``init_seed`` (torch's global RNG when None, so
    that mmengine's ``randomness`` seed governs them). With ``init_seed='run'`` they come from a
    private generator seeded by the run's seed: still one draw per run seed, but building the
    memory takes nothing from the global generator, so a memory added to a model leaves the
    initial weights of every other part as they were without it.

    Args:
        num_items (int): Number of items N (paper: 128 behaviour, 32 scene). Defaults to 128.
        dim (int): Item length, the width of the queries. Defaults to 384.
        margin (float): Margin epsilon of the separateness loss. Defaults to 1.
        temperature (float): Divisor of the cosine in eq. 7; 1 follows the paper.
            Defaults to 1.
        init_seed (int | str, optional): Seed of the initial items: an integer, ``'run'`` (a
            private generator seeded by the run's seed) or None (the global generator).
            Defaults to None.
        sync_updates (bool): In a distributed run, sum the update over all ranks (above).
            Defaults to True.
        center_queries (bool): Subtract the mean of the training queries before every cosine
            (address, read, update, separateness loss). The mean is accumulated by ``update``
            (the training queries; summed over ranks when synced) in the buffers
            ``query_sum`` / ``query_count``, saved with the checkpoint. Why: features of a
            frozen ReLU encoder share a large common component (the demo's scene features of
            different scenes have cosine 0.99), which leaves every cosine near 1. Not in the
            paper; defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 num_items: int = 128,
                 dim: int = 384,
                 margin: float = 1.,
                 temperature: float = 1.,
                 init_seed: Union[int, str, None] = None,
                 sync_updates: bool = True,
                 center_queries: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.center_queries = center_queries
        if center_queries:
            self.register_buffer('query_sum', torch.zeros(dim, dtype=torch.float64))
            self.register_buffer('query_count', torch.zeros((), dtype=torch.float64))
        self.num_items = num_items
        self.dim = dim
        self.margin = margin
        self.temperature = temperature
        self.sync_updates = sync_updates
        self.register_buffer('items', random_unit_items(num_items, dim, init_seed))

    def _check_query(self, query: Tensor) -> None:
        if query.ndim != 3 or query.shape[-1] != self.dim:
            raise ValueError(f'query must be (B, Q, {self.dim}), got {tuple(query.shape)}')

    @property
    def query_mean(self) -> Optional[Tensor]:
        """(C,) mean of the training queries seen so far (None without ``center_queries`` or
        before any update)."""
        if not self.center_queries or float(self.query_count) == 0:
            return None
        return (self.query_sum / self.query_count).to(self.items.dtype)

    def _centred(self, query: Tensor) -> Tensor:
        mean = self.query_mean
        return query if mean is None else query - mean

    def address(self, query: Tensor) -> Tensor:
        """Addressing weights, eq. 7.

        Args:
            query (Tensor): Shape (B, Q, C).

        Returns:
            Tensor: W of shape (B, Q, N), each row a softmax over the items.
        """
        self._check_query(query)
        return cosine_addressing(self._centred(query), self.items, self.temperature)

    def read(self, query: Tensor) -> Tuple[Tensor, Tensor]:
        """Read the memory.

        Args:
            query (Tensor): Shape (B, Q, C).

        Returns:
            tuple[Tensor, Tensor]: The read-out ``W @ M`` of shape (B, Q, C) and W (B, Q, N).
        """
        weights = self.address(query)
        return weights @ self.items, weights

    def forward(self, query: Tensor) -> Tuple[Tensor, Tensor]:
        """Same as :meth:`read`."""
        return self.read(query)

    @torch.no_grad()
    def update(self, query: Tensor) -> Tensor:
        """Write the queries into their nearest items, eq. 9, without autograd.

        Args:
            query (Tensor): Shape (B, Q, C); all B*Q queries take part (with ``sync_updates``
                in a distributed run, those of every rank).

        Returns:
            Tensor: How many queries each item took, shape (N, ) (over all ranks when synced).
        """
        self._check_query(query)
        synced = self.sync_updates and _world_size() > 1
        if self.center_queries:
            # (B, Q, C) -> (C,) and the number of queries, before this batch is centred
            batch_sum = query.reshape(-1, self.dim).sum(dim=0).to(torch.float64)
            batch_count = query.new_tensor(query.shape[0] * query.shape[1],
                                           dtype=torch.float64)
            if synced:
                dist.all_reduce(batch_sum)
                dist.all_reduce(batch_count)
            self.query_sum += batch_sum
            self.query_count += batch_count
        # (B, Q, C) -> (B*Q, C)
        increment, counts = item_increments(self.items,
                                            self._centred(query).reshape(-1, self.dim),
                                            self.temperature)
        if synced:
            dist.all_reduce(increment)  # sum over ranks: the global batch's increments
            dist.all_reduce(counts)
        self.items.copy_(F.normalize(self.items + increment, dim=1))
        return counts

    def separateness_loss(self, query: Tensor) -> Tensor:
        """Feature separateness loss, eq. 11.

        Args:
            query (Tensor): Shape (B, Q, C).

        Returns:
            Tensor: Scalar, summed over the Q queries and averaged over B.
        """
        self._check_query(query)
        return separateness_loss(self._centred(query), self.items, self.margin)
