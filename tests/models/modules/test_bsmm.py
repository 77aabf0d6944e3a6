"""BSMM: query layout (eq. 8), write (eq. 9), matching weights (eq. 10), score (eq. 15), eq. 11."""
import math

import pytest
import torch

from mgenet_mm.models.modules.bsmm import BSMM
from mmaction.registry import MODELS


def softmax(values):
    exps = [math.exp(value) for value in values]
    return [value / sum(exps) for value in exps]


def test_eq8_query_concatenates_flattened_weights_row_major():
    bsmm = BSMM(behaviour_len=2 * 3, scene_len=2)
    w_b = torch.arange(6.).reshape(1, 2, 3) / 10  # (B, P=2, N_b=3)
    w_s = torch.tensor([[[0.7, 0.3]]])  # (B, 1, N_s=2)
    w_r = bsmm.query(w_b, w_s)
    # channel p * N_b + i is W_b[p, i], then the scene weights
    torch.testing.assert_close(w_r, torch.tensor([[0., .1, .2, .3, .4, .5, .7, .3]]))
    with pytest.raises(ValueError, match='behaviour_len'):
        bsmm.query(torch.zeros(1, 3, 3), w_s)


def test_unwritten_memory_is_empty_and_refuses_to_score():
    bsmm = MODELS.build(dict(type='BSMM', behaviour_len=6, scene_len=2, num_items=5, top_k=2))
    assert not bsmm.is_written and bsmm.num_written.item() == 0
    assert (bsmm.items == 0).all() and not bsmm.filled.any()
    w_b, w_s = torch.full((1, 2, 3), 1 / 3), torch.full((1, 1, 2), 0.5)
    with pytest.raises(RuntimeError, match='write'):
        bsmm.score(w_b, w_s)
    with pytest.raises(RuntimeError, match='write'):
        bsmm(w_b, w_s)
    # reading is allowed and changes nothing; an empty memory gives uniform weights
    c_b, c_s = bsmm.matching_weights(w_b, w_s)
    torch.testing.assert_close(c_b, torch.full((1, 5), 0.2))
    # all items zero: every distance is ||W^r||, the loss is the bare margin, no gradient
    w_b_grad = w_b.clone().requires_grad_()
    loss = bsmm.separateness_loss(w_b_grad, w_s)
    assert loss.item() == pytest.approx(bsmm.margin)
    loss.backward()
    assert w_b_grad.grad.abs().sum() == 0
    assert (bsmm.items == 0).all() and bsmm.num_written.item() == 0
    assert len(list(bsmm.parameters())) == 0
    assert {'items', 'num_written'} <= set(bsmm.state_dict())


def test_first_writes_seed_empty_items_with_distinct_windows():
    bsmm = BSMM(behaviour_len=2, scene_len=2, num_items=3, top_k=1)
    w_b = torch.tensor([[[0.9, 0.1]], [[0.2, 0.8]], [[0.9, 0.1]]])  # third = first
    w_s = torch.tensor([[[0.5, 0.5]], [[0.1, 0.9]], [[0.5, 0.5]]])
    counts = bsmm.write(w_b, w_s)
    w_r = bsmm.query(w_b, w_s)
    # eq. 9 on an empty item: f(0 + v W^r) = W^r / ||W^r||; the duplicate joins item 0, whose
    # direction it does not change
    torch.testing.assert_close(bsmm.items[0], w_r[0] / w_r[0].norm())
    torch.testing.assert_close(bsmm.items[1], w_r[1] / w_r[1].norm())
    assert bsmm.filled.tolist() == [True, True, False]
    assert counts.tolist() == [2, 1, 0]
    assert bsmm.num_written.item() == 3
    # the empty item takes no part in the read
    c_b, c_s = bsmm.matching_weights(w_b, w_s)
    assert (c_b[:, 2] == 0).all() and (c_s[:, 2] == 0).all()
    torch.testing.assert_close(c_b.sum(-1), torch.ones(3))
    # a new pattern fills the last item
    bsmm.write(torch.tensor([[[0.5, 0.5]]]), torch.tensor([[[0.9, 0.1]]]))
    assert bsmm.filled.all()


def test_eq9_write_updates_the_nearest_item_without_grad():
    bsmm = BSMM(behaviour_len=2, scene_len=2, num_items=2, top_k=1)
    bsmm.items.copy_(torch.tensor([[1., 0., 0., 0.], [0., 0., 0., 1.]]))
    w_b = torch.tensor([[[0.75, 0.25]]], requires_grad=True)  # (B=1, P=1, N_b=2)
    w_s = torch.tensor([[[0.5, 0.5]]], requires_grad=True)
    counts = bsmm.write(w_b, w_s)
    assert counts.tolist() == [1, 0]
    w_r = torch.tensor([0.75, 0.25, 0.5, 0.5])
    norm = w_r.norm().item()
    v = softmax([0.75 / norm, 0.5 / norm])[0]  # eq. 7 weight of W^r on item 0
    expected = torch.tensor([1., 0., 0., 0.]) + v * w_r
    torch.testing.assert_close(bsmm.items[0], expected / expected.norm())
    torch.testing.assert_close(bsmm.items[1], torch.tensor([0., 0., 0., 1.]))
    assert bsmm.items.grad_fn is None and not bsmm.items.requires_grad
    assert bsmm.is_written and bsmm.num_written.item() == 1
    bsmm.write(w_b.expand(3, -1, -1), w_s.expand(3, -1, -1))
    assert bsmm.num_written.item() == 4  # counts windows
    torch.testing.assert_close(bsmm.items.norm(dim=1), torch.ones(2))


def hand_memory(top_k: int = 2) -> BSMM:
    """Four items with behaviour part (first 2) and scene part (last 2), written once."""
    bsmm = BSMM(behaviour_len=2, scene_len=2, num_items=4, top_k=top_k)
    items = torch.tensor([[1., 0., 1., 0.],
                          [0.8, 0.6, 0., 1.],
                          [0., 1., 1., 0.],
                          [-1., 0., 0., 1.]])
    bsmm.items.copy_(items / items.norm(dim=1, keepdim=True))
    bsmm.num_written.fill_(1)
    return bsmm


# W_b = (1, 0) over P=1 token and N_b=2 items; W_s = (0, 1)
HAND_W_B = torch.tensor([[[1., 0.]]])
HAND_W_S = torch.tensor([[[0., 1.]]])
HAND_C_B = softmax([1., 0.8, 0., -1.])  # cosines with the behaviour parts
HAND_C_S = softmax([0., 1., 0., 1.])  # cosines with the scene parts


def test_eq10_matching_weights_are_softmaxes_over_items():
    c_b, c_s = hand_memory().matching_weights(HAND_W_B, HAND_W_S)
    assert c_b.shape == c_s.shape == (1, 4)
    torch.testing.assert_close(c_b[0], torch.tensor(HAND_C_B))
    torch.testing.assert_close(c_s[0], torch.tensor(HAND_C_S))
    # each part is compared by cosine: scaling W_b does not change C_b
    c_b_scaled, _ = hand_memory().matching_weights(5. * HAND_W_B, HAND_W_S)
    torch.testing.assert_close(c_b_scaled, c_b)


def test_eq15_score_uses_the_top_k_behaviour_matches():
    score = hand_memory(top_k=2).score(HAND_W_B, HAND_W_S)
    # top-2 of C_b are items 0 and 1
    expected = math.hypot(HAND_C_B[0] - HAND_C_S[0], HAND_C_B[1] - HAND_C_S[1])
    assert score.shape == (1, )
    assert score.item() == pytest.approx(expected)
    over_all_items = math.sqrt(sum((b - s)**2 for b, s in zip(HAND_C_B, HAND_C_S)))
    assert abs(expected - over_all_items) > 1e-3
    assert hand_memory(top_k=4).score(HAND_W_B, HAND_W_S).item() == pytest.approx(over_all_items)
    torch.testing.assert_close(hand_memory()(HAND_W_B, HAND_W_S), score)


def test_eq11_separateness_on_the_concatenated_query():
    bsmm = hand_memory()
    bsmm.margin = 1.
    w_b = torch.tensor([[[1., 0.]]], requires_grad=True)
    w_s = torch.tensor([[[1., 0.]]], requires_grad=True)
    loss = bsmm.separateness_loss(w_b, w_s)
    w_r = torch.tensor([1., 0., 1., 0.])
    distances = sorted((w_r - item).norm().item() for item in bsmm.items)
    assert loss.item() == pytest.approx(max(distances[0] - distances[1] + 1., 0.))
    loss.backward()
    assert w_b.grad is not None and w_s.grad is not None


def test_reset_and_checkpoint_round_trip():
    bsmm = BSMM(behaviour_len=4, scene_len=2, num_items=3, top_k=2)
    w_b = torch.softmax(torch.randn(5, 2, 2), dim=-1)
    w_s = torch.softmax(torch.randn(5, 1, 2), dim=-1)
    bsmm.write(w_b, w_s)
    restored = BSMM(behaviour_len=4, scene_len=2, num_items=3, top_k=2)
    restored.load_state_dict(bsmm.state_dict())
    torch.testing.assert_close(restored.score(w_b, w_s), bsmm.score(w_b, w_s))
    bsmm.reset()
    assert (bsmm.items == 0).all() and not bsmm.is_written


def test_written_pairs_match_better_than_unseen_pairs():
    # normal data: behaviour pattern 0 always in scene 0, behaviour pattern 1 in scene 1
    behaviours = torch.tensor([[0.85, 0.05, 0.05, 0.05], [0.05, 0.85, 0.05, 0.05]])
    scenes = torch.tensor([[0.85, 0.05, 0.05, 0.05], [0.05, 0.05, 0.85, 0.05]])
    bsmm = BSMM(behaviour_len=4, scene_len=4, num_items=4, top_k=2)
    for _ in range(10):
        bsmm.write(behaviours[:, None], scenes[:, None])
    seen = bsmm.score(behaviours[:, None], scenes[:, None])
    swapped = bsmm.score(behaviours[:, None], scenes.flip(0)[:, None])
    assert (swapped > seen).all()


def test_eq8_centred_weights_subtract_the_uniform_weight():
    bsmm = BSMM(behaviour_len=2 * 2, scene_len=2, center_weights=True)
    w_b = torch.tensor([[[0.9, 0.1], [0.5, 0.5]]])
    w_s = torch.tensor([[[0.25, 0.75]]])
    torch.testing.assert_close(bsmm.query(w_b, w_s),
                               torch.tensor([[0.4, -0.4, 0., 0., -0.25, 0.25]]))


def test_eq8_balanced_parts_have_unit_norm_each():
    bsmm = BSMM(behaviour_len=2 * 2, scene_len=2, balance_parts=True)
    w_b = torch.tensor([[[1., 0.], [1., 0.]]])  # norm sqrt(2)
    w_s = torch.tensor([[[0., 1.]]])
    s = 1 / math.sqrt(2.)
    torch.testing.assert_close(bsmm.query(w_b, w_s), torch.tensor([[s, 0., s, 0., 0., 1.]]))
    # the matching read (eq. 10) normalises each part itself: the same with or without it
    plain = BSMM(behaviour_len=4, scene_len=2, num_items=2, top_k=1)
    balanced = BSMM(behaviour_len=4, scene_len=2, num_items=2, top_k=1, balance_parts=True)
    items = torch.tensor([[1., 0., 1., 0., 1., 0.], [0., 1., 1., 0., 0., 1.]])
    plain.items.copy_(items)
    balanced.items.copy_(items)
    for one, other in zip(plain.matching_weights(w_b, w_s),
                          balanced.matching_weights(w_b, w_s)):
        torch.testing.assert_close(one, other)


def test_nearest_score_is_one_minus_the_best_item_cosine():
    bsmm = BSMM(behaviour_len=2, scene_len=2, num_items=3, top_k=1, score_mode='nearest')
    bsmm.items[:2] = torch.tensor([[1., 0., 1., 0.], [0., 1., 0., 1.]]) / math.sqrt(2.)
    bsmm.num_written.fill_(2)  # item 2 stays empty and takes no part
    w_b = torch.tensor([[[1., 0.]], [[1., 0.]]])  # (B=2, P=1, N_b=2)
    w_s = torch.tensor([[[1., 0.]], [[0., 1.]]])  # a written pair, then a mismatched one
    # (1, 0, 1, 0) matches item 0 exactly; (1, 0, 0, 1) has cosine 1/2 with both items
    torch.testing.assert_close(bsmm.score(w_b, w_s), torch.tensor([0., 0.5]))
    with pytest.raises(ValueError, match='score_mode'):
        BSMM(behaviour_len=2, scene_len=2, score_mode='mean')
