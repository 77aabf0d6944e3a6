"""SpaceTimeViT: token order, [MASK] token, joint space-time attention, position embedding."""
import math

import pytest
import torch

from mgenet_mm.models.backbones.space_time_vit import (SpaceTimeAttention, SpaceTimeViT,
                                                       resize_pos_embed, sincos_pos_embed_3d)
from mgenet_mm.models.modules.masking import BlockMaskGenerator, complementary_masks
from mmaction.registry import MODELS

GRID = (3, 2, 4)  # (t, h, w): distinct sizes so that a transposed order would show


def build_vit(**kwargs) -> SpaceTimeViT:
    torch.manual_seed(0)
    cfg = dict(in_channels=5, embed_dims=12, token_grid=GRID, depth=2, num_heads=2)
    cfg.update(kwargs)
    return SpaceTimeViT(**cfg).eval()


def test_built_from_registry_and_output_shape():
    vit = MODELS.build(dict(type='SpaceTimeViT', in_channels=5, embed_dims=12, token_grid=GRID,
                            depth=1, num_heads=3))
    vit.init_weights()
    out = vit(torch.randn(2, 5, *GRID))
    assert out.shape == (2, math.prod(GRID), 12)


def test_token_order_is_t_h_w_row_major():
    # without blocks, position embedding and final norm every output token is the projection
    # of its own input cube, which exposes the order
    vit = build_vit(depth=0, pos_embed=None, final_norm=False)
    x = torch.randn(2, 5, *GRID)
    out = vit(x)
    t_size, h_size, w_size = GRID
    for ti in range(t_size):
        for hi in range(h_size):
            for wi in range(w_size):
                token = ti * h_size * w_size + hi * w_size + wi
                expected = vit.input_proj(x[:, :, ti, hi, wi])
                torch.testing.assert_close(out[:, token], expected)


def test_mask_token_replaces_masked_positions_only():
    vit = build_vit(depth=0, pos_embed=None, final_norm=False, use_mask_token=True)
    x = torch.randn(2, 5, *GRID)
    num_tokens = math.prod(GRID)
    mask = torch.zeros(2, num_tokens, dtype=torch.bool)
    mask[0, [0, 5, 17]] = True
    mask[1, [3]] = True
    out = vit(x, mask)
    unmasked_out = vit(x)
    torch.testing.assert_close(out[mask], vit.mask_token[0, 0].expand(4, -1))
    torch.testing.assert_close(out[~mask], unmasked_out[~mask])


def test_masked_input_values_do_not_reach_the_output():
    vit = build_vit(use_mask_token=True)
    x = torch.randn(1, 5, *GRID)
    mask = torch.zeros(1, math.prod(GRID), dtype=torch.bool)
    mask[0, :7] = True
    changed = x.clone()
    # token 3 = (t0, h0, w3) is masked, token 20 = (t2, h1, w0) is not
    changed[:, :, 0, 0, 3] += 10.
    torch.testing.assert_close(vit(changed, mask), vit(x, mask))
    changed_visible = x.clone()
    changed_visible[:, :, 2, 1, 0] += 10.
    assert not torch.allclose(vit(changed_visible, mask), vit(x, mask))


def test_spatial_mask_is_a_tube_over_time():
    vit = build_vit(use_mask_token=True)
    x = torch.randn(2, 5, *GRID)
    t_size, h_size, w_size = GRID
    spatial = torch.zeros(2, h_size * w_size, dtype=torch.bool)
    spatial[0, [1, 6]] = True
    spatial[1, [0]] = True
    # (B, h*w) -> (B, t, h*w) -> (B, t*h*w)
    tube = spatial[:, None, :].expand(-1, t_size, -1).reshape(2, -1)
    torch.testing.assert_close(vit(x, spatial), vit(x, tube))


def test_complementary_masks_drive_the_encoder():
    vit = build_vit(use_mask_token=True)
    generator = BlockMaskGenerator(GRID[1:], mask_ratio=0.5, min_num_patches=2, seed=0)
    mask, complement = complementary_masks(generator, batch_size=2, num_steps=GRID[0])
    x = torch.randn(2, 5, *GRID)
    assert not torch.allclose(vit(x, mask), vit(x, complement))


def test_mask_needs_mask_token_and_valid_shape():
    x = torch.randn(1, 5, *GRID)
    with pytest.raises(ValueError, match='use_mask_token'):
        build_vit()(x, torch.zeros(1, 8, dtype=torch.bool))
    vit = build_vit(use_mask_token=True)
    with pytest.raises(ValueError, match='entries per sample'):
        vit(x, torch.zeros(1, 7, dtype=torch.bool))
    with pytest.raises(TypeError):
        vit(x, torch.zeros(1, 8))


def test_attention_is_joint_over_space_and_time():
    vit = build_vit(depth=1)
    x = torch.randn(1, 5, *GRID)
    changed = x.clone()
    changed[:, :, 0, 0, 0] += 5.  # one token at time 0
    delta = (vit(changed) - vit(x)).abs().reshape(*GRID, -1).sum(-1)  # (t, h, w)
    # one block suffices to move every token of every other time step and position
    assert (delta[1:] > 0).all()
    assert (delta[0, 1:] > 0).all()


def test_attention_matches_the_softmax_formula():
    torch.manual_seed(0)
    attention = SpaceTimeAttention(embed_dims=8, num_heads=2).eval()
    x = torch.randn(2, 6, 8)
    query, key, value = attention.qkv(x).reshape(2, 6, 3, 2, 4).permute(2, 0, 3, 1, 4)
    weights = (query @ key.transpose(-1, -2) / math.sqrt(4)).softmax(-1)  # (B, heads, P, P)
    expected = attention.proj((weights @ value).transpose(1, 2).reshape(2, 6, 8))
    torch.testing.assert_close(attention(x), expected)


def test_learned_pos_embed_refuses_another_grid_unless_interpolating():
    x = torch.randn(1, 5, 2, 2, 4)
    with pytest.raises(ValueError, match='interpolate_pos_embed'):
        build_vit()(x)
    assert build_vit(interpolate_pos_embed=True)(x).shape == (1, 16, 12)


def test_resize_pos_embed():
    embed = torch.randn(1, math.prod(GRID), 6)
    torch.testing.assert_close(resize_pos_embed(embed, GRID, GRID), embed)
    # an embedding that only varies along w keeps doing so after resizing t and h
    along_w = torch.arange(4.)[None, None, None, :, None].expand(1, 3, 2, 4, 6).reshape(1, -1, 6)
    resized = resize_pos_embed(along_w, GRID, (5, 3, 4))
    torch.testing.assert_close(resized.reshape(5, 3, 4, 6)[:, :, 2], torch.full((5, 3, 6), 2.))


def test_sincos_pos_embed():
    embed = sincos_pos_embed_3d((2, 3, 4), embed_dims=14)  # 2 * (14 // 6) = 4 per axis
    assert embed.shape == (1, 24, 14)
    # token 0 sits at position 0 on every axis: sin = 0, cos = 1; channels 12-13 are padding
    torch.testing.assert_close(embed[0, 0], torch.tensor([0., 0., 1., 1.] * 3 + [0., 0.]))
    # token 1 = (t0, h0, w1): only the w block moves; its first sin is sin(1)
    assert embed[0, 1, 8] == pytest.approx(math.sin(1.))
    torch.testing.assert_close(embed[0, 1, :8], embed[0, 0, :8])
    vit = build_vit(pos_embed='sincos')
    assert 'pos_embed' not in vit.state_dict()
    assert vit(torch.randn(1, 5, 2, 2, 4)).shape == (1, 16, 12)


def test_rejects_wrong_input_channels():
    with pytest.raises(ValueError, match='cube tokens'):
        build_vit()(torch.randn(1, 4, *GRID))
