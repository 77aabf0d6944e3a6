"""MemoryBank: addressing (eq. 7), read-out, update (eq. 9), separateness loss (eq. 11)."""
import math

import pytest
import torch

from mgenet_mm.models.modules.memory_bank import MemoryBank
from mmaction.registry import MODELS


def axis_memory(margin: float = 1.) -> MemoryBank:
    """Two items along the axes of the plane: m_0 = (1, 0), m_1 = (0, 1)."""
    memory = MemoryBank(num_items=2, dim=2, margin=margin)
    memory.items.copy_(torch.eye(2))
    return memory


def test_items_are_a_unit_norm_buffer():
    memory = MODELS.build(dict(type='MemoryBank', num_items=5, dim=3, init_seed=1))
    assert 'items' in dict(memory.named_buffers())
    assert len(list(memory.parameters())) == 0
    assert 'items' in memory.state_dict()
    torch.testing.assert_close(memory.items.norm(dim=1), torch.ones(5))
    # a seed makes the initial items reproducible
    torch.testing.assert_close(MemoryBank(5, 3, init_seed=1).items, memory.items)


def test_run_seeded_items_leave_the_global_generator_alone():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    first = MemoryBank(5, 3, init_seed='run').items
    # building the memory drew nothing from the global generator
    assert torch.equal(torch.get_rng_state(), before)
    torch.testing.assert_close(first.norm(dim=1), torch.ones(5))
    # the same run seed gives the same items, another run seed others
    torch.manual_seed(3)
    torch.testing.assert_close(MemoryBank(5, 3, init_seed='run').items, first)
    torch.manual_seed(4)
    assert not torch.allclose(MemoryBank(5, 3, init_seed='run').items, first)
    # and they are not the global generator's own first draws from that seed
    torch.manual_seed(3)
    assert not torch.allclose(MemoryBank(5, 3).items, first)
    # the parts built after the memory start as they would without it
    torch.manual_seed(3)
    MemoryBank(5, 3, init_seed='run')
    with_memory = torch.nn.Linear(4, 4).weight
    torch.manual_seed(3)
    torch.testing.assert_close(torch.nn.Linear(4, 4).weight, with_memory)


def test_bad_init_seed_is_named():
    with pytest.raises(ValueError, match="init_seed must be an int, 'run' or None"):
        MemoryBank(5, 3, init_seed='global')


def test_eq7_softmax_over_cosine_similarity():
    memory = axis_memory()
    query = torch.tensor([[[3., 0.], [1., 1.]]])  # (B=1, Q=2, C=2)
    weights = memory.address(query)
    assert weights.shape == (1, 2, 2)
    # cos = (1, 0) for the first query: weights e / (e + 1), 1 / (e + 1)
    e = math.e
    torch.testing.assert_close(weights[0, 0], torch.tensor([e / (e + 1), 1 / (e + 1)]))
    torch.testing.assert_close(weights[0, 1], torch.tensor([0.5, 0.5]))


def test_eq7_rows_sum_to_one_and_peak_at_the_matching_item():
    memory = MemoryBank(num_items=6, dim=4, init_seed=0)
    # each query is a scaled copy of one item: cosine 1 there
    order = torch.tensor([4, 0, 2])
    query = (3. * memory.items[order])[None]  # (1, 3, 4)
    weights = memory.address(query)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 3))
    assert torch.equal(weights.argmax(-1)[0], order)


def test_read_out_is_weights_times_items():
    memory = MemoryBank(num_items=6, dim=4, init_seed=0)
    query = torch.randn(2, 3, 4)
    read_out, weights = memory.read(query)
    assert read_out.shape == (2, 3, 4)
    torch.testing.assert_close(read_out, torch.einsum('bqn,nc->bqc', weights, memory.items))
    forward_out, _ = memory(query)
    torch.testing.assert_close(forward_out, read_out)


def test_eq9_update_moves_the_nearest_item_only():
    memory = axis_memory()
    query = torch.tensor([[[2., 1.]]], requires_grad=True)  # nearest: m_0 (cos 2/sqrt5)
    counts = memory.update(query)
    assert counts.tolist() == [1, 0]
    # v = eq. 7 weight of the query on m_0 = softmax((2, 1) / sqrt(5))[0]
    v = 1. / (1. + math.exp(-1. / math.sqrt(5.)))
    expected = torch.tensor([1. + 2. * v, 1. * v])
    torch.testing.assert_close(memory.items[0], expected / expected.norm())
    torch.testing.assert_close(memory.items[1], torch.tensor([0., 1.]))
    assert memory.items.grad_fn is None and not memory.items.requires_grad
    torch.testing.assert_close(memory.items.norm(dim=1), torch.ones(2))


def test_eq9_update_sums_all_queries_of_an_item():
    memory = axis_memory()
    # two queries for m_1 (from two samples), none for m_0
    query = torch.tensor([[[0., 2.]], [[1., 3.]]])
    weights = memory.address(query)[:, 0, 1]  # (2, ) weights on m_1
    counts = memory.update(query)
    assert counts.tolist() == [0, 2]
    expected = torch.tensor([0., 1.]) + weights[0] * query[0, 0] + weights[1] * query[1, 0]
    torch.testing.assert_close(memory.items[1], expected / expected.norm())
    torch.testing.assert_close(memory.items[0], torch.tensor([1., 0.]))


def test_eq9_update_pulls_the_item_toward_its_queries():
    memory = MemoryBank(num_items=4, dim=8, init_seed=0)
    query = torch.randn(1, 1, 8)
    nearest = memory.address(query).argmax(-1).item()
    before = torch.cosine_similarity(memory.items[nearest], query[0, 0], dim=0)
    memory.update(query)
    after = torch.cosine_similarity(memory.items[nearest], query[0, 0], dim=0)
    assert after > before


def test_eq11_zero_when_the_gap_exceeds_the_margin():
    memory = axis_memory(margin=1.)
    query = torch.tensor([[[2., 0.]]])  # distances 1 and sqrt(5): gap 1 - sqrt(5) < -1
    assert memory.separateness_loss(query).item() == 0.
    # a larger margin makes it positive: 1 - sqrt(5) + 2
    loss = axis_memory(margin=2.).separateness_loss(query)
    assert loss.item() == pytest.approx(3. - math.sqrt(5.))


def test_eq11_exact_value_sum_over_queries_mean_over_batch():
    memory = axis_memory(margin=1.)
    query = torch.tensor([[[0.6, 0.4], [2., 0.]],
                          [[0.4, 0.6], [0.5, 0.5]]], requires_grad=True)
    # per query: [||q - m_1st|| - ||q - m_2nd|| + 1]_+
    near = math.hypot(0.4, 0.4)
    far = math.hypot(0.6, 0.6)
    tie = math.hypot(0.5, 0.5)
    first_sample = (near - far + 1.) + 0.
    second_sample = (near - far + 1.) + (tie - tie + 1.)
    loss = memory.separateness_loss(query)
    assert loss.item() == pytest.approx((first_sample + second_sample) / 2)
    loss.backward()
    assert query.grad is not None and query.grad[0, 0].abs().sum() > 0
    assert memory.items.grad is None


def test_eq11_needs_two_items_and_checks_shapes():
    with pytest.raises(ValueError, match='two'):
        MemoryBank(num_items=1, dim=2).separateness_loss(torch.zeros(1, 1, 2))
    with pytest.raises(ValueError, match='query'):
        MemoryBank(num_items=2, dim=2).address(torch.zeros(1, 2))


def test_eq9_increments_of_shards_add_up_to_the_global_update():
    """A distributed update sums per-rank increments: it equals the update of all queries."""
    import torch.nn.functional as F

    from mgenet_mm.models.modules.memory_bank import item_increments, updated_items
    generator = torch.Generator().manual_seed(0)
    items = F.normalize(torch.randn(8, 5, generator=generator), dim=1)
    queries = torch.randn(24, 5, generator=generator)
    whole, counts = updated_items(items, queries)
    parts = [item_increments(items, shard) for shard in (queries[0::2], queries[1::2])]
    summed = F.normalize(items + parts[0][0] + parts[1][0], dim=1)
    torch.testing.assert_close(summed, whole, rtol=0, atol=1e-6)
    assert torch.equal(parts[0][1] + parts[1][1], counts)


def test_update_is_local_without_a_process_group():
    from mgenet_mm.models.modules.memory_bank import updated_items
    memory = MemoryBank(num_items=4, dim=3, init_seed=0)
    assert memory.sync_updates
    expected, _ = updated_items(memory.items.clone(), torch.ones(2, 3))
    memory.update(torch.ones(1, 2, 3))
    torch.testing.assert_close(memory.items, expected, rtol=0, atol=0)


def test_centred_queries_subtract_the_mean_of_the_training_queries():
    memory = MemoryBank(num_items=2, dim=2, center_queries=True)
    memory.items.copy_(torch.eye(2))
    plain = axis_memory()
    query = torch.tensor([[[3., 1.], [1., 3.]]])  # mean (2, 2)
    # before any update there is no mean yet: the plain eq. 7
    torch.testing.assert_close(memory.address(query), plain.address(query))
    memory.update(query)
    torch.testing.assert_close(memory.query_mean, torch.tensor([2., 2.]))
    assert float(memory.query_count) == 2
    # centred queries (1, -1) and (-1, 1) address the items as the plain memory does them
    centred = query - torch.tensor([2., 2.])
    plain.items.copy_(memory.items)  # the update moved the items
    torch.testing.assert_close(memory.address(query), plain.address(centred))
    # the mean is cumulative over updates
    memory.update(torch.tensor([[[8., 2.]]]))
    torch.testing.assert_close(memory.query_mean, torch.tensor([4., 2.]))
    # saved with the checkpoint; the paper-literal memory has no such buffers
    assert {'query_sum', 'query_count'} <= set(memory.state_dict())
    assert set(plain.state_dict()) == {'items'}


def test_centred_update_moves_items_toward_the_centred_queries():
    memory = MemoryBank(num_items=2, dim=2, center_queries=True)
    memory.items.copy_(torch.eye(2))
    # both queries lie near (1, 1) (cos ~ 1 with both items uncentred); centred they are
    # (+0.1, -0.1) and (-0.1, +0.1): each pulls its own item only
    memory.update(torch.tensor([[[1.1, 0.9], [0.9, 1.1]]]))
    items = memory.items
    assert items[0, 0] > 0.99 and items[0, 1] < 0 and items[1, 1] > 0.99 and items[1, 0] < 0
