"""The package imports, registers its components into mmaction's registries, and its shims work."""
import importlib
import sys

import numpy as np
import pytest
import torch

import mgenet_mm
from mgenet_mm import _compat
from mmaction.registry import METRICS, MODELS


def test_version_and_stack() -> None:
    assert mgenet_mm.__version__
    import mmcv
    import mmengine
    assert mmcv.__version__.startswith('2.1.')
    assert mmengine.__version__.startswith('0.10.')
    assert int(np.__version__.split('.')[0]) < 2  # requirements pin numpy<2, see _compat


def test_mmaction_models_import() -> None:
    # Fails on the mmaction2 1.2.0 wheel without the drn shim.
    models = importlib.import_module('mmaction.models')
    assert hasattr(models, 'Recognizer3D')


def test_drn_stub_is_narrow() -> None:
    module = sys.modules.get('mmaction.models.localizers.drn.drn')
    if not _compat.install_drn_stub() and module is not None and \
            getattr(module, '__file__', None) is None:
        with pytest.raises(ImportError, match='DRN is missing'):
            module.DRN()
    # A second call never replaces what is there.
    assert _compat.install_drn_stub() is False


def test_trusted_local_checkpoint_with_numpy_meta(tmp_path) -> None:
    """mmengine's loader refuses its own checkpoints under torch >= 2.6 without the shim."""
    from mmengine.runner.checkpoint import _load_checkpoint
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2)), meta=dict(seed=np.int64(3),
                                                                 arr=np.zeros(2))), path)
    checkpoint = _load_checkpoint(str(path), map_location='cpu')
    assert checkpoint['meta']['seed'] == 3
    assert torch.equal(checkpoint['state_dict']['w'], torch.ones(2))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        _load_checkpoint(str(tmp_path / 'missing.pth'))


# Component -> the issue that makes it real. Until then its check is an xfail, never a stub class.
REAL = {'STGNF': 3, 'SpaceTimeViT': 4, 'LSTAHead': 4, 'MemoryBank': 4, 'BSMM': 4,
        'MGENetRecognizer': 4}


@pytest.mark.parametrize('name', sorted(REAL))
def test_model_registered(name: str) -> None:
    if MODELS.get(name) is None:
        pytest.xfail(f'{name} is not implemented yet (issue #{REAL[name]})')
    assert MODELS.get(name).__module__.startswith('mgenet_mm.')


def test_metric_registered() -> None:
    if METRICS.get('VADAUCMetric') is None:
        pytest.xfail('VADAUCMetric is not implemented yet (issue #3)')
    assert METRICS.get('VADAUCMetric').__module__.startswith('mgenet_mm.')
