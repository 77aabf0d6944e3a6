"""The demo pipeline end to end on the tiny synthetic preset (1 epoch each)."""
import json
from pathlib import Path

import numpy as np
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

    # One test clip through the video-scoring API, with the test run's calibration: the same
    # frame scores as tools/test.py (tokens recomputed from the frames instead of the fp16
    # cache; the frozen stages rebuilt from the cache's seed).
    from mgenet_mm.apis import init_model, score_video
    run = Path(summary['mgenet']['run_dir'])
    reference = np.load(run / 'vad_frame_scores.npz')
    clip = sorted(reference.files)[0]
    checkpoint = next((tmp_path / 'work' / 'mgenet').glob('epoch_*.pth'))
    model = init_model(str(REPO / 'configs' / 'mgenet' / 'demo.py'), str(checkpoint),
                       cfg_options={'model.guidance.init_cfg': None})
    data = tmp_path / 'data'
    scores = score_video(model, str(data / 'testing' / 'frames' / clip),
                         str(data / 'pose' / 'test' / f'{clip}_alphapose_tracked_person.json'),
                         calibration=str(run / 'vad_results.json'), show_progress=False)
    np.testing.assert_allclose(scores.frame_scores, reference[clip], atol=1e-4)
