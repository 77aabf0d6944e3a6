"""Tests of the STG-NF backbone: parity with the official model, invertibility, loading."""
import copy
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import mgenet_mm  # noqa: F401  registers the modules
from mgenet_mm.models.backbones.stgnf import STGNF
from mgenet_mm.models.layers import stgnf_fused
from mgenet_mm.models.layers.stgnf_layers import STGCNBlock

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get('MGENET_SHARED', REPO.parent / 'shared'))
REF = SHARED / 'fixtures' / 'stgnf_reference'
SHT_CKPT = REF / 'ShanghaiTech_85_9.tar'
UB_CKPT = REF / 'UBnormal_unsupervised_71_8.tar'
TOL = 1e-4


def _ref(name: str) -> Path:
    path = REF / name
    if not path.is_file():
        pytest.fail(f'reference file {path} is missing (set MGENET_SHARED)')
    return path


@pytest.fixture(scope='module')
def sht_model() -> STGNF:
    return STGNF.from_official_checkpoint(str(_ref(SHT_CKPT.name))).eval()


@pytest.fixture(scope='module')
def sht_ref():
    return np.load(_ref('expected_sht.npz'))


def _small_model(permutation: str = 'reverse', seed: int = 0, **kwargs) -> STGNF:
    """A random model on short windows, ActNorm initialised from one training batch."""
    torch.manual_seed(seed)
    model = STGNF(seg_len=8, num_steps=3, permutation=permutation, **kwargs)
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 2, 8, 18) * 2 + 1)  # data-dependent ActNorm init
    return model.eval()


# ------------------------------------------------------------------------------ parity
def test_sht_parity(sht_model, sht_ref):
    segments = torch.from_numpy(sht_ref['segments'])  # (64, 3, 24, 18): x, y, confidence
    with torch.no_grad():
        z, nll = sht_model(segments)
        z_xy, nll_xy = sht_model(segments[:, :2])
    assert z.shape == (64, 2, 24, 18) and nll.shape == (64,)
    assert np.abs(z.numpy() - sht_ref['latent']).max() < TOL
    assert np.abs(nll.numpy() - sht_ref['nll'][:64]).max() < TOL
    # the confidence channel is ignored
    assert torch.equal(z, z_xy) and torch.equal(nll, nll_xy)
    # The score is -nll of the same pass (no_grad: the fused evaluation path, as above; with
    # autograd the step-by-step path runs, whose last bits differ by machine, see below).
    with torch.no_grad():
        assert torch.equal(sht_model.normality_score(segments), -nll)


def test_sht_defaults_match_checkpoint(sht_model, sht_ref):
    model = STGNF().load_official_checkpoint(str(SHT_CKPT)).eval()
    segments = torch.from_numpy(sht_ref['segments'][:8])
    with torch.no_grad():
        assert torch.equal(model(segments)[1], sht_model(segments)[1])
    assert model.temporal_kernel == 13
    assert model.permutation == 'reverse'  # from the checkpoint's 'invcov'


def test_ubnormal_parity():
    ref = np.load(_ref('expected_ubnormal_forward.npz'))
    model = STGNF.from_official_checkpoint(str(_ref(UB_CKPT.name))).eval()
    assert (model.seg_len, model.temporal_kernel) == (16, 9)
    with torch.no_grad():
        z, nll = model(torch.from_numpy(ref['inputs']))
    assert np.abs(z.numpy() - ref['latent']).max() < TOL
    assert np.abs(nll.numpy() - ref['nll']).max() < TOL


# ------------------------------------------------------------------------------ flow properties
@pytest.mark.parametrize('permutation', ['reverse', 'invcov', 'shuffle', 'inv1x1'])
def test_reverse_inverts_forward(permutation):
    model = _small_model(permutation)
    x = torch.randn(4, 2, 8, 18) * 2 + 1
    with torch.no_grad():
        z, _ = model(x)
        x_rec = model.reverse(z)
    torch.testing.assert_close(x_rec, x, atol=TOL, rtol=0)
    assert not torch.allclose(z, x, atol=1e-2)  # the flow does something
    for step in model.flow.layers:  # each permutation layer on its own
        y = torch.randn(3, 2, 8, 18)
        torch.testing.assert_close(step.permutation.inverse(step.permutation(y)[0]), y)


@pytest.mark.parametrize('permutation', ['reverse', 'inv1x1'])
def test_nll_matches_exact_jacobian(permutation):
    """nll == -(log N(z; R, 1) + log|det dz/dx|) / (ln 2 * D), with the Jacobian by autograd."""
    model = _small_model(permutation, seed=1, hidden_channels=3).double()
    torch.manual_seed(2)
    with torch.no_grad():  # move off the init (a fresh 1x1 conv is a rotation: log|det| = 0)
        for param in model.parameters():
            param.add_(0.3 * torch.randn_like(param))
    x = torch.randn(2, 2, 8, 18, dtype=torch.float64)
    with torch.no_grad():
        z, nll = model(x)
    prior = torch.distributions.Normal(model.prior_mean, 1.0)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda s: model(s[None])[0][0], x[i],
                                                 vectorize=True)
        jac = jac.reshape(x[i].numel(), x[i].numel())
        logdet = torch.linalg.slogdet(jac)[1]
        expected = -(prior.log_prob(z[i]).sum() + logdet) / (math.log(2.0) * x[i].numel())
        assert abs(nll[i].item() - expected.item()) < 1e-5


def test_prior_labels(sht_model, sht_ref):
    x = torch.from_numpy(sht_ref['segments'][:4, :2])
    with torch.no_grad():
        z, nll_default = sht_model(x)
        _, nll = sht_model(x, labels=torch.tensor([1, -1, 0, 1]))
    d = z[0].numel() * math.log(2.0)
    assert torch.allclose(nll[[0, 3]], nll_default[[0, 3]])
    # moving the prior mean from +R to -R / 0 changes sum((z-m)^2)/2 only
    r = sht_model.prior_mean
    shift_abn = ((z[1] + r) ** 2 - (z[1] - r) ** 2).sum() / 2 / d
    shift_zero = (z[2] ** 2 - (z[2] - r) ** 2).sum() / 2 / d
    assert abs((nll[1] - nll_default[1]).item() - shift_abn.item()) < 1e-3
    assert abs((nll[2] - nll_default[2]).item() - shift_zero.item()) < 1e-3


def test_gradient_flows_in_training_mode():
    model = _small_model()
    model.train()
    x = torch.randn(8, 2, 8, 18)
    _, nll = model(x)
    nll.mean().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads['flow.layers.0.actnorm.logs'].abs().sum() > 0
    assert grads['flow.layers.2.block.0.tcn.2.weight'].abs().sum() > 0
    assert grads['flow.layers.0.block.0.gcn.conv.weight'].abs().sum() > 0


def test_latent_features(sht_model, sht_ref):
    x = torch.from_numpy(sht_ref['segments'][:5])
    with torch.no_grad():
        feats, nll = sht_model.latent_features(x, return_nll=True)
        z, nll_fwd = sht_model(x)
    assert feats.shape == (5, 24, 36)
    # order: [b, t, c * V + v] = z[b, c, t, v]
    assert torch.equal(feats[:, :, :18], z[:, 0]) and torch.equal(feats[:, :, 18:], z[:, 1])
    assert torch.equal(nll, nll_fwd)
    assert sht_model.latent_features(x).shape == (5, 24, 36)


def test_bad_inputs_raise():
    model = _small_model()
    with pytest.raises(ValueError, match='channels'):
        model(torch.randn(2, 4, 8, 18))
    with pytest.raises(ValueError, match="T=8"):
        model(torch.randn(2, 2, 9, 18))
    with pytest.raises(ValueError, match='permutation'):
        STGNF(permutation='bogus')
    with pytest.raises(ValueError, match='odd'):
        STGNF(seg_len=10)  # default kernel 10 // 2 + 1 = 6 is even


# ------------------------------------------------------------------------------ loading
def test_actnorm_initialised_by_loading(sht_ref):
    fresh = STGNF()
    assert not fresh.actnorm_initialized
    with pytest.raises(RuntimeError, match='ActNorm'):
        fresh.eval()(torch.zeros(1, 2, 24, 18))
    model = STGNF().load_official_checkpoint(str(SHT_CKPT))
    assert model.actnorm_initialized
    before = {k: v.clone() for k, v in model.state_dict().items() if 'actnorm' in k}
    model.train()
    with torch.no_grad():  # a training batch must not re-initialise the loaded ActNorm
        model(torch.from_numpy(sht_ref['segments'][:16]) * 5 + 2)
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_init_cfg_pretrained_matches_direct_load(sht_model, sht_ref, tmp_path):
    model = STGNF(init_cfg=dict(type='Pretrained', checkpoint=str(SHT_CKPT)))
    assert not model.actnorm_initialized
    model.init_weights()
    assert model.actnorm_initialized
    x = torch.from_numpy(sht_ref['segments'][:16])
    with torch.no_grad():
        z_ref, nll_ref = sht_model(x)
        z, nll = model.eval()(x)
    assert torch.equal(z, z_ref) and torch.equal(nll, nll_ref)

    # the same through the registry, with the weights nested under a prefix
    state = torch.load(SHT_CKPT, map_location='cpu', weights_only=False)['state_dict']
    nested = tmp_path / 'nested.pth'
    torch.save({'state_dict': {f'backbone.stgnf.{k}': v for k, v in state.items()}}, nested)
    from mmaction.registry import MODELS
    built = MODELS.build(dict(type='STGNF', init_cfg=dict(
        type='Pretrained', checkpoint=str(nested), prefix='backbone.stgnf.')))
    built.init_weights()
    with torch.no_grad():
        assert torch.equal(built.eval()(x)[1], nll_ref)


def test_key_mismatch_raises_with_key_names(tmp_path):
    state = torch.load(SHT_CKPT, map_location='cpu', weights_only=False)['state_dict']
    state = dict(state)
    state.pop('flow.layers.3.block.0.tcn.2.weight')
    state['flow.layers.3.extra.weight'] = torch.zeros(1)
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': state}, bad)
    with pytest.raises(RuntimeError) as err:
        STGNF().load_official_checkpoint(str(bad))
    assert 'flow.layers.3.block.0.tcn.2.weight' in str(err.value)
    assert 'flow.layers.3.extra.weight' in str(err.value)
    model = STGNF(init_cfg=dict(type='Pretrained', checkpoint=str(bad)))
    with pytest.raises(RuntimeError, match='flow.layers.3.block.0.tcn.2.weight'):
        model.init_weights()


def test_architecture_mismatch_raises():
    with pytest.raises(ValueError, match='seg_len'):
        STGNF().load_official_checkpoint(str(UB_CKPT))  # T = 16 checkpoint, T = 24 model
    with pytest.raises(ValueError, match='permutation'):
        STGNF(permutation='shuffle').load_official_checkpoint(str(SHT_CKPT))


# ------------------------------------------------------------------------------ fast paths
def _set_fast_paths(model: STGNF, enabled: bool) -> STGNF:
    """Switch the uniform-graph shortcut and the fused inference pass on or off."""
    model.flow.fused_inference = enabled
    for module in model.modules():
        if isinstance(module, STGCNBlock):
            module.uniform_shortcut = enabled
    return model


def _sht_windows(num: int) -> torch.Tensor:
    """``num`` windows like the fixture's: its 64 (x, y) windows, then jittered copies."""
    segments = torch.from_numpy(np.load(_ref('expected_sht.npz'))['segments'][:, :2])
    generator = torch.Generator().manual_seed(0)
    picks = torch.arange(num) % segments.shape[0]
    noise = 0.05 * torch.randn(num, *segments.shape[1:], generator=generator)
    noise[:segments.shape[0]] = 0
    return segments[picks] + noise


@pytest.mark.parametrize('num', [64, 600])  # one chunk; two chunks of 300
def test_fused_inference_matches_general_path(num, monkeypatch):
    """Official checkpoint, eval: the fused pass gives the step-by-step numbers."""
    monkeypatch.setattr(stgnf_fused, 'FUSED_CHUNK', 512)
    model = STGNF.from_official_checkpoint(str(_ref(SHT_CKPT.name))).eval()
    x = _sht_windows(num)
    with torch.no_grad():
        assert model.flow._fused_applies(x, model.adjacency)
        z, nll = model(x)
        z_general, nll_general = _set_fast_paths(model, False)(x)
    # The fused pass sums the coupling network's products in another order, so the latent (up to
    # about 7 in size) moves in its last bits: 2.4e-5 / 4.2e-5 at most for 64 / 600 windows on
    # one AMD EPYC machine, 0 on another. Both paths must stay within the reference tolerance.
    assert (z - z_general).abs().max() < TOL
    assert (nll - nll_general).abs().max() < 1e-5


def test_fused_inference_applies_only_where_it_is_exact():
    model = _small_model()
    x = torch.randn(16, 2, 8, 18)
    applies = model.flow._fused_applies
    with torch.no_grad():
        assert applies(x, model.adjacency)
        assert not applies(x[:15], model.adjacency)  # small batch: step by step
        model.flow.layers[1].block[0].tcn[0].train()
        assert not applies(x, model.adjacency)  # any module in training mode
        model.eval()
        assert not applies(x, torch.ones(1, 18, 18) + torch.eye(18))  # non-uniform graph
        assert not _small_model('inv1x1').flow._fused_applies(x, model.adjacency)
        assert not _small_model(hidden_channels=3).flow._fused_applies(x, model.adjacency)
        assert _small_model('shuffle').flow._fused_applies(x, model.adjacency)
    assert not applies(x, model.adjacency)  # autograd enabled


@pytest.mark.parametrize('permutation', ['reverse', 'shuffle'])
def test_fused_inference_small_model(permutation, monkeypatch):
    """Random weights, an odd number of steps (channels end swapped), a ragged last chunk."""
    monkeypatch.setattr(stgnf_fused, 'FUSED_CHUNK', 512)
    model = _small_model(permutation, seed=3)
    x = torch.randn(1100, 2, 8, 18) * 2 + 1  # chunks of 367, 367, 366
    with torch.no_grad():
        z, nll = model(x)
        z_general, nll_general = _set_fast_paths(model, False)(x)
    torch.testing.assert_close(z, z_general, atol=1e-5, rtol=0)
    torch.testing.assert_close(nll, nll_general, atol=1e-5, rtol=0)
    with torch.no_grad():  # and the inverse (step by step) undoes the fused forward
        torch.testing.assert_close(_set_fast_paths(model, True).reverse(z[:32]), x[:32],
                                   atol=TOL, rtol=0)


def test_uniform_shortcut_with_autograd_matches_general_path():
    """Official checkpoint, eval mode with gradients: same outputs and gradients."""
    results = []
    for enabled in (True, False):
        model = _set_fast_paths(STGNF.from_official_checkpoint(str(SHT_CKPT)).eval(), enabled)
        x = _sht_windows(8).requires_grad_(True)
        z, nll = model(x)
        (nll.sum() + 0.01 * z.square().sum()).backward()
        grads = {name: p.grad for name, p in model.named_parameters()}
        results.append((z.detach(), nll.detach(), x.grad, grads))
    (z, nll, grad_x, grads), (z_ref, nll_ref, grad_x_ref, grads_ref) = results
    assert (z - z_ref).abs().max() < 1e-5 and (nll - nll_ref).abs().max() < 1e-5
    torch.testing.assert_close(grad_x, grad_x_ref, atol=1e-5, rtol=1e-4)
    scale = max(g.abs().max() for g in grads_ref.values())
    for name, grad in grads.items():
        torch.testing.assert_close(grad, grads_ref[name], atol=1e-5 * scale, rtol=0, msg=name)


@pytest.mark.parametrize('hidden_channels', [0, 3])
@pytest.mark.parametrize('momentum', [0.1, None])
def test_uniform_shortcut_in_training_matches_general_path(hidden_channels, momentum):
    """Training mode (batch statistics), float64: outputs, gradients and BN running stats."""
    model = _small_model(seed=4, hidden_channels=hidden_channels).double().train()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = momentum
    general = _set_fast_paths(copy.deepcopy(model), False)
    x = torch.randn(12, 2, 8, 18, dtype=torch.float64)
    results = []
    for net in (model, general):
        x_in = x.clone().requires_grad_(True)
        for _ in range(2):  # two updates of the running statistics
            z, nll = net(x_in)
        (nll.sum() + 0.01 * z.square().sum()).backward()
        grads = {name: p.grad for name, p in net.named_parameters()}
        results.append((z.detach(), nll.detach(), x_in.grad, grads, net.state_dict()))
    (z, nll, grad_x, grads, state), (z_ref, nll_ref, grad_x_ref, grads_ref, state_ref) = results
    torch.testing.assert_close(z, z_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(nll, nll_ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(grad_x, grad_x_ref, atol=1e-10, rtol=0)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, grads_ref[name], atol=1e-8, rtol=1e-8, msg=name)
    for key, value in state.items():
        torch.testing.assert_close(value, state_ref[key], atol=1e-12, rtol=1e-12, msg=key)
    assert state['flow.layers.1.block.0.tcn.0.num_batches_tracked'] == 3  # init pass + 2


@pytest.mark.parametrize('strategy', ['distance', 'spatial'])
def test_non_uniform_graph_takes_the_general_path(strategy):
    model = _small_model(strategy=strategy, max_hop=2)
    x = torch.randn(20, 2, 8, 18)
    with torch.no_grad():
        assert not model.flow._fused_applies(x, model.adjacency)
        z, nll = model(x)
        z_general, nll_general = _set_fast_paths(model, False)(x)
    assert torch.equal(z, z_general) and torch.equal(nll, nll_general)
