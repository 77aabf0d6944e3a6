"""model-index.yml and the metafiles validate: the OpenMMLab fields are there, every config,
document and official checkpoint they name exists, and every number is one that was measured:
it is in the document named as its source (and, after `make demo`, in the demo's results)."""
import json
import re
from pathlib import Path
from typing import Dict, List

import pytest
import yaml
from mmengine.config import Config

from tests.conftest import REPO, SHARED

MODEL_KEYS = ('Name', 'Config', 'In Collection', 'Metadata', 'Results', 'Results Source',
              'Weights')
DEMO = REPO / 'work_dirs' / 'demo'


def _metafiles() -> List[Path]:
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    return [REPO / path for path in index['Import']]


def _models() -> List[Dict]:
    return [model for path in _metafiles()
            for model in yaml.safe_load(path.read_text())['Models']]


def _local(path: str) -> Path:
    """A path of the metafile: relative to the repository; ``../shared/`` is the shared data."""
    return SHARED / path[len('../shared/'):] if path.startswith('../shared/') else REPO / path


def _numbers(text: str) -> List[float]:
    return [float(n) for n in re.findall(r'(?<![\d.])\d+\.\d+', text)]


def _measured(value: float, numbers: List[float]) -> bool:
    """The value, at its own precision, is one of the numbers (given in % or as a fraction)."""
    decimals = len(repr(float(value)).split('.')[1])
    return any(round(n, decimals) == value or round(100 * n, decimals) == value
               for n in numbers)


def test_index_and_collections() -> None:
    paths = _metafiles()
    assert {p.relative_to(REPO).as_posix() for p in paths} == {
        'configs/stgnf/metafile.yml', 'configs/mgenet/metafile.yml'}
    for path in paths:
        content = yaml.safe_load(path.read_text())
        names = set()
        for collection in content['Collections']:
            assert (REPO / collection['README']).is_file(), collection['README']
            assert collection['Paper']['URL'].startswith('https://')
            assert collection['Paper']['Title']
            names.add(collection['Name'])
        for model in content['Models']:
            assert model['In Collection'] in names, model['Name']


def test_models_name_existing_configs_and_checkpoints() -> None:
    models = _models()
    assert len({m['Name'] for m in models}) == len(models) >= 4
    for model in models:
        missing = [key for key in MODEL_KEYS if key not in model]
        assert not missing, f'{model.get("Name")}: no {missing}'
        assert (REPO / model['Config']).is_file(), model['Config']
        Config.fromfile(str(REPO / model['Config']))  # it parses
        assert (REPO / model['Results Source']).is_file(), model['Results Source']
        assert model['Metadata']['Architecture']
        for result in model['Results']:
            assert {'Dataset', 'Task', 'Metrics'} <= set(result), model['Name']
            assert result['Metrics'] and all(isinstance(v, (int, float))
                                             for v in result['Metrics'].values())
        weights = model['Weights']
        if weights.startswith('../shared/'):
            # The official checkpoints are shared data: they must be there.
            assert _local(weights).is_file(), weights
        else:
            # Made by `make demo` (tools/demo.py): under work_dirs/demo, checked when it ran.
            assert weights.startswith('work_dirs/demo/'), weights
            for key in ('Weights', 'Training Log'):
                if DEMO.joinpath('vad_results.json').is_file():
                    assert _local(model[key]).is_file(), model[key]


def test_every_number_was_measured() -> None:
    for model in _models():
        numbers = _numbers((REPO / model['Results Source']).read_text())
        for result in model['Results']:
            for metric, value in result['Metrics'].items():
                assert _measured(value, numbers), (
                    f'{model["Name"]}: {metric} = {value} is not in {model["Results Source"]}')


@pytest.mark.skipif(not DEMO.joinpath('vad_results.json').is_file(),
                    reason='make demo has not run in this checkout')
def test_demo_numbers_equal_the_demo_run() -> None:
    rows = {row['name']: row for row in
            json.loads(DEMO.joinpath('vad_results.json').read_text())['table']}
    table_row = {'mgenet_demo_synthetic-v2_seed0': 'MGENet (eq. 16)',
                 'stgnf_demo_synthetic-v2_seed0': 'STG-NF alone'}
    keys = {'Micro AUC': 'micro_auc', 'Micro AUC (motion)': 'micro_auc/motion',
            'Micro AUC (appearance)': 'micro_auc/appearance',
            'Micro AUC (scene-related)': 'micro_auc/scene'}
    checked = 0
    for model in _models():
        if model['Name'] not in table_row:
            continue
        test = next(r for r in model['Results'] if r['Dataset'].startswith(
            'synthetic benchmark v2, test split'))
        for metric, value in test['Metrics'].items():
            assert round(100 * rows[table_row[model['Name']]][keys[metric]], 1) == value
            checked += 1
    assert checked == 8
