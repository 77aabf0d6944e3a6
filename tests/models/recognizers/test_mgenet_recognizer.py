"""MGENetRecognizer on a tiny configuration: levels, detach rules, BSMM write pass, scores."""
import copy
from typing import Dict, List

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401
from mgenet_mm.engine.hooks import BSMMWriteHook
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

init_default_scope('mmaction')

T, GRID, C_IN, C_B, C_S = 8, (4, 4, 4), 16, 32, 12
TINY = dict(
    type='MGENetRecognizer',
    guidance=dict(type='STGNF', seg_len=T),
    backbone=dict(type='SpaceTimeViT', in_channels=C_IN, embed_dims=C_B, token_grid=GRID,
                  depth=1, num_heads=2),
    motion_head=dict(type='LSTAHead', in_channels=C_B, out_channels=36, token_grid=GRID,
                     num_lsta=1, lsta_kernel_size=5, lsta_dilation=2),
    behaviour_memory=dict(type='MemoryBank', num_items=6, dim=C_B),
    scene_memory=dict(type='MemoryBank', num_items=3, dim=C_S),
    bsmm=dict(type='BSMM', num_items=4, top_k=2),
    mask_encoder=dict(type='SpaceTimeViT', in_channels=C_IN, embed_dims=C_B, token_grid=GRID,
                      depth=1, num_heads=2, use_mask_token=True),
    appearance_head=dict(type='ProjectionHead', in_channels=C_B, out_channels=8,
                         token_grid=GRID),
    mask_head=dict(type='ProjectionHead', in_channels=C_B, out_channels=8, token_grid=GRID,
                   loss_weight=0.1),
    mask_generator=dict(type='BlockMaskGenerator', input_size=GRID[1:], mask_ratio=0.5,
                        min_num_patches=2))


def _build(**overrides) -> torch.nn.Module:
    cfg = copy.deepcopy(TINY)
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.guidance.set_actnorm_initialized()
    return model


def _batch(size: int = 3, seed: int = 0) -> Dict[str, List]:
    generator = torch.Generator().manual_seed(seed)
    inputs = [dict(pose=torch.randn(T, 18, 3, generator=generator),
                   tokens=torch.randn(C_IN, *GRID, generator=generator),
                   scene_feat=torch.randn(C_S, generator=generator)) for _ in range(size)]
    samples = [ActionDataSample(metainfo=dict(clip_name='c', person_id=i, start_frame=0))
               for i in range(size)]
    return dict(inputs={k: [x[k] for x in inputs] for k in inputs[0]}, data_samples=samples)


def _losses(model) -> Dict[str, torch.Tensor]:
    data = model.data_preprocessor(_batch(), True)
    return model(data['inputs'], data['data_samples'], mode='loss')


def _grads(loss: torch.Tensor, module: torch.nn.Module) -> List:
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)


def test_train_step_updates_only_trainable_parts() -> None:
    model = _build()
    frozen = {k: v.clone() for k, v in model.guidance.state_dict().items()}
    backbone = [p.detach().clone() for p in model.backbone.parameters()]
    memory = model.behaviour_memory.items.clone()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5))
    log_vars = model.train_step(_batch(), wrapper)
    assert {'loss_mo', 'loss_app', 'loss_sep_b', 'loss_sep_s', 'loss'} <= set(log_vars)
    assert 'loss_sep_r' not in log_vars  # the BSMM is still empty
    assert all(torch.equal(v, model.guidance.state_dict()[k]) for k, v in frozen.items())
    assert not model.guidance.training  # BatchNorm statistics of the teacher stay fixed
    assert any(not torch.equal(b, p) for b, p in zip(backbone, model.backbone.parameters()))
    assert not torch.equal(memory, model.behaviour_memory.items)  # updated without gradient
    assert not model.bsmm.is_written


def test_detach_rules() -> None:
    model = _build()
    losses = _losses(model)
    # L_app never reaches the RGB encoder (f_u is detached) ...
    assert all(g is None or not g.any() for g in _grads(losses['loss_app'], model.backbone))
    # ... but trains the mask encoder.
    assert any(g is not None and g.any() for g in _grads(losses['loss_app'], model.mask_encoder))
    # L_mo trains the RGB encoder, never the mask encoder; the guidance flow has no gradient.
    assert any(g is not None and g.any() for g in _grads(losses['loss_mo'], model.backbone))
    assert all(g is None for g in _grads(losses['loss_mo'], model.mask_encoder))
    assert not any(p.requires_grad for p in model.guidance.parameters())


def test_levels_are_switches() -> None:
    motion_only = _build(train_cfg=dict(levels=('motion', )))
    assert 'loss_app' not in _losses(motion_only)
    appearance_only = _build(train_cfg=dict(levels=('appearance', )))
    losses = _losses(appearance_only)
    assert 'loss_mo' not in losses and 'loss_app' in losses
    assert not losses['loss_app'].grad_fn is None
    with pytest.raises(ValueError, match='levels'):
        _build(train_cfg=dict(levels=('pose', )))
    no_app = {k: None for k in ('mask_encoder', 'appearance_head', 'mask_head',
                                'mask_generator')}
    with pytest.raises(ValueError, match="has 'appearance'"):
        _build(**no_app)
    assert 'loss_app' not in _losses(_build(train_cfg=dict(levels=('motion', )), **no_app))


def test_bsmm_write_pass_and_scores() -> None:
    model = _build().eval()
    data = model.data_preprocessor(_batch(), False)
    outputs = model(data['inputs'], data['data_samples'], mode='predict')
    assert set(outputs[0].anomaly_scores) == {'mo', 'app'}  # no S_mm before the write pass
    items_before = model.bsmm.items.clone()
    BSMMWriteHook(log_interval=1).write(model, [_batch(4, seed=s) for s in range(3)])
    assert model.bsmm.is_written and not torch.equal(items_before, model.bsmm.items)
    outputs = model(data['inputs'], data['data_samples'], mode='predict')
    scores = outputs[0].anomaly_scores
    assert set(scores) == {'mo', 'app', 'mm'}
    # S_mo is eq. 13 on the same features.
    with torch.no_grad():
        f_sk = model.guidance_features(data['inputs']['pose'])
        f_rgb = model.motion_head(model.backbone(data['inputs']['tokens']), GRID)
    expected = torch.linalg.vector_norm((f_sk - f_rgb).flatten(1), dim=1)
    assert torch.allclose(torch.stack([o.anomaly_scores['mo'] for o in outputs]), expected,
                          atol=1e-5)
    # Complementary test masks come from a fixed seed: scoring is deterministic.
    again = model(data['inputs'], data['data_samples'], mode='predict')
    assert float(again[0].anomaly_scores['app']) == float(scores['app'])
    # Once written, training adds L_sep^r.
    model.train()
    assert 'loss_sep_r' in _losses(model)


def test_motion_score_variant_and_tensor_mode() -> None:
    model = _build(test_cfg=dict(motion_score='f_sk')).eval()
    data = model.data_preprocessor(_batch(), False)
    outputs = model(data['inputs'], data['data_samples'], mode='predict')
    f_sk = model.guidance_features(data['inputs']['pose'])
    assert float(outputs[1].anomaly_scores['mo']) == pytest.approx(
        float(torch.linalg.vector_norm(f_sk[1])), rel=1e-5)
    tokens = model(data['inputs'], mode='tensor')
    assert tokens.shape == (3, GRID[0] * GRID[1] * GRID[2], C_B)
    with pytest.raises(ValueError, match='motion_score'):
        _build(test_cfg=dict(motion_score='cosine'))


def test_missing_inputs_are_named() -> None:
    model = _build().eval()
    data = model.data_preprocessor(_batch(), False)
    data['inputs'].pop('scene_feat')
    BSMMWriteHook().write(model, [_batch()])
    with pytest.raises(KeyError, match='scene_feat'):
        model(data['inputs'], data['data_samples'], mode='predict')
    data['inputs'].pop('tokens')
    with pytest.raises(KeyError, match='tokens'):
        model(data['inputs'], data['data_samples'], mode='predict')


def test_total_loss_is_eq12() -> None:
    """L = L_mo + alpha L_app + beta (L_sep^b + L_sep^s [+ L_sep^r]), alpha 0.1, beta 0.001."""
    unit = TINY['mask_head']
    torch.manual_seed(5)
    weighted = _losses(_build())
    torch.manual_seed(5)
    plain = _losses(_build(sep_loss_weight=1.0, mask_head=dict(unit, loss_weight=1.0)))
    torch.testing.assert_close(weighted['loss_mo'], plain['loss_mo'])
    torch.testing.assert_close(weighted['loss_app'], 0.1 * plain['loss_app'])
    for key in ('loss_sep_b', 'loss_sep_s'):
        torch.testing.assert_close(weighted[key], 0.001 * plain[key])
    total, log_vars = _build().parse_losses(weighted)
    torch.testing.assert_close(total, sum(weighted.values()))


# ----------------------------------------------------------------------------- level-2 options
def _token_level(**overrides) -> dict:
    heads = dict(appearance_head=dict(TINY['appearance_head'], pool='none'),
                 mask_head=dict(TINY['mask_head'], pool='none'))
    heads.update(overrides)
    return heads


@pytest.mark.parametrize('teacher', ['readout', 'embedding', 'concat'])
def test_appearance_teacher_is_what_h_u_projects(teacher) -> None:
    width = 2 * C_B if teacher == 'concat' else C_B
    model = _build(appearance_teacher=teacher,
                   appearance_head=dict(TINY['appearance_head'], in_channels=width)).eval()
    data = model.data_preprocessor(_batch(), False)
    with torch.no_grad():
        e_b = model.backbone(data['inputs']['tokens'])
        f_b, w_b = model.behaviour_memory.read(e_b)
        f_u, weights = model.appearance_target(e_b)
    source = dict(readout=f_b, embedding=e_b, concat=torch.cat([e_b, f_b], dim=-1))[teacher]
    torch.testing.assert_close(f_u, model.appearance_head(source, GRID))
    torch.testing.assert_close(weights, w_b)
    with pytest.raises(ValueError, match='appearance_teacher'):
        _build(appearance_teacher='pixels')


def test_token_level_s_app_covers_every_token_once_in_its_masked_pass() -> None:
    model = _build(**_token_level()).eval()
    data = model.data_preprocessor(_batch(), False)
    inputs = data['inputs']
    with torch.no_grad():
        score = model.anomaly_components(inputs)['app']
        tokens = inputs['tokens']
        f_u, _ = model.appearance_target(model.backbone(tokens))
        mask, complement = model.test_mask_pair(tokens.shape[0], tokens.device)
        assert bool((mask ^ complement).all())  # every token masked in exactly one pass
        distances = []
        for pattern in (mask, complement):
            f_m = model._masked_features(tokens, pattern)  # (B, P, C_app)
            distances.append(1 - torch.nn.functional.cosine_similarity(f_u, f_m, dim=2))
    per_token = torch.where(mask, distances[0], distances[1])  # (B, P)
    torch.testing.assert_close(score, per_token.mean(dim=1))
    assert score.shape == (3, ) and f_u.shape == (3, 4 * 4 * 4, 8)


def test_token_level_l_app_reaches_the_mask_side_only() -> None:
    model = _build(**_token_level(), appearance_teacher='embedding')
    losses = _losses(model)
    assert all(g is None or not g.any() for g in _grads(losses['loss_app'], model.backbone))
    assert any(g is not None and g.any() for g in _grads(losses['loss_app'], model.mask_encoder))


# ----------------------------------------------------------------------------- calibrated fusion
def test_calibrated_predict_standardises_with_the_stored_statistics(tmp_path) -> None:
    from mgenet_mm.engine.hooks import ScoreCalibrationHook
    model = _build(score_calibration=dict(type='ScoreCalibration')).eval()
    data = model.data_preprocessor(_batch(), False)
    raw = model(data['inputs'], data['data_samples'], mode='predict')
    # not fitted yet: the raw components (with a warning)
    assert float(raw[0].anomaly_scores['mo']) == float(
        model.anomaly_components(data['inputs'])['mo'][0])
    train = [_batch(4, seed=s) for s in range(3)]
    BSMMWriteHook(log_interval=1).write(model, train)
    fitted = ScoreCalibrationHook(log_interval=1).fit(model, train)
    assert set(fitted) == {'mo', 'app', 'mm'}
    assert int(model.score_calibration.num_windows) == 12
    # the statistics are those of the training windows' raw components
    normal = {}
    for batch in train:
        inputs = model.data_preprocessor(batch, False)['inputs']
        for name, values in model.anomaly_components(inputs).items():
            normal.setdefault(name, []).append(values)
    for name, parts in normal.items():
        values = torch.cat(parts).double()
        center = values.median() if values.numel() % 2 else values.quantile(0.5)
        assert fitted[name][0] == pytest.approx(float(center))
        iqr = values.quantile(0.75) - values.quantile(0.25)
        assert fitted[name][1] == pytest.approx(float(iqr))
    outputs = model(data['inputs'], data['data_samples'], mode='predict')
    components = model.anomaly_components(data['inputs'])
    for name in ('mo', 'app', 'mm'):
        expected = (components[name][0].double() - fitted[name][0]) / fitted[name][1]
        assert float(outputs[0].anomaly_scores[name]) == pytest.approx(float(expected),
                                                                       rel=1e-5)
    # the statistics are part of the checkpoint: a fresh model restored from it scores alike
    torch.save(model.state_dict(), tmp_path / 'model.pth')
    restored = _build(score_calibration=dict(type='ScoreCalibration')).eval()
    restored.load_state_dict(torch.load(tmp_path / 'model.pth'))
    again = restored(data['inputs'], data['data_samples'], mode='predict')
    assert float(again[0].anomaly_scores['mm']) == float(outputs[0].anomaly_scores['mm'])


# ------------------------------------------------------------------------ whitened level-1 gap
def test_whitened_s_mo_uses_the_gap_statistics_of_the_training_windows(tmp_path) -> None:
    import numpy as np

    from mgenet_mm.engine.hooks import GapWhiteningHook, ScoreCalibrationHook
    whitening = dict(type='GapWhitening', ridge=0.05)
    model = _build(motion_whitening=whitening).eval()
    assert model.motion_whitening.dim == 36  # C_mo from the motion head
    data = model.data_preprocessor(_batch(), False)
    inputs = data['inputs']
    plain = model.anomaly_components(inputs)['mo']
    with torch.no_grad():
        f_rgb = model.motion_head(model.backbone(inputs['tokens']), model.token_grid)
    f_sk = model.guidance_features(inputs['pose'])
    # not fitted yet: eq. 13 (with a warning)
    torch.testing.assert_close(plain, torch.linalg.vector_norm((f_sk - f_rgb).flatten(1), dim=1))
    train = [_batch(4, seed=s) for s in range(3)]
    GapWhiteningHook(log_interval=1).fit(model, train)
    # the statistics of every training frame's gap f_sk - f_rgb, by numpy
    frames = []
    with torch.no_grad():
        for batch in train:
            batch_inputs = model.data_preprocessor(batch, False)['inputs']
            gap = model.guidance_features(batch_inputs['pose']) - model.motion_head(
                model.backbone(batch_inputs['tokens']), model.token_grid)  # (B, T, C_mo)
            frames.append(gap.double().reshape(-1, 36).numpy())  # (B*T, C_mo)
    frames = np.concatenate(frames)
    assert int(model.motion_whitening.num_frames) == len(frames) == 12 * T
    covariance = np.cov(frames.T, bias=True)
    precision = np.linalg.inv(covariance + 0.05 * np.trace(covariance) / 36 * np.eye(36))
    centred = (f_sk - f_rgb).double().numpy() - frames.mean(0)  # (B, T, C_mo)
    expected = np.sqrt(np.einsum('btc,cd,btd->b', centred, precision, centred))
    whitened = model.anomaly_components(inputs)['mo']
    np.testing.assert_allclose(whitened.numpy(), expected, rtol=1e-4)
    assert not torch.allclose(whitened, plain)
    # the calibration pass after it standardises the whitened S_mo, and both are stored
    model_cal = _build(motion_whitening=whitening,
                       score_calibration=dict(type='ScoreCalibration')).eval()
    BSMMWriteHook(log_interval=1).write(model_cal, train)
    GapWhiteningHook(log_interval=1).fit(model_cal, train)
    fitted = ScoreCalibrationHook(log_interval=1).fit(model_cal, train)
    normal = torch.cat([model_cal.anomaly_components(
        model_cal.data_preprocessor(b, False)['inputs'])['mo'] for b in train]).double()
    assert fitted['mo'][0] == pytest.approx(float(normal.quantile(0.5)))
    torch.save(model_cal.state_dict(), tmp_path / 'model.pth')
    restored = _build(motion_whitening=whitening,
                      score_calibration=dict(type='ScoreCalibration')).eval()
    restored.load_state_dict(torch.load(tmp_path / 'model.pth'))
    torch.testing.assert_close(restored.scored_components(inputs)['mo'],
                               model_cal.scored_components(inputs)['mo'])
    with pytest.raises(ValueError, match='motion_score in'):
        _build(motion_whitening=whitening, test_cfg=dict(motion_score='sim'))


def test_whitening_acts_on_the_vector_of_the_chosen_motion_score() -> None:
    """motion_score='f_sk' whitens the flow's latent alone (the honest baseline of the
    whitened gap: how much of it the RGB side adds)."""
    model = _build(motion_whitening=dict(type='GapWhitening'),
                   test_cfg=dict(motion_score='f_sk')).eval()
    inputs = model.data_preprocessor(_batch(), False)['inputs']
    torch.testing.assert_close(model.motion_gap(inputs),
                               model.guidance_features(inputs['pose']))


def test_final_passes_run_in_order_bsmm_whitening_calibration() -> None:
    from mmengine.hooks import Hook
    from mmengine.runner.priority import get_priority

    from mgenet_mm.engine.hooks import GapWhiteningHook, ScoreCalibrationHook
    priorities = [get_priority(hook.priority) for hook in
                  (BSMMWriteHook, GapWhiteningHook, ScoreCalibrationHook)]
    assert priorities == sorted(priorities) and len(set(priorities)) == 3
    assert all(issubclass(hook, Hook) for hook in (GapWhiteningHook, ScoreCalibrationHook))


# ---------------------------------------------------------------------- guidance cache
def _count_flow_windows(model) -> List[int]:
    """Patch the frozen flow to record the batch size of each call; returns the record."""
    calls: List[int] = []
    original = model.guidance.latent_features

    def counted(x, *args, **kwargs):
        calls.append(x.shape[0])
        return original(x, *args, **kwargs)

    model.guidance.latent_features = counted
    return calls


def _epochs(model, batches, epochs: int = 2, flip_epoch: int = -1) -> List[Dict[str, float]]:
    """train_step over ``batches`` for some epochs, seeding every step (mask draws alike)."""
    import random

    import numpy as np
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4))
    logs = []
    for epoch in range(epochs):
        for step, batch in enumerate(batches):
            batch = copy.deepcopy(batch)
            if epoch == flip_epoch:  # a mirrored window: x -> -x, as RandomFlipPoseWindow
                batch['inputs']['pose'] = [p * torch.tensor([-1., 1., 1.])
                                           for p in batch['inputs']['pose']]
            torch.manual_seed(100 * epoch + step)
            np.random.seed(100 * epoch + step)
            random.seed(100 * epoch + step)
            logs.append({k: float(v) for k, v in model.train_step(batch, wrapper).items()})
    assert all(np.isfinite(list(log.values())).all() for log in logs)  # NaN != NaN
    return logs


def _train_batches():
    batches = [_batch(3, seed=s) for s in range(3)]
    for index, batch in enumerate(batches):  # distinct identities across batches
        for sample in batch['data_samples']:
            sample.set_metainfo(dict(start_frame=10 * index))
    return batches


def test_cached_epoch_calls_the_flow_once_per_window_and_losses_are_identical() -> None:
    batches = _train_batches()
    cached = _build()
    calls = _count_flow_windows(cached)
    cached_logs = _epochs(cached, batches)
    # Epoch 1: one flow call per batch (9 windows); epoch 2: none.
    assert calls == [3, 3, 3]
    cache = cached._guidance_cache
    assert (len(cache), cache.misses, cache.hits, cache.flow_calls) == (9, 9, 9, 3)

    plain = _build(train_cfg=dict(cache_guidance=False))
    plain_calls = _count_flow_windows(plain)
    plain_logs = _epochs(plain, batches)
    assert plain_calls == [3] * 6 and plain._guidance_cache is None
    assert cached_logs == plain_logs  # bit-identical losses, every step of both epochs


def test_flipped_poses_are_computed_and_cached_apart() -> None:
    batches = _train_batches()
    cached = _build()
    calls = _count_flow_windows(cached)
    cached_logs = _epochs(cached, batches, epochs=3, flip_epoch=1)
    # Epoch 2 mirrors every pose: new entries, computed once; epoch 3 reads the originals.
    assert calls == [3] * 6 and len(cached._guidance_cache) == 18
    plain = _build(train_cfg=dict(cache_guidance=False))
    assert cached_logs == _epochs(plain, batches, epochs=3, flip_epoch=1)


def test_changed_guidance_weights_empty_the_cache() -> None:
    batches = _train_batches()
    model = _build()
    calls = _count_flow_windows(model)
    _epochs(model, batches[:1], epochs=1)
    state = {k: v.clone() for k, v in model.guidance.state_dict().items()}
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 0.5
    model.guidance.load_state_dict(state)
    _epochs(model, batches[:1], epochs=1)
    assert calls == [3, 3]  # recomputed with the new weights, not read from the cache
    assert len(model._guidance_cache) == 3


def test_the_cache_is_bounded() -> None:
    batches = _train_batches()
    model = _build(train_cfg=dict(guidance_cache_windows=4))
    calls = _count_flow_windows(model)
    _epochs(model, batches)
    # 4 entries: batch 1 (3) and one window of batch 2; batches 2 and 3 run again in epoch 2.
    assert len(model._guidance_cache) == 4
    assert calls == [3, 3, 3, 3, 3]


@pytest.mark.parametrize('train_cfg, match', [
    (dict(cache_guidance='yes'), 'train_cfg.cache_guidance'),
    (dict(guidance_cache_windows=0), 'train_cfg.guidance_cache_windows'),
])
def test_bad_guidance_cache_settings(train_cfg, match) -> None:
    model = _build(train_cfg=train_cfg)
    with pytest.raises(ValueError, match=match):
        _losses(model)
