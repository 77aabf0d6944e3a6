"""Every shipped config parses and builds its model (weights are not loaded here)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401
from mmaction.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
TOP_LEVEL = sorted(p for folder in ('stgnf', 'mgenet') for p in (CONFIGS / folder).glob('*.py'))

init_default_scope('mmaction')


def test_every_top_config_is_listed() -> None:
    assert len(TOP_LEVEL) >= 18


@pytest.mark.parametrize('path', TOP_LEVEL, ids=lambda p: f'{p.parent.name}/{p.name}')
def test_config_builds_model(path: Path) -> None:
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmaction'
    assert 'mgenet_mm' in cfg.custom_imports['imports']
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    if path.parent.name == 'mgenet':
        evaluator = cfg.test_evaluator
        assert evaluator.type in ('VADAUCMetric', 'VADRegionMetric')
        # A calibrated model attaches standardised components: the metric must sum them as
        # they are; a paper-literal one needs the metric's min-max normalisation (eq. 16).
        calibrated = model.score_calibration is not None
        assert evaluator.get('normalize', True) is (not calibrated), path.name
        if calibrated:
            assert any(h.type == 'ScoreCalibrationHook' for h in cfg.custom_hooks)
        # The metric mixes exactly the components the model produces.
        expected = {'mo'} | ({'app'} if model.with_appearance else set()) | (
            {'mm'} if model.bsmm is not None else set())
        if 'level1' not in path.name:
            assert set(evaluator.score_weights) == expected
        assert model.token_grid[0] * 2 == model.guidance.seg_len
        tokens = torch.zeros(1, model.backbone.in_channels, *model.token_grid)
        if model.cube_embed is not None:
            clip = torch.zeros(1, 3, model.guidance.seg_len, 8 * model.token_grid[1],
                               8 * model.token_grid[2])
            assert tuple(model.cube_embed(clip).shape) == tuple(tokens.shape)
