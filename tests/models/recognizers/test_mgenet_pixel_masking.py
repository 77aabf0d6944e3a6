"""MGENetRecognizer(mask_input='pixels'): the level-2 masks applied to the frames before the cube
embedding (the paper's order, eq. 5) instead of to the cube tokens (the default, ``'tokens'``).

The tiny cube embedding is a Swin stage 1-2 of 8 channels (16 out = ``C_IN``) with 2x8x8 cubes.
With attention windows of one token it mixes no cubes (``NO_MIXING``): every visible token of a
masked clip then equals the unmasked one, and since the mask encoder replaces every masked token
by its mask token, ``'pixels'`` gives exactly the scores of ``'tokens'`` there. With (1, 2, 2)
windows (``WINDOWED``) stage 1 still attends within one cube only and stage 2 mixes each 2x2
group of cubes: the leak of ``'tokens'`` in small, which ``'pixels'`` removes.
"""
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn.functional as F

from mgenet_mm.models.modules.masking import mask_pixels, pixel_tube_mask
from mmaction.structures import ActionDataSample
from tests.models.recognizers.test_mgenet_recognizer import C_IN, C_S, GRID, T, TINY, _build

SIZE = 32  # H = W: 32 / 8 = 4 cubes a side, the (4, 4, 4) grid over T = 8 frames
NO_MIXING = dict(type='SwinCubeEmbedding', arch=dict(embed_dims=C_IN // 2, depths=[1, 1],
                                                     num_heads=[1, 1]),
                 window_size=(1, 1, 1), drop_path_rate=0., init_cfg=None)
WINDOWED = dict(NO_MIXING, window_size=(1, 2, 2))
TOKEN_HEADS = dict(appearance_head=dict(TINY['appearance_head'], pool='none'),
                   mask_head=dict(TINY['mask_head'], pool='none'))


def _model(cube_embed: dict = NO_MIXING, **overrides) -> torch.nn.Module:
    return _build(cube_embed=cube_embed, **overrides)


def _inputs(size: int = 3, seed: int = 0, side: int = SIZE) -> Dict[str, torch.Tensor]:
    """Already batched inputs with clips ``imgs`` (B, 3, T, side, side) and no cached tokens."""
    generator = torch.Generator().manual_seed(seed)
    return dict(pose=torch.randn(size, T, 18, 3, generator=generator),
                imgs=torch.randn(size, 3, T, side, side, generator=generator),
                scene_feat=torch.randn(size, C_S, generator=generator))


def _samples(size: int = 3) -> List[ActionDataSample]:
    return [ActionDataSample(metainfo=dict(clip_name='c', person_id=i, start_frame=0))
            for i in range(size)]


def _losses(model, seed: int = 7) -> Dict[str, torch.Tensor]:
    torch.manual_seed(seed)  # the training masks come from the global generator
    return model(_inputs(), _samples(), mode='loss')


def _record_passes(model) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """Patch ``_masked_features`` to record the (tokens, mask) the mask encoder gets."""
    passes: List[Tuple[torch.Tensor, torch.Tensor]] = []
    original = model._masked_features

    def recorded(tokens, mask):
        passes.append((tokens.clone(), mask.clone()))
        return original(tokens, mask)

    model._masked_features = recorded
    return passes


def _tube(cells: List[Tuple[int, int]], batch_size: int = 3) -> torch.Tensor:
    """A tube mask (B, t*h*w) masking the (h, w) ``cells`` at every time step."""
    grid = torch.zeros(GRID, dtype=torch.bool)
    for hi, wi in cells:
        grid[:, hi, wi] = True
    # (t, h, w) -> (B, t*h*w)
    return grid.flatten()[None].expand(batch_size, -1)


# ----------------------------------------------------------------------------- the pixel mask
def test_pixel_mask_is_the_hand_built_one() -> None:
    # grid (t, h, w) = (2, 2, 2) over (T, H, W) = (4, 8, 8): blocks of 2 x 4 x 4
    mask = torch.zeros(2, 2, 2, 2, dtype=torch.bool)  # (B, t, h, w)
    mask[0, 0, 0, 1] = True  # window 0: time step 0, top right
    mask[0, 1, 1, 0] = True  # window 0: time step 1, bottom left
    mask[1, :, 0, 0] = True  # window 1: a tube at the top left
    expected = torch.zeros(2, 1, 4, 8, 8, dtype=torch.bool)
    expected[0, 0, 0:2, 0:4, 4:8] = True
    expected[0, 0, 2:4, 4:8, 0:4] = True
    expected[1, 0, :, 0:4, 0:4] = True
    # (B, t, h, w) -> (B, t*h*w), the token order of tube_mask
    pixels = pixel_tube_mask(mask.flatten(1), (2, 2, 2), (4, 8, 8))
    assert torch.equal(pixels, expected)

    imgs = torch.randn(2, 3, 4, 8, 8) + 5.  # no pixel is 0 before masking
    masked = mask_pixels(imgs, mask.flatten(1), (2, 2, 2))
    full = expected.expand(-1, 3, -1, -1, -1)  # every colour channel alike
    assert bool((masked[full] == 0).all())
    assert torch.equal(masked[~full], imgs[~full])  # visible pixels untouched, bit for bit
    assert int((masked == 0).sum()) == int(full.sum()) == 3 * (2 * 32 + 64)


def test_pixel_mask_needs_dividing_shapes() -> None:
    mask = torch.zeros(1, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match=r'\(T, H, W\) = \(4, 8, 7\) does not divide'):
        pixel_tube_mask(mask, (2, 2, 2), (4, 8, 7))
    with pytest.raises(ValueError, match='token mask'):
        pixel_tube_mask(torch.zeros(1, 6, dtype=torch.bool), (2, 2, 2), (4, 8, 8))


# ----------------------------------------------------------------------------- 'tokens' as before
def test_tokens_is_the_default_and_masks_the_unmasked_tokens() -> None:
    default, explicit = _model(), _model(mask_input='tokens')
    assert default.mask_input == 'tokens'
    passes = _record_passes(default)
    losses, again = _losses(default), _losses(explicit)
    assert set(losses) == set(again)
    for key, value in losses.items():
        assert torch.equal(value, again[key]), key
    # the mask encoder got the unmasked tokens cube_embed(imgs), today's behaviour
    tokens = default.cube_embed(_inputs()['imgs'])
    assert len(passes) == 1 and torch.equal(passes[0][0], tokens)
    default.eval()
    explicit.eval()
    scores, scores_again = (m.anomaly_components(_inputs()) for m in (default, explicit))
    assert all(torch.equal(scores[key], scores_again[key]) for key in scores)
    assert all(torch.equal(tokens, seen) for seen, _ in passes[1:])  # both test passes too


# ----------------------------------------------------------------------------- 'pixels'
def test_pixels_changes_the_masked_passes_only() -> None:
    fixed = dict(cube_embed=WINDOWED, train_cfg=dict(update_memories=False))
    tokens_mode = _model(**fixed)
    pixels_mode = _model(mask_input='pixels', **fixed)
    passes = _record_passes(pixels_mode)
    by_tokens, by_pixels = _losses(tokens_mode), _losses(pixels_mode)
    # the unmasked pass (e_b, f_sk, the memories) is the same ...
    for key in ('loss_mo', 'loss_sep_b', 'loss_sep_s'):
        assert torch.equal(by_tokens[key], by_pixels[key]), key
    # ... the masked one is not (a random tiny model: the difference is small, not 0)
    assert not torch.equal(by_tokens['loss_app'], by_pixels['loss_app'])
    # L_app by hand: the mask encoder on cube_embed(imgs with the masked blocks zeroed), its
    # mask token at the masked positions, the loss over the masked tokens (eq. 6)
    inputs = _inputs()
    (seen, mask), = passes
    expected_tokens = pixels_mode.cube_embed(mask_pixels(inputs['imgs'], mask, GRID))
    assert torch.equal(seen, expected_tokens)
    with torch.no_grad():
        f_u, _ = pixels_mode.appearance_target(pixels_mode.backbone(
            pixels_mode.cube_embed(inputs['imgs'])))
        loss = pixels_mode.mask_head.loss(pixels_mode._masked_features(seen, mask), f_u, mask)
    torch.testing.assert_close(by_pixels['loss_app'], loss['loss_app'])
    # scoring: S_mo alike, S_app different
    tokens_mode.eval()
    pixels_mode.eval()
    scores_t = tokens_mode.anomaly_components(inputs)
    scores_p = pixels_mode.anomaly_components(inputs)
    assert torch.equal(scores_t['mo'], scores_p['mo'])
    assert not (scores_t['app'] == scores_p['app']).any()


def test_without_cube_mixing_pixels_equals_tokens() -> None:
    """NO_MIXING: the masked clip's tokens differ from the unmasked ones at masked positions only,
    which the mask encoder overwrites with its mask token: the same L_app and S_app. This fails
    if ``'pixels'`` stopped passing the mask to the mask encoder."""
    fixed = dict(train_cfg=dict(update_memories=False))
    tokens_mode, pixels_mode = _model(**fixed), _model(mask_input='pixels', **fixed)
    passes = _record_passes(pixels_mode)
    assert torch.equal(_losses(tokens_mode)['loss_app'], _losses(pixels_mode)['loss_app'])
    assert not torch.equal(passes[0][0], tokens_mode.cube_embed(_inputs()['imgs']))
    tokens_mode.eval()
    pixels_mode.eval()
    inputs = _inputs()
    torch.testing.assert_close(tokens_mode.anomaly_components(inputs)['app'],
                               pixels_mode.anomaly_components(inputs)['app'], rtol=0, atol=0)


def test_visible_tokens_are_those_of_the_unmasked_clip_without_cube_mixing() -> None:
    """NO_MIXING: every visible token of the masked clip is the unmasked one, exactly."""
    model = _model(mask_input='pixels').eval()
    inputs = _inputs()
    tokens = model._tokens(inputs)  # (B, C_in, t, h, w)
    for mask in model.test_mask_pair(3, tokens.device):
        masked = model.masked_tokens(inputs, tokens, mask)
        # (B, C_in, t, h, w) -> (B, C_in, P), P in the mask's (t, h, w) order
        masked, unmasked = masked.flatten(2), tokens.flatten(2)
        visible = ~mask[:, None, :].expand_as(masked)
        assert torch.equal(masked[visible], unmasked[visible])
        # and every masked token changed
        changed = (masked - unmasked).abs().amax(dim=1) > 0  # (B, P)
        assert torch.equal(changed, mask)


def test_only_tokens_whose_window_touches_the_masked_block_change() -> None:
    """WINDOWED: stage 2 attends within 2x2 groups of cubes. Masking the tube of cube (0, 0)
    changes its three visible group-mates (the leak) and no token outside the group."""
    model = _model(cube_embed=WINDOWED, mask_input='pixels').eval()
    inputs = _inputs()
    tokens = model._tokens(inputs)
    masked = model.masked_tokens(inputs, tokens, _tube([(0, 0)]))
    changed = (masked - tokens).abs().amax(dim=1) > 0  # (B, t, h, w)
    group = torch.zeros(GRID, dtype=torch.bool)
    group[:, 0:2, 0:2] = True  # cube (0, 0) and its window: rows 0-1, columns 0-1
    assert torch.equal(changed, group.expand_as(changed))


def test_eq14_scores_each_token_in_the_pass_that_masks_it() -> None:
    model = _model(cube_embed=WINDOWED, mask_input='pixels', **TOKEN_HEADS).eval()
    inputs = _inputs()
    score = model.anomaly_components(inputs)['app']
    with torch.no_grad():
        unmasked = model.cube_embed(inputs['imgs'])
        f_u, _ = model.appearance_target(model.backbone(unmasked))  # (B, P, C_app)
        mask, complement = model.test_mask_pair(3, unmasked.device)
        assert bool((mask ^ complement).all())  # every token masked in exactly one pass
        distances = []
        for pattern in (mask, complement):
            frames = mask_pixels(inputs['imgs'], pattern, GRID)
            f_m = model._masked_features(model.cube_embed(frames), pattern)  # (B, P, C_app)
            distances.append(1 - F.cosine_similarity(f_u, f_m, dim=2))
    per_token = torch.where(mask, distances[0], distances[1])  # (B, P)
    torch.testing.assert_close(score, per_token.mean(dim=1))
    # pixel masking matters for this score: with the unmasked tokens it differs
    tokens_mode = _model(cube_embed=WINDOWED, **TOKEN_HEADS).eval()
    assert not (tokens_mode.anomaly_components(inputs)['app'] == score).any()


# ----------------------------------------------------------------------------- bad input
def test_cached_tokens_with_pixels_are_refused() -> None:
    model = _model(mask_input='pixels').eval()
    inputs = _inputs()
    cached = dict(pose=inputs['pose'], scene_feat=inputs['scene_feat'],
                  tokens=model.cube_embed(inputs['imgs']))
    with pytest.raises(ValueError, match=r"mask_input='pixels'.*feature cache holds unmasked"):
        model.anomaly_components(cached)
    model.train()
    with pytest.raises(ValueError, match=r"mask_input='pixels'.*demo_cached"):
        model(cached, _samples(), mode='loss')
    # level 1 alone never runs a masked pass: cached tokens are fine there
    motion = _model(mask_input='pixels', train_cfg=dict(levels=('motion', )))
    assert 'loss_app' not in motion(cached, _samples(), mode='loss')


def test_clips_that_do_not_divide_into_the_grid_are_refused() -> None:
    # 30 x 30 pixels: the Swin stage pads to the (4, 4, 4) grid, but a token's block is not whole
    model = _model(mask_input='pixels').eval()
    with pytest.raises(ValueError, match='does not divide into the token grid'):
        model.anomaly_components(_inputs(side=30))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="mask_input must be one of .*'frames'"):
        _model(mask_input='frames')
    with pytest.raises(ValueError, match=r"mask_input='pixels'.*model.cube_embed=None"):
        _build(mask_input='pixels')  # no cube_embed: a cached config
    no_level2 = {k: None for k in ('mask_encoder', 'appearance_head', 'mask_head',
                                   'mask_generator')}
    with pytest.raises(ValueError, match=r"mask_input='pixels' acts on level 2"):
        _model(mask_input='pixels', train_cfg=dict(levels=('motion', )), **no_level2)
