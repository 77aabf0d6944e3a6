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


# A pose-only run imports neither mmdet nor mmpose; everything still registers. In a fresh
# interpreter each, since this one has imported mmdet (or not) already.
_REGISTRATION_PROBE = '''
import json, os, sys
import mgenet_mm
from mmengine.registry import FUNCTIONS
from mmaction.registry import DATASETS, METRICS, MODELS, TRANSFORMS
found = dict(models=[n for n in ('STGNFRecognizer', 'STGNF', 'MGENetRecognizer')
                     if MODELS.get(n) is not None],
             datasets=[n for n in ('PoseWindowDataset', 'MGENetWindowDataset')
                       if DATASETS.get(n) is not None],
             transforms=[n for n in ('NormalizePoseWindow', 'PackMGENetInputs',
                                     'PackActionInputs') if TRANSFORMS.get(n) is not None],
             metrics=[n for n in ('VADAUCMetric', ) if METRICS.get(n) is not None],
             functions=[n for n in ('pose_window_collate', ) if FUNCTIONS.get(n) is not None],
             mmdet='mmdet' in sys.modules, mmpose='mmpose' in sys.modules)
if os.environ.get('PROBE_MMDET_AFTER'):
    import mmdet.apis  # pose extraction's import, after mmaction.models
    found['mmdet_after'] = 'mmdet.apis' in sys.modules
print(json.dumps(found))
'''


def _probe(**env: str) -> dict:
    import json
    import os
    import subprocess
    result = subprocess.run([sys.executable, '-c', _REGISTRATION_PROBE], capture_output=True,
                            text=True, env={**os.environ, **env}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_pose_only_imports_register_everything_without_mmdet() -> None:
    found = _probe(PROBE_MMDET_AFTER='1')
    assert found['models'] == ['STGNFRecognizer', 'STGNF', 'MGENetRecognizer']
    assert found['datasets'] == ['PoseWindowDataset', 'MGENetWindowDataset']
    assert found['transforms'] == ['NormalizePoseWindow', 'PackMGENetInputs', 'PackActionInputs']
    assert found['metrics'] == ['VADAUCMetric']
    assert found['functions'] == ['pose_window_collate']
    assert found['mmdet'] is False and found['mmpose'] is False
    assert found['mmdet_after'] is True  # deferred for mmaction only, importable afterwards


def test_mmdet_for_mmaction_on_request() -> None:
    found = _probe(**{_compat.MMDET_FOR_MMACTION_ENV: '1'})
    assert found['mmdet'] is True and found['models'][0] == 'STGNFRecognizer'


def test_mmdet_deferral_is_narrow() -> None:
    finder = _compat._DeferMMDetFinder()
    # an import of anything else, or of mmdet from elsewhere, goes on to the other finders
    assert finder.find_spec('numpy') is None
    assert finder.find_spec('mmdet.apis') is None  # imported from this test module
    # installed at most once, and not at all once mmaction.models is imported (it is here)
    assert _compat.defer_mmdet_for_mmaction() is False
