"""Checkpoint trust (``mgenet_mm.utils.checkpoint_trust``): weights-only loading with a short
allowlist by default, full unpickling only with ``--trust-checkpoint`` /
``MGENET_TRUST_CHECKPOINTS=1`` / ``trust_checkpoints()``."""
import argparse
import os
import pickle
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from mgenet_mm.utils import checkpoint_trust
from mgenet_mm.utils import (TRUST_ENV, UntrustedCheckpointError, set_checkpoint_trust,
                             trust_checkpoints)
from tests.conftest import REPO, load_tool, run_tool


class _Payload:
    """Unpickling it runs code: it creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


def _evil_checkpoint(tmp_path: Path) -> tuple:
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=OrderedDict(w=torch.ones(2)), meta=dict(x=_Payload(marker))), path)
    return path, marker


@pytest.fixture(autouse=True)
def default_trust(monkeypatch):
    """Every test starts from the default (no override, no environment variable)."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    set_checkpoint_trust(None)
    yield
    set_checkpoint_trust(None)


def test_untrusted_checkpoint_is_refused_without_the_flag(tmp_path: Path) -> None:
    path, marker = _evil_checkpoint(tmp_path)
    # mmengine's loader (load_from, --resume, init_cfg=Pretrained, mmpose/mmdet init) ...
    with pytest.raises(UntrustedCheckpointError) as error:
        _load_checkpoint(str(path), map_location='cpu')
    message = str(error.value)
    assert str(path) in message and 'GLOBAL exec was not an allowed global' in message
    assert '--trust-checkpoint' in message and f'{TRUST_ENV}=1' in message
    assert 'trust_checkpoints()' in message
    # ... and the project's own reader (STG-NF official checkpoints)
    from mgenet_mm.models.model_converters.stgnf_converter import read_stgnf_checkpoint
    with pytest.raises(UntrustedCheckpointError, match='evil.pth'):
        read_stgnf_checkpoint(str(path))
    assert isinstance(error.value, pickle.UnpicklingError)
    assert not marker.exists()


@pytest.mark.parametrize('how', ['context', 'setter', 'environment'])
def test_untrusted_checkpoint_loads_with_trust(tmp_path: Path, monkeypatch, how: str) -> None:
    path, marker = _evil_checkpoint(tmp_path)
    if how == 'context':
        with trust_checkpoints():
            checkpoint = _load_checkpoint(str(path), map_location='cpu')
        assert not checkpoint_trust.checkpoint_trust_enabled()  # restored on exit
    elif how == 'setter':
        set_checkpoint_trust(True)
        checkpoint = _load_checkpoint(str(path), map_location='cpu')
    else:
        monkeypatch.setenv(TRUST_ENV, '1')
        checkpoint = _load_checkpoint(str(path), map_location='cpu')
    assert marker.exists()  # full unpickling ran the payload, as asked
    assert torch.equal(checkpoint['state_dict']['w'], torch.ones(2))


def test_explicit_refusal_overrides_the_environment(tmp_path: Path, monkeypatch) -> None:
    path, marker = _evil_checkpoint(tmp_path)
    monkeypatch.setenv(TRUST_ENV, '1')
    with trust_checkpoints(False):
        with pytest.raises(UntrustedCheckpointError):
            _load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def _mmengine_like_checkpoint() -> dict:
    """What Runner.save_checkpoint stores: weights, meta with numpy scalars, the message hub's
    HistoryBuffers and runtime info, optimizer and scheduler states."""
    hub = MessageHub.get_instance('checkpoint_trust_test')
    for step in range(3):
        hub.update_scalar('train/loss', 1.0 / (step + 1))
    hub.update_info('eta', np.float64(12.5))
    hub.update_info('keep_ckpt_ids', [1, 2])
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adamax(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.99)
    return dict(meta=dict(epoch=1, iter=3, seed=np.int64(0), cfg='model = dict()',
                          dataset_meta=dict(classes=('a', 'b'), sigmas=np.ones(17) * 0.1,
                                            flip=[[1, 2]], dtype=np.dtype('float32'))),
                state_dict=model.state_dict(), message_hub=hub.state_dict(),
                optimizer=optimizer.state_dict(), param_schedulers=[scheduler.state_dict()],
                random_state=dict(python=__import__('random').getstate(),
                                  numpy=np.random.get_state(), torch=torch.get_rng_state()))


def test_mmengine_checkpoints_load_without_the_flag(tmp_path: Path) -> None:
    path = tmp_path / 'epoch_1.pth'
    saved = _mmengine_like_checkpoint()
    torch.save(saved, path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert loaded['meta']['seed'] == 0 and loaded['meta']['dataset_meta']['sigmas'].shape == (17, )
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.statistics('mean') == pytest.approx(
        (1 + 1 / 2 + 1 / 3) / 3)
    assert loaded['message_hub']['runtime_info']['eta'] == 12.5
    assert torch.equal(loaded['optimizer']['state'][0]['exp_avg'],
                       saved['optimizer']['state'][0]['exp_avg'])
    assert loaded['random_state']['numpy'][0] == 'MT19937'


def test_official_stgnf_checkpoints_load_without_the_flag(fixtures_dir: Path) -> None:
    from mgenet_mm.models.backbones import STGNF
    for name in ('ShanghaiTech_85_9.tar', 'UBnormal_unsupervised_71_8.tar'):
        path = fixtures_dir / 'stgnf_reference' / name
        checkpoint = _load_checkpoint(str(path), map_location='cpu')
        assert isinstance(checkpoint['args'], argparse.Namespace)
        assert STGNF.from_official_checkpoint(str(path)).actnorm_initialized


def test_getattr_is_answered_only_for_history_buffer_statistics(tmp_path: Path) -> None:
    """mmengine's pickles call getattr(HistoryBuffer, 'min'); any other getattr is refused."""
    path = tmp_path / 'getattr.pth'
    torch.save(dict(fn=HistoryBuffer.update), path)  # pickled as getattr(HistoryBuffer, 'update')
    with pytest.raises(UntrustedCheckpointError, match="getattr.*'update'"):
        _load_checkpoint(str(path), map_location='cpu')


def test_history_buffer_statistics_cannot_be_replaced(tmp_path: Path) -> None:
    """HistoryBuffer.__setstate__ merges the file's statistics into a class-level table that
    mmengine's logger calls: a file may not put other (allowlisted) callables there."""
    buffer = HistoryBuffer([1.0], [1])
    path, later_refused = tmp_path / 'statistics.pth', tmp_path / 'statistics_then_code.pth'
    original = dict(HistoryBuffer._statistics_methods)
    HistoryBuffer._statistics_methods['mean'] = OrderedDict  # pickled by __getstate__
    try:
        torch.save(dict(message_hub=dict(log_scalars=dict(loss=buffer))), path)
        torch.save(dict(message_hub=dict(log_scalars=dict(loss=buffer)),
                        meta=_Payload(tmp_path / 'marker')), later_refused)
    finally:
        HistoryBuffer._statistics_methods.clear()
        HistoryBuffer._statistics_methods.update(original)
    with pytest.raises(UntrustedCheckpointError, match="statistics \\['mean'\\]"):
        _load_checkpoint(str(path), map_location='cpu')
    assert HistoryBuffer._statistics_methods == original
    # refused for another reason after the buffer was built: the table is put back as well
    with pytest.raises(UntrustedCheckpointError, match='GLOBAL exec'):
        _load_checkpoint(str(later_refused), map_location='cpu')
    assert HistoryBuffer._statistics_methods == original


def test_damaged_and_missing_checkpoints_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / 'truncated.pth'
    torch.save(_mmengine_like_checkpoint(), path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(RuntimeError, match='truncated.pth: cannot load the checkpoint'):
        _load_checkpoint(str(path), map_location='cpu')
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(RuntimeError, match='empty.pth: cannot load the checkpoint'):
        _load_checkpoint(str(tmp_path / 'empty.pth'), map_location='cpu')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        _load_checkpoint(str(tmp_path / 'missing.pth'))


def test_downloaded_checkpoints_follow_the_same_policy(tmp_path: Path, monkeypatch) -> None:
    """http(s) checkpoints are read from torch's hub cache under the same policy (torch's own
    hub loader defaults to full unpickling); no network: the file is already cached."""
    hub = tmp_path / 'hub'
    (hub / 'checkpoints').mkdir(parents=True)
    path, marker = _evil_checkpoint(tmp_path)
    os.replace(path, hub / 'checkpoints' / 'evil.pth')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))
    url = 'https://download.invalid/evil.pth'
    with pytest.raises(UntrustedCheckpointError, match='https://download.invalid/evil.pth'):
        CheckpointLoader.load_checkpoint(url, map_location='cpu')
    from mmengine.runner import checkpoint as mm_checkpoint
    with pytest.raises(UntrustedCheckpointError):  # what open-mmlab:// and torchvision:// call
        mm_checkpoint.load_from_http(url, map_location='cpu')
    assert not marker.exists()
    with trust_checkpoints():
        CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert marker.exists()


def _load_script(relative: str):
    return load_tool(relative)


@pytest.mark.parametrize('tool,argv', [
    ('tools/train.py', ['cfg.py']),
    ('tools/test.py', ['cfg.py', 'ckpt.pth']),
    ('tools/data/extract_features.py', ['cfg.py']),
    ('tools/data/extract_poses.py', ['video.mp4', '--out-dir', 'out']),
])
def test_tools_take_the_flag(tool: str, argv: list, monkeypatch) -> None:
    module = _load_script(tool)
    monkeypatch.setattr(sys, 'argv', [tool, *argv, '--trust-checkpoint'])
    try:
        args = module.parse_args(argv + ['--trust-checkpoint'])
    except TypeError:  # train.py and test.py read sys.argv
        args = module.parse_args()
    assert args.trust_checkpoint is True
    with checkpoint_trust.trust_from_args(args):
        assert checkpoint_trust.checkpoint_trust_enabled() and os.environ[TRUST_ENV] == '1'
    assert not checkpoint_trust.checkpoint_trust_enabled() and TRUST_ENV not in os.environ


TOY_CONFIG = """
default_scope = 'mmaction'
custom_imports = dict(imports=['mgenet_mm', 'toy_plugin'], allow_failed_imports=False)
model = dict(type='ToyRegressor')
test_dataloader = dict(batch_size=8, num_workers=0, collate_fn=dict(type='default_collate'),
                       sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=dict(type='ToyRegressionDataset', size=8, seed=1))
test_evaluator = dict(type='ToyMSEMetric')
test_cfg = dict(type='TestLoop')
"""


@pytest.mark.slow
def test_test_tool_refuses_then_trusts(tmp_path: Path) -> None:
    """``tools/test.py`` end to end: refused with a clear message, then loaded with the flag."""
    import subprocess
    path, marker = _evil_checkpoint(tmp_path)
    config = tmp_path / 'toy.py'
    config.write_text(TOY_CONFIG)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO / 'tests' / 'plugins'), os.environ.get('PYTHONPATH', '')]))
    env.pop(TRUST_ENV, None)
    args = [sys.executable, str(REPO / 'tools' / 'test.py'), str(config), str(path),
            '--work-dir', str(tmp_path / 'work')]
    refused = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode != 0
    last = refused.stderr.strip().splitlines()[-1]
    assert 'UntrustedCheckpointError' in last and str(path) in last, refused.stderr[-3000:]
    assert '--trust-checkpoint' in last
    assert not marker.exists()
    trusted = run_tool(*args[1:], '--trust-checkpoint', cwd=tmp_path)
    assert marker.exists() and 'mse:' in trusted.stdout + trusted.stderr
