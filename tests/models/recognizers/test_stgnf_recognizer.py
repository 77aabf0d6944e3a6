"""STGNFRecognizer: official checkpoints through the runner's loader, train/test steps, and
tools/test.py on the reference fixture."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint

from mgenet_mm.models.backbones import STGNF
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from tests.conftest import REPO, run_tool

init_default_scope('mmaction')


def _recognizer(seg_len: int = 24):
    return MODELS.build(dict(type='STGNFRecognizer',
                             backbone=dict(type='STGNF', seg_len=seg_len)))


def test_official_checkpoint_through_mmengine_loader(fixtures_dir: Path) -> None:
    path = str(fixtures_dir / 'stgnf_reference' / 'ShanghaiTech_85_9.tar')
    reference = np.load(fixtures_dir / 'stgnf_reference' / 'expected_sht.npz')
    model = _recognizer().eval()
    load_checkpoint(model, path, map_location='cpu', strict=True)
    assert model.backbone.actnorm_initialized
    windows = torch.from_numpy(reference['segments']).permute(0, 2, 3, 1)  # -> (B, T, V, C)
    with torch.no_grad():
        (latent, nll), _ = model.extract_feat(windows)
    np.testing.assert_allclose(latent.numpy(), reference['latent'], atol=1e-4, rtol=0)
    np.testing.assert_allclose(nll.numpy(), reference['nll'][:64], atol=1e-4, rtol=0)


def test_official_checkpoint_mismatch_is_an_error(fixtures_dir: Path) -> None:
    path = str(fixtures_dir / 'stgnf_reference' / 'UBnormal_unsupervised_71_8.tar')
    with pytest.raises(RuntimeError, match='shape mismatches .*prior_h'):
        load_checkpoint(_recognizer(seg_len=24), path, map_location='cpu')


def test_train_and_test_step() -> None:
    torch.manual_seed(0)
    model = _recognizer(seg_len=8)
    windows = [torch.randn(8, 18, 3) for _ in range(4)]
    samples = [ActionDataSample(metainfo=dict(clip_name='c', person_id=i, start_frame=0))
               for i in range(4)]
    optimizer = torch.optim.Adamax(model.parameters(), lr=5e-4)
    from mmengine.optim import OptimWrapper
    wrapper = OptimWrapper(optimizer)
    before = [p.detach().clone() for p in model.parameters()]
    losses = model.train_step(dict(inputs=windows, data_samples=samples), wrapper)
    assert torch.isfinite(losses['loss_nll'])
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    model.eval()
    outputs = model.test_step(dict(inputs=windows, data_samples=samples))
    assert len(outputs) == 4
    with torch.no_grad():
        _, nll = model.backbone(torch.stack(windows).permute(0, 3, 1, 2))
    assert all(float(o.anomaly_scores['nll']) == pytest.approx(float(n), rel=1e-6)
               for o, n in zip(outputs, nll))


@pytest.mark.slow
def test_tools_test_reproduces_reference(fixtures_dir: Path, tmp_path: Path) -> None:
    reference = np.load(fixtures_dir / 'stgnf_reference' / 'expected_sht.npz')
    proc = run_tool(str(REPO / 'tools' / 'test.py'),
                    str(REPO / 'configs' / 'stgnf' / 'stgnf_sht_fixture.py'),
                    str(fixtures_dir / 'stgnf_reference' / 'ShanghaiTech_85_9.tar'),
                    '--work-dir', str(tmp_path), cwd=tmp_path)
    assert 'vad/micro_auc: 0.7640' in proc.stdout + proc.stderr
    results = list(tmp_path.glob('*/vad_results.json'))
    assert len(results) == 1 and (results[0].parent / 'vad_frame_scores.npz').is_file()
    auc = json.loads(results[0].read_text())['metrics']['micro_auc']
    # The model's float32 nll differs from the reference by < 1e-4, which moves the AUC by a few
    # 1e-6; the metric alone reproduces the reference AUC to 1e-6 (tests/evaluation).
    assert abs(auc - float(reference['auc'])) < 2e-5


def _failing_tool(*args: str, cwd: Path):
    """Run a tool that must fail; returns the process (stderr holds the traceback)."""
    import os
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, proc.stdout[-3000:]
    return proc


def _checked_runner(tmp_path: Path, model, **cfg):
    from mmengine.config import Config

    from mgenet_mm.engine import CheckedRunner
    return CheckedRunner(model=model, work_dir=str(tmp_path / 'work'), cfg=Config(cfg))


def test_checkpoint_missing_a_coupling_block_is_an_error(tmp_path: Path) -> None:
    from mgenet_mm.models.utils.checkpoint import StateDictMismatchError
    model, partial = _recognizer(seg_len=8), _recognizer(seg_len=8)  # built before any runner
    state = model.state_dict()
    block = [k for k in state if k.startswith('backbone.flow.layers.1.block.')]
    assert len(block) > 10  # enough to see the listing cut
    path = tmp_path / 'epoch_5.pth'
    torch.save(dict(state_dict={k: v for k, v in state.items() if k not in block},
                    meta=dict(epoch=5)), path)
    with pytest.raises(StateDictMismatchError) as error:
        _checked_runner(tmp_path, _recognizer(seg_len=8)).load_checkpoint(str(path))
    lines = str(error.value).splitlines()
    required = [k for k in block if not k.endswith('num_batches_tracked')]
    assert lines[0] == (f'checkpoint {path} does not match the model STGNFRecognizer: '
                        f'{len(required)} of the model\'s {len(state)} keys missing, 0 '
                        'unexpected keys, 0 shape mismatches')
    assert lines[1].startswith(f'  {len(required)} missing keys ({required[0]}, ')
    assert lines[1].endswith(', ...)')
    assert 'allow_partial_checkpoint=True' in lines[-1]
    # the named opt-in loads what fits and warns
    _checked_runner(tmp_path, partial, allow_partial_checkpoint=True).load_checkpoint(str(path))
    assert torch.equal(partial.state_dict()['backbone.flow.layers.0.actnorm.logs'],
                       state['backbone.flow.layers.0.actnorm.logs'])


def test_checkpoint_of_another_model_names_its_keys(tmp_path: Path) -> None:
    """An MGENet checkpoint (or unrelated keys) into an STG-NF config: not "ActNorm is not
    initialised" at the first window, but the keys that do not match, before any data."""
    from mmengine.config import Config

    from mgenet_mm.models.utils.checkpoint import StateDictMismatchError
    model = _recognizer(seg_len=8)
    # what mmengine's runner stores: the state dict and the config's text under meta['cfg']
    mgenet_cfg = Config(dict(model=dict(type='MGENetRecognizer', sep_loss_weight=0.1,
                                        backbone=dict(type='SpaceTimeViT'))))
    mgenet = tmp_path / 'mgenet_epoch_3.pth'
    torch.save(dict(meta=dict(cfg=mgenet_cfg.pretty_text), state_dict={
        'backbone.patch_embed.weight': torch.zeros(2), 'behaviour_memory.items': torch.zeros(2),
        'guidance.flow.layers.0.actnorm.bias': torch.zeros(2)}), mgenet)
    runner = _checked_runner(tmp_path, model)
    with pytest.raises(StateDictMismatchError) as error:
        runner.load_checkpoint(str(mgenet))
    lines = str(error.value).splitlines()
    assert lines[0] == (f'checkpoint {mgenet} does not match the model STGNFRecognizer: none of '
                        f'its 3 keys is a key of the model ({len(model.state_dict())} keys)')
    assert ('  3 unexpected keys (backbone.patch_embed.weight, behaviour_memory.items, '
            'guidance.flow.layers.0.actnorm.bias)') in lines
    assert '  it looks like a MGENetRecognizer checkpoint (model type in its meta config)' in lines
    unrelated = tmp_path / 'unrelated.pth'
    torch.save({'encoder.weight': torch.zeros(2), 'decoder.bias': torch.zeros(2)}, unrelated)
    with pytest.raises(StateDictMismatchError,
                       match='it looks like a checkpoint whose keys start with decoder, encoder'):
        runner.load_checkpoint(str(unrelated))


@pytest.mark.slow
def test_tools_test_refuses_a_partial_checkpoint(fixtures_dir: Path, tmp_path: Path) -> None:
    """The issue's case end to end: exit 0 with AUC 0.8055 before, now an error naming keys."""
    model = _recognizer()
    load_checkpoint(model, str(fixtures_dir / 'stgnf_reference' / 'ShanghaiTech_85_9.tar'),
                    map_location='cpu', strict=True)
    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith('backbone.flow.layers.3.block.')}
    path = tmp_path / 'epoch_1.pth'
    torch.save(dict(state_dict=state), path)
    config = str(REPO / 'configs' / 'stgnf' / 'stgnf_sht_fixture.py')
    proc = _failing_tool(str(REPO / 'tools' / 'test.py'), config, str(path), '--work-dir',
                         str(tmp_path / 'work'), cwd=tmp_path)
    assert (f'StateDictMismatchError: checkpoint {path} does not match the model '
            'STGNFRecognizer:') in proc.stderr, proc.stderr[-3000:]
    assert 'backbone.flow.layers.3.block.0' in proc.stderr
    assert not list((tmp_path / 'work').glob('*/vad_results.json'))
    proc = _failing_tool(str(REPO / 'tools' / 'test.py'), config, str(tmp_path), '--work-dir',
                         str(tmp_path / 'work'), cwd=tmp_path)
    assert f'checkpoint {tmp_path} is a folder, not a checkpoint file (it holds 1 checkpoint ' \
           'files: epoch_1.pth)' in proc.stderr, proc.stderr[-3000:]
