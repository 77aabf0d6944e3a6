"""ProjectionHead: spatial pooling, appearance loss (eq. 6) and appearance score (eq. 14)."""
import math

import pytest
import torch

from mgenet_mm.models.heads.projection_head import (ProjectionHead, cosine_distance,
                                                   reduce_tokens, token_cosine_distance)
from mmaction.registry import MODELS


def test_pools_space_per_step_then_projects():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='ProjectionHead', in_channels=6, out_channels=4,
                             token_grid=(3, 2, 2), num_layers=2))
    head.init_weights()
    tokens = torch.randn(2, 12, 6)
    out = head(tokens)
    assert out.shape == (2, 3, 4)
    # step 1 holds tokens 4..7 (t-major order)
    torch.testing.assert_close(out[:, 1], head.mlp(tokens[:, 4:8].mean(dim=1)))
    assert head(torch.randn(1, 8, 6), token_grid=(2, 2, 2)).shape == (1, 2, 4)
    with pytest.raises(ValueError, match='token grid'):
        head(torch.randn(1, 10, 6))


def test_single_layer_is_linear():
    head = ProjectionHead(in_channels=6, out_channels=4, num_layers=1)
    assert len(head.mlp) == 1 and isinstance(head.mlp[0], torch.nn.Linear)
    with pytest.raises(ValueError):
        ProjectionHead(num_layers=0)


def test_eq6_identical_orthogonal_opposite():
    head = ProjectionHead()
    f = torch.randn(3, 2, 4)
    assert head.loss(f, f.clone())['loss_app'].item() == pytest.approx(0., abs=1e-6)
    assert head.loss(f, -f)['loss_app'].item() == pytest.approx(2.)
    first = torch.tensor([[[1., 0.], [0., 0.]]])
    second = torch.tensor([[[0., 1.], [0., 0.]]])
    assert head.loss(first, second)['loss_app'].item() == pytest.approx(1.)


def test_eq6_cosine_over_the_flattened_window():
    # per step the two windows point the same way (1 - cos = 0 per step), but as whole
    # (t * C_app) vectors they differ: 1 - 3 / sqrt(2 * 5)
    f_m = torch.tensor([[[1., 0.], [0., 1.]]])
    f_u = torch.tensor([[[1., 0.], [0., 2.]]])
    loss = ProjectionHead().loss(f_m, f_u)['loss_app']
    assert loss.item() == pytest.approx(1. - 3. / math.sqrt(10.))


def test_eq6_batch_mean_and_weight():
    f_m = torch.tensor([[[1., 0.]], [[1., 0.]]])
    f_u = torch.tensor([[[1., 0.]], [[0., 1.]]])
    assert ProjectionHead().loss(f_m, f_u)['loss_app'].item() == pytest.approx(0.5)
    weighted = ProjectionHead(loss_weight=0.1).loss(f_m, f_u)['loss_app']
    assert weighted.item() == pytest.approx(0.05)


def test_eq6_gradient_does_not_reach_f_u():
    f_m = torch.randn(2, 3, 4, requires_grad=True)
    f_u = torch.randn(2, 3, 4, requires_grad=True)
    ProjectionHead().loss(f_m, f_u)['loss_app'].backward()
    assert f_u.grad is None
    assert f_m.grad is not None and f_m.grad.abs().sum() > 0


def test_eq14_averages_the_two_masked_passes():
    f_u = torch.tensor([[[1., 0.]], [[1., 1.]]])
    f_m1 = torch.tensor([[[1., 0.]], [[1., 0.]]])  # sims: 0 and 1 - 1/sqrt(2)
    f_m2 = torch.tensor([[[0., 1.]], [[-1., -1.]]])  # sims: 1 and 2
    score = ProjectionHead().appearance_score(f_u, f_m1, f_m2)
    expected = torch.tensor([0.5 * 0. + 0.5 * 1., 0.5 * (1. - 1. / math.sqrt(2.)) + 0.5 * 2.])
    torch.testing.assert_close(score, expected)
    # symmetric in the two masks
    torch.testing.assert_close(ProjectionHead().appearance_score(f_u, f_m2, f_m1), score)


def test_cosine_distance_checks_shapes():
    with pytest.raises(ValueError):
        cosine_distance(torch.zeros(1, 2, 3), torch.zeros(1, 3, 2))


# ----------------------------------------------------------------------------- per token
def test_per_token_projection_keeps_every_token():
    head = ProjectionHead(in_channels=3, out_channels=2, token_grid=(2, 1, 2), pool='none')
    tokens = torch.randn(4, 4, 3)
    out = head(tokens)
    assert out.shape == (4, 4, 2)
    torch.testing.assert_close(out, head.mlp(tokens))  # no pooling: token p -> mlp(token p)


def test_per_token_eq6_averages_the_masked_tokens_only():
    head = ProjectionHead(pool='none', loss_weight=0.5)
    f_u = torch.tensor([[[1., 0.], [1., 0.], [0., 1.]]])
    f_m = torch.tensor([[[1., 0.], [0., 1.], [0., -1.]]])  # token distances 0, 1, 2
    mask = torch.tensor([[False, True, True]])
    loss = head.loss(f_m, f_u, mask)['loss_app']
    torch.testing.assert_close(loss, torch.tensor(0.5 * (1. + 2.) / 2))
    # the visible token (distance 0) is not part of it: masking it too changes the mean
    all_masked = head.loss(f_m, f_u, torch.ones(1, 3, dtype=torch.bool))['loss_app']
    torch.testing.assert_close(all_masked, torch.tensor(0.5 * 3. / 3))
    with pytest.raises(ValueError, match='mask'):
        head.loss(f_m, f_u)


def test_per_token_eq14_scores_each_token_in_the_pass_where_it_is_masked():
    f_u = torch.tensor([[[1., 0.], [1., 0.], [1., 0.], [1., 0.]]])
    # pass 1 masks tokens 0, 1; pass 2 masks tokens 2, 3
    mask1 = torch.tensor([[True, True, False, False]])
    f_m1 = torch.tensor([[[0., 1.], [-1., 0.], [-1., 0.], [-1., 0.]]])  # dists 1, 2 | 2, 2
    f_m2 = torch.tensor([[[-1., 0.], [-1., 0.], [1., 0.], [0., 1.]]])  # dists 2, 2 | 0, 1
    mean = ProjectionHead(pool='none').appearance_score(f_u, f_m1, f_m2, mask1, ~mask1)
    torch.testing.assert_close(mean, torch.tensor([(1. + 2. + 0. + 1.) / 4]))
    top2 = ProjectionHead(pool='none', score_reduction='topk', score_top_k=2)
    torch.testing.assert_close(top2.appearance_score(f_u, f_m1, f_m2, mask1, ~mask1),
                               torch.tensor([(2. + 1.) / 2]))
    with pytest.raises(ValueError, match='complementary'):
        ProjectionHead(pool='none').appearance_score(f_u, f_m1, f_m2, mask1, mask1)


def test_position_topk_averages_each_position_over_time_before_the_top_k():
    # token grid (t, h, w) = (2, 1, 3), row-major: step 0 is tokens 0-2, step 1 tokens 3-5
    distance = torch.tensor([[1., 0., 9., 3., 0., 1.]])
    # per position over time: (1 + 3) / 2 = 2, 0, (9 + 1) / 2 = 5
    torch.testing.assert_close(reduce_tokens(distance, 'position_topk', 1, (2, 1, 3)),
                               torch.tensor([5.]))
    torch.testing.assert_close(reduce_tokens(distance, 'position_topk', 2, (2, 1, 3)),
                               torch.tensor([3.5]))
    # a time-major grouping (t, h, w) = (3, 1, 2) would pair other tokens: the order matters
    torch.testing.assert_close(reduce_tokens(distance, 'position_topk', 1, (3, 1, 2)),
                               torch.tensor([10. / 3]))
    # plain top-k on the same tokens picks the single spike instead
    torch.testing.assert_close(reduce_tokens(distance, 'topk', 1), torch.tensor([9.]))
    with pytest.raises(ValueError, match='token_grid'):
        reduce_tokens(distance, 'position_topk', 1)
    with pytest.raises(ValueError, match='do not fill'):
        reduce_tokens(distance, 'position_topk', 1, (2, 2, 2))
    # the head scores on the grid it is given (the recognizer's), else on its own
    f_u = torch.tensor([[[1., 0.]] * 6])
    mask1 = torch.tensor([[True, False, True, True, False, True]])
    f_m = torch.tensor([[[1., 0.]] * 6])
    f_m[0, 2] = torch.tensor([-1., 0.])  # position 2 at step 0: distance 2, else 0
    head = ProjectionHead(pool='none', score_reduction='position_topk', score_top_k=1,
                          token_grid=(2, 1, 3))
    torch.testing.assert_close(head.appearance_score(f_u, f_m, f_m, mask1, ~mask1),
                               torch.tensor([1.]))
    torch.testing.assert_close(
        head.appearance_score(f_u, f_m, f_m, mask1, ~mask1, token_grid=(3, 1, 2)),
        torch.tensor([2. / 3]))


def test_reduce_tokens_and_bad_options():
    distance = torch.tensor([[3., 1., 2.], [0., 0., 6.]])
    torch.testing.assert_close(reduce_tokens(distance), torch.tensor([2., 2.]))
    torch.testing.assert_close(reduce_tokens(distance, 'topk', 2), torch.tensor([2.5, 3.]))
    torch.testing.assert_close(reduce_tokens(distance, 'topk', 9), torch.tensor([2., 2.]))
    with pytest.raises(ValueError):
        ProjectionHead(pool='tokens')
    with pytest.raises(ValueError):
        ProjectionHead(score_reduction='max')
    with pytest.raises(ValueError):
        token_cosine_distance(torch.zeros(1, 2, 3), torch.zeros(1, 3, 2))


def test_centred_teacher_is_an_ema_of_f_u_subtracted_from_both_sides():
    head = ProjectionHead(in_channels=2, out_channels=2, pool='none', center_momentum=0.5)
    plain = ProjectionHead(pool='none')
    f_u = torch.tensor([[[3., 1.], [1., 3.]]])  # mean (2, 2)
    f_m = torch.tensor([[[2., 2.], [2., 2.]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    head.train()
    loss = head.loss(f_m, f_u, mask)['loss_app']
    # first update: the batch mean; f_m - c = 0 (cosine 0 by the eps guard), distance 1
    torch.testing.assert_close(head.target_center, torch.tensor([2., 2.]))
    torch.testing.assert_close(loss, plain.loss(f_m - 2., f_u - 2., mask)['loss_app'])
    # later updates: c <- 0.5 c + 0.5 mean
    head.loss(f_m, torch.tensor([[[6., 6.], [6., 6.]]]), mask)
    torch.testing.assert_close(head.target_center, torch.tensor([4., 4.]))
    # eval: no update, the score uses the stored centre on every side
    head.eval()
    f_m2 = torch.tensor([[[5., 3.], [3., 5.]]])
    score = head.appearance_score(f_u, f_m, f_m2, mask, ~mask)
    expected = plain.appearance_score(f_u - 4., f_m - 4., f_m2 - 4., mask, ~mask)
    torch.testing.assert_close(score, expected)
    torch.testing.assert_close(head.target_center, torch.tensor([4., 4.]))
    assert {'target_center', 'center_updates'} <= set(head.state_dict())
    assert 'target_center' not in plain.state_dict()
