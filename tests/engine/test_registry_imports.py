"""mmaction_datasets_deferred: a loader of the project's own types is built without importing
mmaction's datasets (and scipy.stats), the same classes either way, the registries restored."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

import mgenet_mm  # noqa: F401  registers the project's types
from mgenet_mm.datasets import PoseWindowDataset
from mgenet_mm.engine.registry_imports import uses_only_registered_types

REPO = Path(__file__).resolve().parents[2]
STGNF_CONFIG = REPO / 'configs' / 'stgnf' / 'stgnf_sht.py'


def _loader_cfg(**changes) -> dict:
    cfg = Config.fromfile(str(STGNF_CONFIG)).test_dataloader.to_dict()
    cfg.update(changes)
    return cfg


def test_the_stgnf_test_loader_needs_nothing_from_mmaction_datasets() -> None:
    assert uses_only_registered_types(_loader_cfg())


@pytest.mark.parametrize('change', [
    lambda cfg: cfg['dataset']['pipeline'].append(dict(type='SomeoneElsesTransform')),
    lambda cfg: cfg['dataset']['pipeline'].append(dict(type='mmaction.SomeoneElsesTransform')),
    lambda cfg: cfg['dataset'].update(type='mmdet.PoseWindowDataset'),
    lambda cfg: cfg['dataset'].update(type=PoseWindowDataset),  # a class: not looked up here
    lambda cfg: cfg.update(sampler=dict(type='SomeoneElsesSampler')),
    lambda cfg: cfg.update(dataset=dict(type='ConcatDataset', datasets=[cfg['dataset']])),
])
def test_anything_it_cannot_vouch_for_keeps_the_import(change) -> None:
    # Types not registered (yet): mmaction's own, before its import, look the same. A type only
    # mmengine registers (ConcatDataset) could be replaced by mmaction's (as Resize is).
    cfg = _loader_cfg()
    change(cfg)
    assert not uses_only_registered_types(cfg)


def test_mmaction_registers_no_sampler_of_its_own() -> None:
    # The rule lets a sampler come from mmengine's registry: true while mmaction adds none.
    import mmaction.datasets  # noqa: F401
    from mmaction.registry import DATA_SAMPLERS
    assert not set(DATA_SAMPLERS._module_dict) & set(DATA_SAMPLERS.parent._module_dict)


_CHILD = r'''
import json, sys
from mmengine.config import Config
from mmengine.registry import init_default_scope
import mgenet_mm
from mgenet_mm.engine import CheckedRunner
from mmaction.registry import DATASETS, TRANSFORMS
init_default_scope('mmaction')
cfg = Config.fromfile(sys.argv[1]).test_dataloader.to_dict()
cfg['dataset'].update(data_root='', pose_dir=sys.argv[2])
extra = json.loads(sys.argv[3])
if extra:
    cfg['dataset']['pipeline'] = extra
loader = CheckedRunner.build_dataloader(cfg)
report = dict(dataset=type(loader.dataset).__name__, windows=len(loader.dataset),
              imported='mmaction.datasets' in sys.modules, scipy='scipy.stats' in sys.modules,
              flags=[DATASETS._imported, TRANSFORMS._imported])
report['later_lookup'] = DATASETS.get('VideoDataset').__name__  # imports mmaction's now
report['imported_after'] = 'mmaction.datasets' in sys.modules
print(json.dumps(report))
'''


def _build_in_fresh_process(pose_dir: Path, pipeline: list) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, '-c', _CHILD, str(STGNF_CONFIG), str(pose_dir),
                          json.dumps(pipeline)], capture_output=True, text=True, env=env,
                         cwd=str(REPO), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pose_dir(tmp_path: Path) -> Path:
    entry = {'keypoints': [float(i % 7) + 1.0 for i in range(51)], 'scores': 0.9}
    track = {str(f): entry for f in range(30)}
    folder = tmp_path / 'pose'
    folder.mkdir()
    (folder / '01_0001_alphapose_tracked_person.json').write_text(json.dumps({'1': track}))
    return folder


def test_loader_of_project_types_is_built_without_mmaction_datasets(tmp_path: Path) -> None:
    report = _build_in_fresh_process(_pose_dir(tmp_path), [])
    assert report['dataset'] == 'PoseWindowDataset' and report['windows'] > 0
    assert not report['imported'] and not report['scipy']
    assert report['flags'] == [False, False]  # restored: the next lookup imports
    assert report['later_lookup'] == 'VideoDataset' and report['imported_after']


def test_loader_with_an_mmaction_transform_imports_it(tmp_path: Path) -> None:
    report = _build_in_fresh_process(_pose_dir(tmp_path), [dict(type='mmaction.Resize',
                                                                scale=0.5)])
    assert report['imported'] and report['flags'] == [True, True]
