"""Block-wise tube masks (eq. 5) and the complementary pair of eq. 14."""
import pytest
import torch

from mgenet_mm.models.modules.masking import (BlockMaskGenerator, complementary_masks,
                                              tube_mask)
from mmaction.registry import MODELS


@pytest.mark.parametrize('seed', range(20))
def test_exact_ratio_on_the_paper_grid(seed):
    mask = BlockMaskGenerator((8, 8), mask_ratio=0.5, seed=seed)()
    assert mask.shape == (8, 8) and mask.dtype == torch.bool
    assert int(mask.sum()) == 32


def test_exact_count_when_blocks_stop_fitting():
    # blocks of at least 6 cells cannot make up the last few cells: growth completes them
    for seed in range(10):
        generator = BlockMaskGenerator((5, 3), mask_ratio=0.4, min_num_patches=6, seed=seed)
        assert int(generator().sum()) == 6
    # a block larger than the whole target: growth alone
    assert int(BlockMaskGenerator((4, 4), mask_ratio=0.25, min_num_patches=8, seed=0)().sum()) == 4
    assert not BlockMaskGenerator((4, 4), mask_ratio=0.)().any()
    assert BlockMaskGenerator((4, 4), mask_ratio=1., seed=0)().all()


def test_masks_are_blocks_not_scattered_cells():
    # every masked cell touches another masked cell (no isolated cells) in block masks
    for seed in range(10):
        mask = BlockMaskGenerator((8, 8), seed=seed)()
        padded = torch.nn.functional.pad(mask, (1, 1, 1, 1))
        neighbours = (padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] |
                      padded[1:-1, 2:])
        assert (neighbours[mask]).all()


def test_seeding_is_reproducible():
    first = BlockMaskGenerator((8, 8), seed=3).generate(4)
    second = BlockMaskGenerator((8, 8), seed=3).generate(4)
    assert torch.equal(first, second)
    assert not all(torch.equal(first[0], first[index]) for index in range(1, 4))
    generator = torch.Generator().manual_seed(7)
    third = BlockMaskGenerator((8, 8)).generate(2, generator)
    generator = torch.Generator().manual_seed(7)
    assert torch.equal(BlockMaskGenerator((8, 8)).generate(2, generator), third)


def test_built_from_registry():
    generator = MODELS.build(dict(type='BlockMaskGenerator', input_size=6, mask_ratio=0.5))
    assert generator().shape == (6, 6)
    assert generator.num_masking_patches == 18
    with pytest.raises(ValueError):
        BlockMaskGenerator(mask_ratio=1.5)


def test_tube_mask_matches_the_token_order():
    spatial = torch.zeros(2, 2, 3, dtype=torch.bool)
    spatial[0, 1, 2] = True
    spatial[1, 0, 0] = True
    tube = tube_mask(spatial, num_steps=4)
    assert tube.shape == (2, 4 * 2 * 3)
    # token ti*h*w + hi*w + wi
    assert tube[0].nonzero().flatten().tolist() == [ti * 6 + 1 * 3 + 2 for ti in range(4)]
    assert tube[1].nonzero().flatten().tolist() == [ti * 6 for ti in range(4)]
    assert tube_mask(spatial[0], 4).shape == (1, 24)


def test_eq14_complementary_masks_split_every_window_in_exact_halves():
    generator = BlockMaskGenerator((8, 8), mask_ratio=0.5, seed=0)
    mask, complement = complementary_masks(generator, batch_size=3, num_steps=5)
    assert mask.shape == complement.shape == (3, 5 * 64)
    assert not (mask & complement).any()  # disjoint
    assert (mask | complement).all()  # together they cover every patch
    assert (mask.sum(1) == 5 * 32).all() and (complement.sum(1) == 5 * 32).all()
    # the same spatial mask at every time step
    per_step = mask.reshape(3, 5, 64)
    assert (per_step == per_step[:, :1]).all()


def test_global_batch_share_gives_each_rank_its_windows_masks():
    """Rank r of W takes masks r, r + W, ... of the global batch: the single-process masks of
    the windows DefaultSampler deals it, and different masks on different ranks."""
    from mgenet_mm.models.modules.masking import global_batch_share
    generator = BlockMaskGenerator((4, 4))
    single = generator.generate(6, torch.Generator().manual_seed(3))  # one process, batch 6
    shares = [global_batch_share(generator, 3, rank, 2, torch.Generator().manual_seed(3))
              for rank in range(2)]
    assert torch.equal(shares[0], single[0::2]) and torch.equal(shares[1], single[1::2])
    assert not torch.equal(shares[0], shares[1])
    alone = global_batch_share(generator, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(alone, single)
    with pytest.raises(ValueError, match='rank'):
        global_batch_share(generator, 3, rank=2, world_size=2)
