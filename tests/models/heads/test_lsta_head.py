"""LSTA (eq. 2-3) and the head H_B with its motion loss (eq. 4) and score (eq. 13)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mgenet_mm.models.heads.lsta_head import LSTA, LSTAHead, tokens_to_grid
from mmaction.registry import MODELS


def zero_final_conv(lsta: LSTA) -> LSTA:
    torch.nn.init.zeros_(lsta.pointwise_conv.weight)
    torch.nn.init.zeros_(lsta.pointwise_conv.bias)
    return lsta


def test_eq3_half_attention_gives_one_and_a_half_times_the_input():
    # zero final 1x1x1 conv: f_o = 0, sigmoid(0) = 0.5, e_out = e + 0.5 e
    lsta = zero_final_conv(LSTA())
    x = torch.randn(2, 4, 3, 5, 6)
    torch.testing.assert_close(lsta(x), 1.5 * x)


def test_eq3_attention_is_broadcast_over_channels():
    torch.manual_seed(0)
    lsta = LSTA()
    x = torch.randn(2, 4, 3, 5, 6)
    attention = lsta.attention(x)
    assert attention.shape == (2, 4, 1, 5, 6)
    assert ((attention > 0) & (attention < 1)).all()
    torch.testing.assert_close(lsta(x), x + x * attention)


def test_eq2_attention_depends_on_the_channel_mean_only():
    torch.manual_seed(0)
    lsta = LSTA()
    x = torch.randn(2, 4, 3, 5, 6)
    permuted = x[:, :, torch.tensor([2, 0, 1])]
    torch.testing.assert_close(lsta.attention(permuted), lsta.attention(x))
    # other channels with the same mean give the same attention
    shifted = x.clone()
    shifted[:, :, 0] += 1.
    shifted[:, :, 1] -= 1.
    torch.testing.assert_close(lsta.attention(shifted), lsta.attention(x))
    changed_mean = x.clone()
    changed_mean[:, :, 0] += 1.
    assert not torch.allclose(lsta.attention(changed_mean), lsta.attention(x))


def test_eq2_lka_kernel_sizes_follow_the_lka_convention():
    lsta = LSTA(kernel_size=21, dilation=3)
    assert lsta.depthwise_conv.kernel_size == (5, 5, 5)  # (2d - 1)^3
    assert lsta.depthwise_dilated_conv.kernel_size == (7, 7, 7)  # ceil(k / d)^3
    assert lsta.depthwise_dilated_conv.dilation == (3, 3, 3)
    assert lsta.pointwise_conv.kernel_size == (1, 1, 1)
    default = LSTA()
    assert default.depthwise_conv.kernel_size == (3, 3, 3)
    assert default.depthwise_dilated_conv.kernel_size == (5, 5, 5)
    assert default.depthwise_dilated_conv.dilation == (2, 2, 2)


def test_eq2_composition_matches_explicit_convolutions():
    torch.manual_seed(0)
    lsta = LSTA(kernel_size=9, dilation=2)
    x = torch.randn(2, 6, 3, 5, 4)  # (B, t, C, h, w)
    f_star = x.mean(dim=2).unsqueeze(1)  # (B, 1, t, h, w)
    local = F.conv3d(f_star, lsta.depthwise_conv.weight, lsta.depthwise_conv.bias, padding=1)
    dilated = F.conv3d(local, lsta.depthwise_dilated_conv.weight,
                       lsta.depthwise_dilated_conv.bias, padding=4, dilation=2)
    f_o_star = lsta.pointwise_conv.weight.flatten()[0] * dilated + lsta.pointwise_conv.bias
    expected = f_o_star.sigmoid().transpose(1, 2)  # (B, t, 1, h, w)
    torch.testing.assert_close(lsta.attention(x), expected)


def test_eq2_receptive_field_spans_time_through_the_dilation():
    # positive kernels, impulse at t = 0: the receptive-field radius is
    # (3 - 1) / 2 + 2 * (5 - 1) / 2 = 5 steps for k = 9, d = 2
    lsta = LSTA(kernel_size=9, dilation=2)
    for conv in (lsta.depthwise_conv, lsta.depthwise_dilated_conv, lsta.pointwise_conv):
        torch.nn.init.ones_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    x = torch.zeros(1, 12, 1, 1, 1)
    x[0, 0] = 1.
    reach = (lsta.attention(x).flatten() != 0.5)
    assert reach[:6].all() and not reach[6:].any()


def test_tokens_to_grid_follows_the_encoder_token_order():
    tokens = torch.randn(2, 3 * 2 * 4, 5)
    grid = tokens_to_grid(tokens, (3, 2, 4))
    assert grid.shape == (2, 3, 5, 2, 4)
    # token ti*h*w + hi*w + wi lands at [ti, :, hi, wi]
    torch.testing.assert_close(grid[:, 2, :, 1, 3], tokens[:, 2 * 8 + 1 * 4 + 3])
    with pytest.raises(ValueError, match='token grid'):
        tokens_to_grid(tokens, (3, 3, 3))


def test_head_maps_each_step_to_two_frames():
    torch.manual_seed(0)
    head = LSTAHead(in_channels=8, out_channels=3, token_grid=(4, 2, 2), use_lsta=False)
    e_b = torch.randn(2, 16, 8)
    f_rgb = head(e_b)
    assert f_rgb.shape == (2, 8, 3)
    # no LSTA: spatial mean then the MLP; step s gives frames 2s and 2s + 1
    pooled = tokens_to_grid(e_b, (4, 2, 2)).mean(dim=(3, 4))  # (B, t, C)
    per_step = head.mlp(pooled)  # (B, t, 2 * C_mo)
    torch.testing.assert_close(f_rgb[:, 4:6], per_step[:, 2].reshape(2, 2, 3))
    assert isinstance(head.lsta_layers, torch.nn.Identity)


def test_head_applies_its_lsta_modules():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='LSTAHead', in_channels=8, token_grid=(4, 2, 2), num_lsta=2))
    head.init_weights()
    assert len(head.lsta_layers) == 2
    for lsta in head.lsta_layers:
        zero_final_conv(lsta)
    e_b = torch.randn(2, 16, 8)
    # two zeroed LSTA modules scale the features by 1.5^2 before the (linear) pooling
    pooled = 2.25 * tokens_to_grid(e_b, (4, 2, 2)).mean(dim=(3, 4))
    expected = head.mlp(pooled).reshape(2, 8, 36)
    torch.testing.assert_close(head(e_b), expected)
    assert head(torch.randn(1, 3 * 2 * 2, 8), token_grid=(3, 2, 2)).shape == (1, 6, 36)


def hand_pair():
    f_rgb = torch.zeros(2, 2, 2, requires_grad=True)
    f_sk = torch.tensor([[[1., 2.], [0., 0.]], [[3., 0.], [0., 4.]]], requires_grad=True)
    return f_rgb, f_sk


def test_eq4_motion_loss_sum_reduction():
    f_rgb, f_sk = hand_pair()
    head = LSTAHead(in_channels=4, out_channels=2)
    loss = head.loss(f_rgb, f_sk)['loss_mo']
    assert loss.item() == pytest.approx((5. + 25.) / 2)  # per-window sums, batch mean
    loss.backward()
    assert f_sk.grad is None  # the flow is a frozen teacher
    torch.testing.assert_close(f_rgb.grad, -2 * f_sk.detach() / 2)


def test_eq4_motion_loss_mean_reduction_and_weight():
    f_rgb, f_sk = hand_pair()
    head = LSTAHead(in_channels=4, out_channels=2, loss_reduction='mean', loss_weight=2.)
    assert head.loss(f_rgb, f_sk)['loss_mo'].item() == pytest.approx(2. * 30. / 8)
    with pytest.raises(ValueError):
        LSTAHead(loss_reduction='max')


def test_eq13_motion_score_is_the_window_l2_distance():
    f_rgb, f_sk = hand_pair()
    score = LSTAHead(in_channels=4, out_channels=2).score(f_rgb, f_sk)
    torch.testing.assert_close(score.detach(), torch.tensor([math.sqrt(5.), 5.]))
    with pytest.raises(ValueError, match='same'):
        LSTAHead().score(torch.zeros(1, 2, 3), torch.zeros(1, 3, 2))


def test_motion_score_variants_of_table3() -> None:
    from mgenet_mm.models.heads.lsta_head import motion_anomaly_score
    f_rgb = torch.tensor([[[3.0, 0.0]], [[1.0, 1.0]]])  # (B=2, T=1, C=2)
    f_sk = torch.tensor([[[0.0, 4.0]], [[1.0, 1.0]]])
    torch.testing.assert_close(motion_anomaly_score(f_rgb, f_sk, 'diff'), torch.tensor([5.0, 0.0]))
    torch.testing.assert_close(motion_anomaly_score(f_rgb, f_sk, 'sim'), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(motion_anomaly_score(f_rgb, f_sk, 'f_sk'),
                               torch.tensor([4.0, 2.0 ** 0.5]))
    torch.testing.assert_close(motion_anomaly_score(f_rgb, f_sk, 'f_rgb'),
                               torch.tensor([3.0, 2.0 ** 0.5]))
    torch.testing.assert_close(motion_anomaly_score(f_rgb, f_sk, 'sum'),
                               torch.tensor([5.0, 8.0 ** 0.5]))
    with pytest.raises(ValueError, match='variant'):
        motion_anomaly_score(f_rgb, f_sk, 'cos')
