"""tools/analysis/plot_scores.py draws curves and histogram from a result file."""
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, run_tool


def test_plots_from_scores(tmp_path: Path) -> None:
    gt_dir = tmp_path / 'gt'
    gt_dir.mkdir()
    rng = np.random.default_rng(0)
    scores = {}
    for name, length in (('01_0001', 120), ('01_0002', 80)):
        mask = np.zeros(length, dtype=np.int64)
        mask[30:60] = 1
        np.save(gt_dir / f'{name}.npy', mask)
        scores[name] = mask + rng.normal(0, 0.3, length)
    run_dir = tmp_path / 'work' / '20260101_000000'
    run_dir.mkdir(parents=True)
    np.savez(run_dir / 'vad_frame_scores.npz', **scores)
    proc = run_tool(str(REPO / 'tools' / 'analysis' / 'plot_scores.py'), str(tmp_path / 'work'),
                    '--gt-dir', str(gt_dir), '--out', str(tmp_path / 'plots'), cwd=tmp_path)
    assert 'vad_frame_scores.npz' in proc.stdout
    for name in ('score_curves.png', 'score_histogram.png'):
        data = (tmp_path / 'plots' / name).read_bytes()
        assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 10_000


def test_missing_gt_is_named(tmp_path: Path) -> None:
    np.savez(tmp_path / 'vad_frame_scores.npz', clip_a=np.zeros(5))
    with pytest.raises(pytest.fail.Exception, match='clip clip_a: ground truth'):
        run_tool(str(REPO / 'tools' / 'analysis' / 'plot_scores.py'),
                 str(tmp_path / 'vad_frame_scores.npz'), '--gt-dir', str(tmp_path), cwd=tmp_path)
