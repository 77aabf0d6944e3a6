"""The demo pipeline end to end on the tiny synthetic preset (1 epoch each)."""
import json
from pathlib import Path

import pytest

from tests.conftest import REPO, run_tool


@pytest.mark.slow
def test_tiny_demo(tmp_path: Path) -> None:
    proc = run_tool(str(REPO / 'tools' / 'demo.py'), '--preset', 'tiny', '--data',
                    str(tmp_path / 'data'), '--work-dir', str(tmp_path / 'work'),
                    '--stgnf-epochs', '1', '--mgenet-epochs', '1', cwd=tmp_path, timeout=600)
    assert 'MGENet (eq. 16)' in proc.stdout and 'STG-NF alone' in proc.stdout
    summary = json.loads((tmp_path / 'work' / 'vad_results.json').read_text())
    names = [row['name'] for row in summary['table']]
    assert names[0] == 'MGENet (eq. 16)' and names[-1] == 'STG-NF alone'
    assert {'S_mo alone', 'S_app alone', 'S_mm alone'} <= set(names)
    for row in summary['table']:
        assert 0.0 <= row['micro_auc'] <= 1.0
    mgenet = summary['mgenet']['metrics']
    assert mgenet['num_frames'] > 0 and summary['mgenet']['missing_components'] == []
    for name in ('mgenet', 'stgnf'):
        for png in ('score_curves.png', 'score_histogram.png'):
            assert (tmp_path / 'work' / 'plots' / name / png).stat().st_size > 10_000
