"""Kill and resume: a training run SIGKILLed mid-epoch and resumed with ``--resume`` ends with the
same weights, optimizer state and test AUC as an uninterrupted run with the same seed.

Model: the STG-NF guidance config of the demo (``configs/stgnf/stgnf_demo.py``: Adamax,
ExponentialLR, random flip augmentation, ``AtomicCheckpointHook`` with ``max_keep_ckpts=1``,
``RandomStateHook``) on the ``tiny`` synthetic preset (``tools/data/make_synthetic.py``), batch 8,
4 epochs, ``--seed 0 --deterministic``, one CPU thread. The MGENet demo config is left out: its
frozen Swin/ResNet stages make one epoch on the tiny preset cost several times this test's whole
budget, and the resume path under test (mmengine's Runner, the checkpoint and random-state hooks,
the optimizer and scheduler state) is the same code for both.

The kill is deterministic: the test-only ``PauseAtIterHook`` (``tests/plugins/pause_plugin.py``)
parks the process after the optimizer step of an iteration in the middle of epoch 3 (so
``epoch_2.pth`` is the last checkpoint and part of epoch 3 is lost), then the test sends SIGKILL.

Comparison: ``torch.equal`` on every tensor (weights and Adamax state), and the AUC read from
``vad_results.json`` compared with ``==``: the same float32 operations run in the same order on
one thread, so the results are bit-identical, not merely close.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, run_tool

EPOCHS = 4
BATCH = 8


def _config(tmp: Path, data: Path) -> Path:
    config = tmp / 'stgnf_kill.py'
    config.write_text(f"""
_base_ = [{str(REPO / 'configs' / 'stgnf' / 'stgnf_demo.py')!r}]
custom_imports = dict(imports=['mgenet_mm', 'pause_plugin'], allow_failed_imports=False)
data_root = {str(data)!r}
train_cfg = dict(max_epochs={EPOCHS}, val_interval=100)
train_dataloader = dict(batch_size={BATCH}, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/gt/test_frame_mask',
                     kind_dir=data_root + '/gt/test_frame_kinds',
                     event_dir=data_root + '/gt/test_frame_events')
test_evaluator = val_evaluator
custom_hooks = [dict(type='PauseAtIterHook')]
""")
    return config


def _env(**extra: str) -> dict:
    env = dict(os.environ)
    # mgenet_mm comes from the checkout's .venv, as for a user; only the test plugins are added.
    env['PYTHONPATH'] = os.pathsep.join([str(REPO / 'tests' / 'plugins'),
                                         env.get('PYTHONPATH', '')])
    env['OMP_NUM_THREADS'] = '1'  # the same reduction order in every run
    env.update(extra)
    return env


def _train_args(config: Path, work_dir: Path, *extra: str) -> list:
    return [sys.executable, str(REPO / 'tools' / 'train.py'), str(config), '--work-dir',
            str(work_dir), '--seed', '0', '--deterministic', '--no-validate', *extra]


def _run(args: list, cwd: Path, timeout: int = 240) -> str:
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{args[1:]} exited {proc.returncode}\n{proc.stdout[-3000:]}\n'
                    f'{proc.stderr[-5000:]}')
    return proc.stdout + proc.stderr


def _auc(work_dir: Path) -> float:
    results = sorted(work_dir.glob('*/vad_results.json'))
    assert len(results) == 1, results
    return json.loads(results[0].read_text())['metrics']['micro_auc']


@pytest.mark.slow
def test_killed_mid_epoch_and_resumed_matches_uninterrupted(tmp_path: Path) -> None:
    data = tmp_path / 'syn'
    run_tool(str(REPO / 'tools' / 'data' / 'make_synthetic.py'), '--out', str(data),
             '--preset', 'tiny', '--quiet', cwd=tmp_path)
    config = _config(tmp_path, data)

    # 1. Uninterrupted.
    straight = tmp_path / 'straight'
    _run(_train_args(config, straight), tmp_path)
    final = torch.load(straight / f'epoch_{EPOCHS}.pth', map_location='cpu', weights_only=False)
    iters_per_epoch = final['meta']['iter'] // EPOCHS
    assert iters_per_epoch >= 3, final['meta']

    # 2. The same run, parked after an iteration in the middle of epoch 3, then SIGKILLed.
    killed = tmp_path / 'killed'
    pause_at = 2 * iters_per_epoch + iters_per_epoch // 2
    marker = tmp_path / 'paused'
    proc = subprocess.Popen(
        _train_args(config, killed), cwd=tmp_path,
        env=_env(MGENET_TEST_PAUSE_AT=str(pause_at), MGENET_TEST_PAUSE_MARKER=str(marker)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f'training ended before the pause: {proc.stderr.read()[-5000:]}')
            if time.monotonic() > deadline:
                pytest.fail('training never reached the pause')
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    epoch, done_iters, _ = (int(v) for v in marker.read_text().split())
    assert epoch == 2 and done_iters == pause_at  # 0-based epoch 2 = the third, mid-way
    assert (killed / 'last_checkpoint').read_text().strip() == str(killed / 'epoch_2.pth')
    assert sorted(p.name for p in killed.glob('*.pth')) == ['epoch_2.pth']  # max_keep_ckpts=1
    assert not (killed / 'epoch_3.pth').exists()

    # 3. Resume from the work dir's last checkpoint.
    log = _run(_train_args(config, killed, '--resume'), tmp_path)
    assert f'resumed epoch: 2, iter: {2 * iters_per_epoch}' in log, log[-3000:]
    assert 'restored the python, numpy and torch random states' in log
    resumed = torch.load(killed / f'epoch_{EPOCHS}.pth', map_location='cpu', weights_only=False)

    assert resumed['meta']['iter'] == final['meta']['iter']
    assert final['state_dict'].keys() == resumed['state_dict'].keys()
    for key, value in final['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
    for param_id, state in final['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value),
                               torch.as_tensor(resumed['optimizer']['state'][param_id][name])), \
                (param_id, name)
    assert final['param_schedulers'] == resumed['param_schedulers']

    # 4. The same AUC from tools/test.py.
    for run in (straight, killed):
        _run([sys.executable, str(REPO / 'tools' / 'test.py'), str(config),
              str(run / f'epoch_{EPOCHS}.pth'), '--work-dir', str(run / 'test')], tmp_path)
    assert _auc(straight / 'test') == _auc(killed / 'test')
