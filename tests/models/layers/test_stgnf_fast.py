"""The folded ('fast') evaluation pass of the STG-NF flow against float64 and the reference."""
import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import mgenet_mm  # noqa: F401  registers the modules
from mgenet_mm.models.backbones.stgnf import STGNF
from mgenet_mm.models.layers import stgnf_fast

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get('MGENET_SHARED', REPO.parent / 'shared'))
REF = SHARED / 'fixtures' / 'stgnf_reference'


def _ref(name: str) -> Path:
    path = REF / name
    if not path.is_file():
        pytest.fail(f'reference file {path} is missing (set MGENET_SHARED)')
    return path


def _float64_step_by_step(model: STGNF, x: torch.Tensor):
    """The flow evaluated step by step in float64: the numbers both float32 passes round."""
    exact = copy.deepcopy(model).double()
    exact.flow.inference = 'exact'
    exact.flow.fused_inference = False
    with torch.no_grad():
        z, nll = exact(x.double())
    return z, nll


def _small_model(permutation: str = 'reverse', num_steps: int = 3, seed: int = 0,
                 **kwargs) -> STGNF:
    """A random model on short windows, ActNorm initialised, BN statistics non-trivial."""
    torch.manual_seed(seed)
    model = STGNF(seg_len=8, num_steps=num_steps, permutation=permutation, inference='fast',
                  **kwargs)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.5, 0.5)
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 2, 8, 18) * 2 + 1)  # data-dependent ActNorm init
    return model.eval()


@pytest.fixture(scope='module')
def sht_ref():
    return np.load(_ref('expected_sht.npz'))


@pytest.fixture(scope='module')
def sht_fast() -> STGNF:
    return STGNF.from_official_checkpoint(str(_ref('ShanghaiTech_85_9.tar')),
                                          inference='fast').eval()


def test_fast_pass_runs_and_is_closer_to_float64_than_float32_exact(sht_fast, sht_ref):
    x = torch.from_numpy(sht_ref['segments'][:, :2])
    with torch.no_grad():
        assert stgnf_fast.fast_flow_applies(sht_fast.flow.layers, x, sht_fast.adjacency)
        z, nll = sht_fast(x)
        sht_fast.flow.inference = 'exact'
        try:
            z_exact, _ = sht_fast(x)
        finally:
            sht_fast.flow.inference = 'fast'
    z64, nll64 = _float64_step_by_step(sht_fast, x)
    fast_error = (z.double() - z64).abs().max().item()
    exact_error = (z_exact.double() - z64).abs().max().item()
    # Measured: 3.0e-6 (fast) against 1.2e-4 (exact float32, as the official code rounds).
    assert fast_error < 2e-5 < exact_error
    assert (nll.double() - nll64).abs().max() < 2e-6
    assert not torch.equal(z, z_exact)  # it is another computation, not the exact pass


def test_fast_pass_matches_the_reference_numbers(sht_fast, sht_ref):
    """The stored official numbers: nll within the fixture's 1e-4; the latent within the
    official float32 pass's own distance from float64 (1.2e-4 on these windows) plus ours."""
    segments = torch.from_numpy(sht_ref['segments'])  # (64, 3, 24, 18), confidence ignored
    with torch.no_grad():
        z, nll = sht_fast(segments)
    z64, _ = _float64_step_by_step(sht_fast, segments[:, :2])
    reference_error = np.abs(sht_ref['latent'] - z64.numpy()).max()
    assert np.abs(nll.numpy() - sht_ref['nll'][:64]).max() < 1e-4
    assert np.abs(z.numpy() - sht_ref['latent']).max() < reference_error + 2e-5


def test_fast_pass_ubnormal_checkpoint():
    ref = np.load(_ref('expected_ubnormal_forward.npz'))
    model = STGNF.from_official_checkpoint(str(_ref('UBnormal_unsupervised_71_8.tar')),
                                           inference='fast').eval()
    x = torch.from_numpy(ref['inputs'])
    with torch.no_grad():
        z, nll = model(x)
    z64, nll64 = _float64_step_by_step(model, x)
    assert (z.double() - z64).abs().max() < 2e-5
    assert np.abs(nll.numpy() - ref['nll']).max() < 1e-4


@pytest.mark.parametrize('permutation,num_steps', [('reverse', 3), ('shuffle', 4),
                                                   ('reverse', 1)])
@pytest.mark.parametrize('batch', [1, 5, 1100])
def test_fast_pass_small_models(permutation, num_steps, batch, monkeypatch):
    """Random weights and BN statistics, odd and even step counts (channels end swapped or
    not), shuffled channels, one window, and ragged chunks (1100 windows in 367/367/366)."""
    monkeypatch.setattr(stgnf_fast, 'FAST_CHUNK', 512)
    model = _small_model(permutation, num_steps, seed=3)
    x = torch.randn(batch, 2, 8, 18) * 2 + 1
    with torch.no_grad():
        assert stgnf_fast.fast_flow_applies(model.flow.layers, x, model.adjacency)
        z, nll = model(x)
    z64, nll64 = _float64_step_by_step(model, x)
    torch.testing.assert_close(z.double(), z64, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(nll.double(), nll64, atol=1e-5, rtol=1e-6)


def test_fast_pass_applies_only_to_the_published_layout():
    model = _small_model()
    x = torch.randn(4, 2, 8, 18)
    applies = stgnf_fast.fast_flow_applies
    with torch.no_grad():
        assert applies(model.flow.layers, x, model.adjacency)
        non_uniform = torch.ones(1, 18, 18) + torch.eye(18)
        assert not applies(model.flow.layers, x, non_uniform)
        inv1x1 = _small_model('inv1x1')
        assert not applies(inv1x1.flow.layers, x, model.adjacency)
        hidden = _small_model(hidden_channels=3)
        assert not applies(hidden.flow.layers, x, model.adjacency)
        model.flow.layers[0].block[0].tcn[0].train()
        assert not applies(model.flow.layers, x, model.adjacency)  # a module in training
        model.eval()
    assert not applies(model.flow.layers, x, model.adjacency)  # autograd on
    # Where it does not apply the model still evaluates, step by step, with the same maths.
    with torch.no_grad():
        z, _ = hidden(x)
    torch.testing.assert_close(z.double(), _float64_step_by_step(hidden, x)[0], atol=1e-5,
                               rtol=1e-5)


def test_inference_option():
    with pytest.raises(ValueError, match="inference must be one of"):
        STGNF(inference='quick')
    exact, fast = STGNF(), STGNF(inference='fast')
    assert exact.flow.inference == 'exact'  # the default
    assert exact.state_dict().keys() == fast.state_dict().keys()
    assert 'inference' not in fast.architecture()
    # training is unaffected: autograd always runs step by step
    model = _small_model()
    model.train()
    x = torch.randn(4, 2, 8, 18)
    z, nll = model(x)
    nll.sum().backward()
    assert model.flow.layers[0].actnorm.bias.grad is not None


def test_plan_is_kept_until_a_weight_changes():
    model = _small_model()
    x = torch.randn(4, 2, 8, 18)
    with torch.no_grad():
        z_before, _ = model(x)
        plan = model.flow._fast_plan[1]
        model(x)
        assert model.flow._fast_plan[1] is plan  # reused
        model.flow.layers[1].block[0].residual[1].running_mean.add_(0.25)  # in place
        z_after, _ = model(x)
        assert model.flow._fast_plan[1] is not plan
        torch.testing.assert_close(z_after.double(), _float64_step_by_step(model, x)[0],
                                   atol=1e-5, rtol=1e-5)
        assert not torch.allclose(z_before, z_after)
        state = copy.deepcopy(model.state_dict())
        state['flow.layers.0.actnorm.bias'] += 1.0
        model.load_state_dict(state)
        torch.testing.assert_close(model(x)[0].double(), _float64_step_by_step(model, x)[0],
                                   atol=1e-5, rtol=1e-5)
    plan = stgnf_fast.fast_flow_plan(model.flow.layers, 8, model.adjacency)
    with pytest.raises(ValueError, match='plan is for windows of 8 frames, got 6'):
        stgnf_fast.fast_flow_forward(model.flow.layers, x[:, :, :6], model.adjacency, plan)
