"""MGENetRecognizer(bsmm_behaviour='guidance'): the BSMM stores W_g of f_sk instead of W_b."""
import pytest
import torch
from mmengine.optim import OptimWrapper

from tests.conftest import load_tool
from tests.models.recognizers.test_mgenet_recognizer import T, TINY, _batch, _build

GUIDED = dict(bsmm_behaviour='guidance',
              guidance_memory=dict(type='MemoryBank', num_items=5, temperature=0.5))


def _inputs(model, training: bool = False):
    data = model.data_preprocessor(_batch(), training)
    return data['inputs'], data['data_samples']


def test_guidance_memory_width_and_bsmm_length() -> None:
    model = _build(**GUIDED)
    # f_sk rows T = t * frames_per_step, C_mo = the motion head's out_channels
    assert model.guidance_memory.dim == TINY['motion_head']['out_channels']
    assert model.bsmm.behaviour_len == T * 5
    paper = _build()
    assert paper.guidance_memory is None
    assert paper.bsmm.behaviour_len == 4 * 4 * 4 * TINY['behaviour_memory']['num_items']


def test_training_step_writes_f_sk_into_the_guidance_memory() -> None:
    model = _build(**GUIDED)
    before = model.guidance_memory.items.clone()
    inputs, samples = _inputs(model, True)
    f_sk = model.guidance_features(inputs['pose'])
    expected = model.guidance_memory.__class__(
        5, f_sk.shape[-1], temperature=0.5)
    expected.items.copy_(before)
    expected.update(f_sk)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    model.train_step(_batch(), wrapper)
    assert not torch.equal(before, model.guidance_memory.items)
    torch.testing.assert_close(model.guidance_memory.items, expected.items)


def test_write_and_score_read_w_g_of_f_sk() -> None:
    model = _build(**GUIDED).eval()
    inputs, _ = _inputs(model)
    w_b, w_s = model.bsmm_weights(inputs)
    f_sk = model.guidance_features(inputs['pose'])
    torch.testing.assert_close(w_b, model.guidance_memory.address(f_sk))
    assert w_b.shape == (3, T, 5)
    model.write_bsmm(inputs)
    scores = model.anomaly_components(inputs)['mm']
    torch.testing.assert_close(scores, model.bsmm.score(model.guidance_memory.address(f_sk),
                                                        w_s))
    # the RGB tokens no longer reach S_mm: other tokens, same poses and scenes, same S_mm
    other = dict(inputs, tokens=torch.randn_like(inputs['tokens']))
    torch.testing.assert_close(model.anomaly_components(other)['mm'], scores)


def test_rgb_default_still_reads_w_b_of_e_b() -> None:
    model = _build().eval()
    inputs, _ = _inputs(model)
    model.write_bsmm(inputs)
    e_b = model.backbone(inputs['tokens'])
    w_s = model.scene_memory.address(inputs['scene_feat'][:, None])
    torch.testing.assert_close(model.anomaly_components(inputs)['mm'],
                               model.bsmm.score(model.behaviour_memory.address(e_b), w_s))


@pytest.mark.parametrize('overrides, match', [
    (dict(bsmm_behaviour='pose'), 'bsmm_behaviour must be one of'),
    (dict(bsmm_behaviour='guidance'), 'set both'),
    (dict(guidance_memory=dict(type='MemoryBank', num_items=5)), 'set both'),
    (dict(GUIDED, bsmm=None), 'has no bsmm'),
])
def test_bad_bsmm_behaviour_settings(overrides, match) -> None:
    with pytest.raises(ValueError, match=match):
        _build(**overrides)


def test_level_diagnostics_report_the_weights_the_bsmm_reads() -> None:
    tool = load_tool('tools/analysis/level_diagnostics.py')
    model = _build(**GUIDED).eval()
    inputs, _ = _inputs(model)
    model.write_bsmm(inputs)
    with torch.no_grad():
        tensors = tool.level_tensors(model, inputs)
    assert tensors['w_g'].shape == (3, T, 5)
    torch.testing.assert_close(model.bsmm.score(tensors['w_g'], tensors['w_s']),
                               model.anomaly_components(inputs)['mm'])
    report = tool.diagnostics(model, tensors)
    assert report['addressing']['w_g']['temperature'] == 0.5
