"""MGENetRecognizer(appearance_head_sharing=...): H_u shared with the mask head, as its EMA, or
its own (the default), and the mask-side predictor that guards a shared head against collapse."""
import copy
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper

from tests.conftest import load_tool
from tests.models.recognizers.test_mgenet_recognizer import (C_B, GRID, TINY, _batch, _build,
                                                             _losses)

PREDICTOR = dict(type='AppearancePredictor', in_channels=8, hidden_channels=16)
#: Memories left as they are by a training step, so that a forward by hand after it reads the
#: same f_b as the step did.
FIXED_MEMORIES = dict(train_cfg=dict(update_memories=False))


def _shared(mode: str = 'shared', **overrides) -> torch.nn.Module:
    return _build(**dict(dict(appearance_head_sharing=mode, appearance_head=None), **overrides))


def _token_heads(**mask_head) -> Dict[str, dict]:
    """Per-token f_u / f_m (pool='none') with extra mask-head options."""
    return dict(mask_head=dict(TINY['mask_head'], pool='none', **mask_head))


def _inputs(model, training: bool = False, seed: int = 0) -> Dict[str, torch.Tensor]:
    return model.data_preprocessor(_batch(seed=seed), training)['inputs']


def _seeded_loss(model, seed: int = 7) -> Dict[str, torch.Tensor]:
    torch.manual_seed(seed)  # the training masks come from the global generator
    return _losses(model)


def _record_masks(model) -> List[torch.Tensor]:
    """Patch ``_masked_features`` to record the mask of every pass."""
    masks: List[torch.Tensor] = []
    original = model._masked_features

    def recorded(tokens, mask):
        masks.append(mask.clone())
        return original(tokens, mask)

    model._masked_features = recorded
    return masks


def _head_grads(loss: torch.Tensor, module: torch.nn.Module) -> List[torch.Tensor]:
    params = [p for p in module.parameters() if p.requires_grad]
    return list(torch.autograd.grad(loss, params, retain_graph=True))


# ----------------------------------------------------------------------------- 'shared'
@pytest.mark.parametrize('pool', ['space', 'none'])
def test_shared_f_u_is_the_mask_head_on_the_teacher(pool) -> None:
    model = _shared(mask_head=dict(TINY['mask_head'], pool=pool))
    assert model.appearance_head is None and model.appearance_target_head() is model.mask_head
    inputs = _inputs(model)
    e_b = model.backbone(inputs['tokens'])
    f_b, _ = model.behaviour_memory.read(e_b)
    f_u, _ = model.appearance_target(e_b)
    # by hand: the mask head's own MLP on the read-out (space-pooled per step for 'space')
    if pool == 'space':
        # (B, P, C_b) -> (B, t, h*w, C_b) -> (B, t, C_b)
        source = f_b.reshape(3, GRID[0], GRID[1] * GRID[2], C_B).mean(dim=2)
    else:
        source = f_b
    torch.testing.assert_close(f_u, model.mask_head.mlp(source))
    # the stop-gradient: f_u is a constant although the head and e_b have gradients
    assert e_b.requires_grad and not f_u.requires_grad


def test_shared_head_learns_through_f_m_only() -> None:
    model = _shared(**FIXED_MEMORIES)
    loss_app = _seeded_loss(model)['loss_app']
    grads = _head_grads(loss_app, model.mask_head)
    # the same step with f_u replaced by a constant tensor of the same values
    original = model.appearance_target

    def constant_target(e_b):
        f_u, w_b = original(e_b)
        return f_u.detach().clone(), w_b

    model.appearance_target = constant_target
    constant_loss = _seeded_loss(model)['loss_app']
    torch.testing.assert_close(loss_app, constant_loss)
    for grad, expected in zip(grads, _head_grads(constant_loss, model.mask_head)):
        torch.testing.assert_close(grad, expected, rtol=0, atol=0)
    assert all(grad.any() for grad in grads)  # and H_m is trained, through f_m


def test_shared_head_keeps_centring_token_level_and_topk() -> None:
    """S_app of a shared head with pool='none', centring and top-k is eq. 14 on the training
    definitions: f_u = H_m(teacher), f_m = H_m(mask encoder), both minus the EMA centre."""
    model = _shared(appearance_teacher='embedding',
                    **_token_heads(center_momentum=0.5, score_reduction='topk', score_top_k=5))
    _seeded_loss(model)  # one training loss: the centre is the batch mean of f_u
    center = model.mask_head.target_center.clone()
    assert int(model.mask_head.center_updates) == 1 and center.abs().sum() > 0
    model.eval()
    inputs = _inputs(model)
    score = model.anomaly_components(inputs)['app']
    with torch.no_grad():
        tokens = inputs['tokens']
        f_u = model.mask_head.mlp(model.backbone(tokens)) - center  # (B, P, C_app)
        mask, complement = model.test_mask_pair(3, tokens.device)
        per_pass = [F.cosine_similarity(
            model.mask_head.mlp(model.mask_encoder(tokens, m)) - center, f_u, dim=2)
            for m in (mask, complement)]
    distance = 1 - torch.where(mask, per_pass[0], per_pass[1])  # (B, P)
    torch.testing.assert_close(score, distance.topk(5, dim=1).values.mean(dim=1))


# ----------------------------------------------------------------------------- 'ema'
def _ema_state(model) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.appearance_ema_head.named_parameters()}


def _head_state(model) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.mask_head.named_parameters()}


def test_ema_head_is_the_moving_average_of_the_mask_head() -> None:
    momentum = 0.75
    model = _shared('ema', appearance_ema_momentum=momentum)
    assert model.appearance_target_head() is model.appearance_ema_head
    # it starts as the initialised mask head, and is frozen
    start = _ema_state(model)
    for name, value in _head_state(model).items():
        torch.testing.assert_close(start[name], value, rtol=0, atol=0)
    assert not any(p.requires_grad for p in model.appearance_ema_head.parameters())
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.1))
    torch.manual_seed(1)
    model.train_step(_batch(), wrapper)
    old_ema, new_head = _ema_state(model), _head_state(model)
    assert any(not torch.equal(old_ema[k], new_head[k]) for k in old_ema)  # H_m has moved
    torch.manual_seed(2)
    model.train_step(_batch(seed=1), wrapper)
    # the second step averaged H_m as the first optimiser step left it
    for name, value in _ema_state(model).items():
        torch.testing.assert_close(value, momentum * old_ema[name] +
                                   (1 - momentum) * new_head[name])
        assert model.appearance_ema_head.get_parameter(name).grad is None
    assert int(model.appearance_ema_steps) == 2


def test_ema_target_uses_the_updated_average_and_gets_no_gradient() -> None:
    model = _shared('ema', appearance_ema_momentum=0.5, **FIXED_MEMORIES)
    with torch.no_grad():  # make H_m differ from its average
        for param in model.mask_head.parameters():
            param.add_(0.01 * torch.randn_like(param))
    expected_ema = {k: 0.5 * v + 0.5 * model.mask_head.get_parameter(k).detach()
                    for k, v in _ema_state(model).items()}
    masks = _record_masks(model)
    losses = _seeded_loss(model)
    for name, value in _ema_state(model).items():
        torch.testing.assert_close(value, expected_ema[name])
    # L_app by hand: f_u from the averaged head, f_m from H_m, the cosine over each window
    inputs = _inputs(model, training=True)
    with torch.no_grad():
        e_b = model.backbone(inputs['tokens'])
        f_u = model.appearance_ema_head(model.behaviour_memory.read(e_b)[0], GRID)
        f_m = model.mask_head(model.mask_encoder(inputs['tokens'], masks[0]), GRID)
    by_hand = 1 - F.cosine_similarity(f_m.flatten(1), f_u.flatten(1), dim=1)
    torch.testing.assert_close(losses['loss_app'], 0.1 * by_hand.mean())
    losses['loss_app'].backward()
    assert all(p.grad is None for p in model.appearance_ema_head.parameters())
    assert all(p.grad is not None for p in model.mask_head.parameters())


def test_ema_state_dict_round_trip(tmp_path) -> None:
    model = _shared('ema', appearance_ema_momentum=0.5)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    for step in range(2):
        torch.manual_seed(step)
        model.train_step(_batch(seed=step), wrapper)
    state = model.state_dict()
    assert 'appearance_ema_steps' in state and any(k.startswith('appearance_ema_head.')
                                                   for k in state)
    torch.save(state, tmp_path / 'ema.pth')
    restored = _shared('ema', appearance_ema_momentum=0.5)
    assert not torch.equal(restored.appearance_ema_head.mlp[0].weight,
                           model.appearance_ema_head.mlp[0].weight)
    restored.load_state_dict(torch.load(tmp_path / 'ema.pth'))
    assert int(restored.appearance_ema_steps) == 2
    for name, value in _ema_state(model).items():
        torch.testing.assert_close(restored.appearance_ema_head.get_parameter(name), value,
                                   rtol=0, atol=0)
    restored.init_weights()  # an averaged target is not reset to H_m
    torch.testing.assert_close(_ema_state(restored), _ema_state(model), rtol=0, atol=0)
    model.eval(), restored.eval()
    inputs = _inputs(model)
    torch.testing.assert_close(restored.anomaly_components(inputs)['app'],
                               model.anomaly_components(inputs)['app'], rtol=0, atol=0)
    assert not restored.appearance_ema_head.training  # frozen parts stay in eval mode
    restored.train()
    assert restored.mask_head.training and not restored.appearance_ema_head.training


def test_eval_and_scoring_leave_the_average_alone() -> None:
    model = _shared('ema', appearance_ema_momentum=0.5)
    with torch.no_grad():
        for param in model.mask_head.parameters():
            param.add_(0.01)
    before = _ema_state(model)
    model.eval()
    model.anomaly_components(_inputs(model))
    torch.testing.assert_close(_ema_state(model), before, rtol=0, atol=0)
    assert int(model.appearance_ema_steps) == 0


# ----------------------------------------------------------------------------- predictor
@pytest.mark.parametrize('mode', ['separate', 'shared', 'ema'])
def test_predictor_is_applied_to_f_m_in_l_app_and_s_app(mode) -> None:
    overrides = dict(appearance_predictor=PREDICTOR, **_token_heads(), **FIXED_MEMORIES)
    if mode == 'separate':
        overrides['appearance_head'] = dict(TINY['appearance_head'], pool='none')
        model = _build(**overrides)
    else:
        model = _shared(mode, **overrides)
    assert model.appearance_predictor is not None
    masks = _record_masks(model)
    losses = _seeded_loss(model)
    inputs = _inputs(model, training=True)
    predictor = model.appearance_predictor
    with torch.no_grad():
        e_b = model.backbone(inputs['tokens'])
        # f_u never passes through the predictor
        f_u = model.appearance_target_head()(model.behaviour_memory.read(e_b)[0], GRID)

        def f_m(mask):  # P(H_m(mask encoder)) by hand, the predictor's layers written out
            hidden = predictor.fc1(model.mask_head(model.mask_encoder(inputs['tokens'], mask),
                                                   GRID))
            return predictor.fc2(F.gelu(F.layer_norm(hidden, (16, ), predictor.norm.weight,
                                                     predictor.norm.bias)))

        # L_app: 1 - cos per token, averaged over the masked tokens of each window
        distance = 1 - F.cosine_similarity(f_m(masks[0]), f_u, dim=2)  # (B, P)
        weights = masks[0].float()
        by_hand = ((distance * weights).sum(1) / weights.sum(1)).mean()
    torch.testing.assert_close(losses['loss_app'], 0.1 * by_hand)
    grads = _head_grads(losses['loss_app'], predictor)
    assert all(grad.any() for grad in grads)  # L_app trains the predictor
    # S_app: each token scored in the pass that masks it, f_m through the predictor
    model.eval()
    inputs = _inputs(model)
    score = model.anomaly_components(inputs)['app']
    with torch.no_grad():
        mask, complement = model.test_mask_pair(3, inputs['tokens'].device)
        per_pass = [1 - F.cosine_similarity(f_m(m), f_u, dim=2) for m in (mask, complement)]
    torch.testing.assert_close(score, torch.where(mask, *per_pass).mean(dim=1))


# ----------------------------------------------------------------------------- default
def test_separate_default_is_todays_model() -> None:
    explicit = dict(appearance_head_sharing='separate', appearance_predictor=None,
                    appearance_ema_momentum=0.99)
    default, named = _build(), _build(**explicit)
    assert default.state_dict().keys() == named.state_dict().keys()
    assert not any(k.startswith(('appearance_ema', 'appearance_predictor'))
                   for k in default.state_dict())
    for key, value in default.state_dict().items():
        torch.testing.assert_close(named.state_dict()[key], value, rtol=0, atol=0)
    assert default.appearance_target_head() is default.appearance_head
    # the parts are initialised (and draw from the seed) in module order: H_u before H_m, as
    # before the option existed, so a seed gives the weights it gave then
    names = [name for name, _ in default.named_children()]
    assert names.index('mask_encoder') + 1 == names.index('appearance_head') == \
        names.index('mask_head') - 1
    for left, right in ((_seeded_loss(default), _seeded_loss(named)), ):
        assert left.keys() == right.keys()
        for key in left:
            torch.testing.assert_close(left[key], right[key], rtol=0, atol=0)
    # today H_u is its own head, f_u keeps its graph (the loss detaches it), never H_m
    inputs = _inputs(default, training=True)
    f_u, _ = default.appearance_target(default.backbone(inputs['tokens']))
    assert f_u.requires_grad
    default.eval(), named.eval()
    inputs = _inputs(default)
    left, right = default.anomaly_components(inputs), named.anomaly_components(inputs)
    for key in left:
        torch.testing.assert_close(left[key], right[key], rtol=0, atol=0)


# ----------------------------------------------------------------------------- diagnostics
TOOL = load_tool('tools/analysis/level_diagnostics.py')


@pytest.mark.parametrize('mode', ['shared', 'ema'])
def test_level_diagnostics_follow_a_shared_head(mode) -> None:
    model = _shared(mode, appearance_predictor=PREDICTOR).eval()
    inputs = _inputs(model)
    tensors = TOOL.level_tensors(model, inputs)
    torch.testing.assert_close(
        model.mask_head.appearance_score(tensors['f_u'], tensors['f_m1'], tensors['f_m2'],
                                         tensors['mask1'], tensors['mask2']),
        model.anomaly_components(inputs)['app'])
    features = TOOL.diagnostics(model, tensors)['features']
    assert features['head_sharing'] == mode
    unit = F.normalize(tensors['f_u'].double().flatten(1), dim=1)  # (B, t*C_app)
    assert features['f_u_dim_std'] == pytest.approx(
        float(unit.std(dim=0, unbiased=False).mean()))
    assert features['f_u_dim_std_spread'] == pytest.approx(unit.shape[1] ** -0.5)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize('mode', ['shared', 'ema'])
def test_sharing_with_a_teacher_of_another_width_names_both(mode) -> None:
    # [e_b, f_b] is 2 C_B = 64 wide; the mask head takes C_B = 32
    with pytest.raises(ValueError, match=r"appearance_teacher='concat'.*= 64 channels.*"
                       r"mask_encoder.embed_dims = 32.*mask_head.in_channels = 32"):
        _shared(mode, appearance_teacher='concat')


@pytest.mark.parametrize('overrides, match', [
    (dict(appearance_head_sharing='tied'), 'appearance_head_sharing must be one of'),
    (dict(appearance_head_sharing='shared'), 'appearance_head must be None'),
    (dict(appearance_head_sharing='shared', appearance_head=None, mask_head=None),
     'level 2 needs mask_encoder, mask_head and mask_generator'),
    (dict(appearance_head_sharing='ema', appearance_head=None, appearance_ema_momentum=1.0),
     r'appearance_ema_momentum must be in \[0, 1\)'),
    (dict(appearance_predictor=dict(PREDICTOR, in_channels=6)),
     r'appearance_predictor.in_channels \(6\).*mask_head.out_channels \(8\)'),
    (dict(appearance_head_sharing='shared', mask_encoder=None, appearance_head=None,
          mask_head=None, mask_generator=None, train_cfg=dict(levels=('motion', ))),
     'no mask_encoder'),
])
def test_bad_sharing_settings(overrides, match) -> None:
    with pytest.raises(ValueError, match=match):
        _build(**overrides)


def test_ema_update_needs_the_ema_mode() -> None:
    with pytest.raises(RuntimeError, match="appearance_head_sharing='ema'"):
        _shared().update_appearance_ema()
