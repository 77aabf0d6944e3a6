"""tools/train.py, --resume and tools/test.py on a tiny registered model, end to end on CPU."""
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, run_tool

CONFIG = """
default_scope = 'mmaction'
custom_imports = dict(imports=['mgenet_mm', 'toy_plugin'], allow_failed_imports=False)
model = dict(type='ToyRegressor')
train_dataloader = dict(batch_size=4, num_workers=0, collate_fn=dict(type='default_collate'),
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type='ToyRegressionDataset', size=16))
test_dataloader = dict(batch_size=8, num_workers=0, collate_fn=dict(type='default_collate'),
                       sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=dict(type='ToyRegressionDataset', size=8, seed=1))
test_evaluator = dict(type='ToyMSEMetric')
test_cfg = dict(type='TestLoop')
train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters}, val_interval=1000)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False),
                     logger=dict(type='LoggerHook', interval=1))
log_level = 'INFO'
randomness = dict(seed=0)
"""


@pytest.mark.slow
def test_train_resume_and_test(tmp_path: Path) -> None:
    config = tmp_path / 'toy.py'
    config.write_text(CONFIG.format(max_iters=2))
    work_dir = tmp_path / 'work'
    run_tool(str(REPO / 'tools' / 'train.py'), str(config), '--work-dir', str(work_dir),
             cwd=tmp_path)
    checkpoint = work_dir / 'iter_2.pth'
    assert checkpoint.is_file()
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    assert state['meta']['iter'] == 2

    # Resume to 4 iterations: it must continue from iteration 2, not start again.
    config.write_text(CONFIG.format(max_iters=4))
    proc = run_tool(str(REPO / 'tools' / 'train.py'), str(config), '--work-dir', str(work_dir),
                    '--resume', cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 2' in log, log[-3000:]
    resumed = torch.load(work_dir / 'iter_4.pth', map_location='cpu', weights_only=False)
    assert resumed['meta']['iter'] == 4
    assert not torch.equal(resumed['state_dict']['linear.weight'],
                           state['state_dict']['linear.weight'])

    proc = run_tool(str(REPO / 'tools' / 'test.py'), str(config), str(work_dir / 'iter_4.pth'),
                    '--work-dir', str(tmp_path / 'test'), cwd=tmp_path)
    assert 'mse:' in proc.stdout + proc.stderr


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_misspelt_cfg_option_is_refused(tool: str, tmp_path: Path) -> None:
    """``--cfg-options test_evaluater.gt_dir=...`` was merged as a new key that nothing read."""
    import argparse

    from mmengine.config import Config

    from tests.conftest import load_tool
    module = load_tool(f'tools/{tool}.py')
    config = tmp_path / 'toy.py'
    # merge_args only: the toy plugin's classes are never built
    config.write_text(CONFIG.format(max_iters=2).replace(", 'toy_plugin'", ''))
    checkpoint = tmp_path / 'iter_2.pth'
    checkpoint.write_bytes(b'')
    common = dict(config=str(config), work_dir=str(tmp_path / 'work'), launcher='none',
                  allow_partial_checkpoint=False)
    extra = (dict(checkpoint=str(checkpoint), dump=None) if tool == 'test' else
             dict(no_validate=False, amp=False, resume=None, auto_scale_lr=False, seed=None,
                  diff_rank_seed=False, deterministic=False))

    def merge(options: dict) -> Config:
        args = argparse.Namespace(**common, **extra, cfg_options=options)
        return module.merge_args(Config.fromfile(str(config)), args)

    with pytest.raises(ValueError, match=r"no top-level key 'test_evaluater' \(did you mean "
                       r"'test_evaluator'\?\).*\+test_evaluater.gt_dir="):
        merge({'test_evaluater.gt_dir': '/nonexistent'})
    cfg = merge({'+test_evaluater.gt_dir': '/nonexistent', 'test_evaluator.type': 'Other'})
    assert cfg.test_evaluater.gt_dir == '/nonexistent'
    assert cfg.test_evaluator.type == 'Other'
