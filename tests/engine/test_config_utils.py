"""merge_cfg_options: --cfg-options keys under unknown top-level names are refused."""
import pytest
from mmengine.config import Config

from mgenet_mm.engine.config_utils import RUNNER_KEYS, merge_cfg_options, unknown_cfg_option


def _cfg() -> Config:
    return Config(dict(test_evaluator=dict(type='VADAUCMetric', gt_dir='data/gt'),
                       model=dict(type='STGNFRecognizer')))


def test_misspelt_top_level_key_is_refused_with_a_suggestion() -> None:
    cfg = _cfg()
    with pytest.raises(ValueError) as error:
        merge_cfg_options(cfg, {'test_evaluater.gt_dir': '/nonexistent',
                                'model.backbone.seg_len': 12})
    assert str(error.value) == (
        "--cfg-options test_evaluater.gt_dir: the config has no top-level key 'test_evaluater' "
        "(did you mean 'test_evaluator'?); a misspelt key would be silently ignored. To add a "
        "new top-level key on purpose, prefix it with '+': +test_evaluater.gt_dir=...")
    # nothing merged, not even the valid key
    assert cfg.test_evaluator.gt_dir == 'data/gt' and 'backbone' not in cfg.model
    assert 'test_evaluater' not in cfg


def test_no_suggestion_when_nothing_is_close() -> None:
    message = unknown_cfg_option('zzz.q', ['model', 'test_evaluator'])
    assert message.startswith("--cfg-options zzz.q: the config has no top-level key 'zzz'; ")


def test_known_nested_runner_and_marked_new_keys_merge() -> None:
    cfg = _cfg()
    merge_cfg_options(cfg, {'test_evaluator.gt_dir': '/x', 'load_from': 'a.pth',
                            'allow_partial_checkpoint': True, '+my_note.text': 'hi'})
    assert cfg.test_evaluator.gt_dir == '/x'
    assert cfg.load_from == 'a.pth' and cfg.allow_partial_checkpoint is True
    assert cfg.my_note.text == 'hi' and '+my_note' not in cfg
    assert {'resume', 'launcher', 'randomness', 'model_wrapper_cfg'} <= RUNNER_KEYS
    merge_cfg_options(cfg, None)  # nothing given: nothing happens
    assert cfg.load_from == 'a.pth'
