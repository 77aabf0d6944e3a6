"""The mask-leak rows of tools/analysis/level_diagnostics.py: F_B tokens of clips masked in
pixels against the unmasked clip's, at visible and at masked positions."""
import math

import pytest
import torch

from tests.conftest import load_tool
from tests.models.recognizers.test_mgenet_pixel_masking import (NO_MIXING, WINDOWED, _inputs,
                                                                _model)

TOOL = load_tool('tools/analysis/level_diagnostics.py')


def test_token_change_by_hand() -> None:
    # one window, C = 2, grid (1, 1, 2): token 0 (3, 4) unchanged, token 1 (1, 0) -> (1, 1)
    unmasked = torch.tensor([[3., 1.], [4., 0.]]).reshape(1, 2, 1, 1, 2)
    masked = torch.tensor([[3., 1.], [4., 1.]]).reshape(1, 2, 1, 1, 2)
    change, cosine = TOOL.token_change(unmasked, masked, torch.tensor([[True, False]]))
    assert float(change) == 0. and float(cosine) == pytest.approx(1.)
    change, cosine = TOOL.token_change(unmasked, masked, torch.tensor([[False, True]]))
    assert float(change) == pytest.approx(1.)  # ||(0, 1)|| / ||(1, 0)||
    assert float(cosine) == pytest.approx(1 / math.sqrt(2))
    change, _ = TOOL.token_change(unmasked, masked, torch.tensor([[True, True]]))
    assert float(change) == pytest.approx(0.5)  # the mean over both tokens


@pytest.mark.parametrize('cube_embed, leaks', [(NO_MIXING, False), (WINDOWED, True)])
def test_level_tensors_measure_the_leak(cube_embed, leaks) -> None:
    model = _model(cube_embed=cube_embed).eval()
    tensors = TOOL.level_tensors(model, _inputs())
    report = TOOL.diagnostics(model, tensors)
    leak = report['features']['mask_leak']
    assert set(leak) == {'visible_change', 'visible_cosine', 'masked_change', 'masked_cosine'}
    assert report['features']['mask_input'] == 'tokens'
    # no cube mixing: the visible tokens do not move at all; windows of 2x2 cubes: they do
    if leaks:
        assert leak['visible_change'] > 1e-4 and leak['visible_cosine'] < 1.
    else:
        assert leak['visible_change'] == 0. and leak['visible_cosine'] == pytest.approx(1.)
    assert leak['masked_change'] > 1e-2 and leak['masked_cosine'] < 1.
    assert 'mask leak' in TOOL.format_report(dict(
        report, config='c', checkpoint='k', split='test', num_windows=3, num_available=3,
        seed=0, num_clips=1))
