"""CheckedRunner: exclusive run folders, strict checkpoints for project models only, folders
given as checkpoints."""
import logging
import threading
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel

from mgenet_mm.engine import CheckedRunner
from mgenet_mm.fileio import make_unique_folder
from mgenet_mm.models.utils.checkpoint import StateDictMismatchError


class _OtherProjectModel(BaseModel):
    """A model of another project (defined outside mgenet_mm): mmengine's lenient loading."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.linear(inputs)


def _runner(work_dir: Path, model: nn.Module, **cfg) -> CheckedRunner:
    return CheckedRunner(model=model, work_dir=str(work_dir), cfg=Config(cfg))


def test_make_unique_folder_is_exclusive_under_a_race(tmp_path: Path) -> None:
    names, barrier = [], threading.Barrier(8)

    def claim() -> None:
        barrier.wait()  # all eight try the same name at the same moment
        names.append(make_unique_folder(str(tmp_path), '20240101_120000'))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = ['20240101_120000'] + [f'20240101_120000_{i}' for i in range(1, 8)]
    assert sorted(names) == sorted(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path: Path,
                                                                monkeypatch) -> None:
    import mmengine.runner.runner as mm_runner
    monkeypatch.setattr(mm_runner.time, 'time', lambda: 1_700_000_000.0)  # the same second
    first = _runner(tmp_path, _OtherProjectModel())
    second = _runner(tmp_path, _OtherProjectModel())
    assert second.timestamp == first.timestamp + '_1'
    assert first.log_dir != second.log_dir
    assert Path(second.log_dir) == tmp_path / second.timestamp
    # each run logs into its own file
    first.logger.info('first run')
    second.logger.info('second run')
    first_log = Path(first.log_dir) / f'{first.timestamp}.log'
    second_log = Path(second.log_dir) / f'{second.timestamp}.log'
    assert 'first run' in first_log.read_text() and 'second run' not in first_log.read_text()
    assert 'second run' in second_log.read_text()


def test_other_projects_models_keep_mmengine_loading(tmp_path: Path) -> None:
    model = _OtherProjectModel()
    path = tmp_path / 'partial.pth'
    torch.save(dict(state_dict={'linear.weight': torch.ones(1, 2)}), path)  # no bias
    _runner(tmp_path / 'work', model).load_checkpoint(str(path))
    assert torch.equal(model.linear.weight, torch.ones(1, 2))


def test_checkpoint_path_that_is_a_folder_is_named(tmp_path: Path) -> None:
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'epoch_1.pth').write_bytes(b'')
    (run / 'epoch_2.pth').write_bytes(b'')
    (run / 'last_checkpoint').write_text(str(run / 'epoch_2.pth'))
    runner = _runner(tmp_path / 'work', _OtherProjectModel())
    with pytest.raises(IsADirectoryError, match=r'checkpoint .*run is a folder, not a checkpoint '
                       r'file \(it holds 2 checkpoint files: epoch_1.pth, epoch_2.pth; its '
                       r'last_checkpoint names .*epoch_2.pth\)'):
        runner.load_checkpoint(str(run))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(IsADirectoryError, match='holds no .pth/.pt/.tar/.ckpt file'):
        runner.load_checkpoint(str(empty))


def test_project_model_refuses_a_partial_checkpoint_unless_allowed(tmp_path: Path) -> None:
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    model, fresh = (MODELS.build(dict(type='STGNFRecognizer',  # before a runner sets its scope
                                      backbone=dict(type='STGNF', seg_len=8, num_steps=2)))
                    for _ in range(2))
    state = {k: v + 1 for k, v in model.state_dict().items() if 'prior' not in k}
    path = tmp_path / 'no_prior.pth'
    torch.save(dict(state_dict=state), path)
    with pytest.raises(StateDictMismatchError, match=r'no_prior.pth does not match the model '
                       r'STGNFRecognizer: 3 of the model\'s \d+ keys missing'):
        _runner(tmp_path / 'a', model).load_checkpoint(str(path))
    _runner(tmp_path / 'b', fresh, allow_partial_checkpoint=True).load_checkpoint(str(path))
    loaded = fresh.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_environment_log_reads_torchvision_version_without_importing_it(tmp_path: Path,
                                                                         monkeypatch) -> None:
    import sys

    import torchvision

    from mgenet_mm.engine.runner import _torchvision_version, torchvision_version_only
    real = torchvision.__version__
    assert _torchvision_version() == real  # read from version.py, local build tag included
    with torchvision_version_only():  # imported already: the real package
        assert sys.modules['torchvision'] is torchvision
    monkeypatch.delitem(sys.modules, 'torchvision')  # as in a run that never imported it
    with torchvision_version_only():
        import torchvision as stand_in
        assert stand_in is not torchvision and stand_in.__version__ == real
        assert not hasattr(stand_in, 'ops')
    assert 'torchvision' not in sys.modules  # a later import gets the real package
    runner = _runner(tmp_path, _OtherProjectModel())
    assert 'torchvision' not in sys.modules
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)
    try:
        runner._log_env(dict(cudnn_benchmark=False))  # what the runner logged when built
    finally:
        runner.logger.removeHandler(handler)
    log = '\n'.join(record.getMessage() for record in records)
    assert f'TorchVision: {real}\n' in log and 'MMEngine: ' in log
    assert 'torchvision' not in sys.modules


def test_test_leaves_what_exists_before_it_out_of_full_collections(tmp_path: Path,
                                                                    monkeypatch) -> None:
    import gc

    from mmengine.runner import Runner
    runner = _runner(tmp_path, _OtherProjectModel())
    monkeypatch.setattr(Runner, 'test', lambda self: dict(frozen=gc.get_freeze_count()))
    assert gc.get_freeze_count() == 0
    assert runner.test()['frozen'] > 1000  # the modules, the model ... frozen during the test
    assert gc.get_freeze_count() == 0  # and handed back afterwards

    def failing_test(self):
        raise RuntimeError('test loop failed')

    monkeypatch.setattr(Runner, 'test', failing_test)
    with pytest.raises(RuntimeError, match='test loop failed'):
        runner.test()
    assert gc.get_freeze_count() == 0
