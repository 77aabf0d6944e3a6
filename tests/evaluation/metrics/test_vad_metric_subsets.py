"""VADAUCMetric on Avenue's .mat GT and on frame selections (HR subsets), checked by hand."""
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from sklearn.metrics import roc_auc_score

from mgenet_mm.evaluation import VADAUCMetric
from tests.evaluation.functional.test_gt_formats import write_avenue_mat

# Two clips, one window per frame (seg_len 1: a window starting at s scores frame s).
GT = {'01': np.array([0, 0, 1, 1, 0, 0, 1, 1]), '02': np.array([0, 1, 0, 1, 0, 0])}
ANOMALY = {'01': np.array([.1, .5, .4, .9, .3, .2, .8, .35]),
           '02': np.array([.2, .6, .45, .55, .1, .3])}


def _samples(scores):
    return [dict(clip_name=clip, person_id=1, start_frame=frame,
                 anomaly_scores=dict(nll=float(value)))
            for clip, values in scores.items() for frame, value in enumerate(values)]


def _write_npy_gt(folder: Path) -> str:
    folder.mkdir()
    for clip, mask in GT.items():
        np.save(folder / f'{clip}.npy', mask)
    return str(folder)


def test_avenue_mat_gt_end_to_end(tmp_path: Path) -> None:
    for clip, mask in GT.items():
        write_avenue_mat(tmp_path / f'{int(clip)}_label.mat', set(np.flatnonzero(mask)),
                         len(mask))
    metric = VADAUCMetric(gt_dir=str(tmp_path), gt_format='avenue', seg_len=1, sigmas=(),
                          out_dir=str(tmp_path / 'out'))
    metric.process(None, _samples(ANOMALY))
    result = metric.compute_metrics(metric.results)
    expected = roc_auc_score(np.concatenate(list(GT.values())),
                             np.concatenate(list(ANOMALY.values())))
    assert result['micro_auc'] == pytest.approx(expected, abs=1e-12)
    assert result['num_clips'] == 2 and result['num_frames'] == 14


def test_frame_selection_drops_frames_before_smoothing(tmp_path: Path) -> None:
    runs = {'01': [[1, 3], [0, 2], [1, 3]]}  # frames 3, 4 of clip 01 are not human-related
    metric = VADAUCMetric(gt_dir=_write_npy_gt(tmp_path / 'gt'), seg_len=1, sigmas=(1, ),
                          frame_selection=dict(runs=runs, source='hand-made'),
                          out_dir=str(tmp_path / 'out'))
    metric.process(None, _samples(ANOMALY))
    result = metric.compute_metrics(metric.results)

    # By hand: remove the frames, then smooth what is left (normality = -anomaly) per clip.
    keep = np.array([1, 1, 1, 0, 0, 1, 1, 1], dtype=bool)
    gt = np.concatenate([GT['01'][keep], GT['02']])
    smoothed = np.concatenate([gaussian_filter1d(-ANOMALY['01'][keep], 1),
                               gaussian_filter1d(-ANOMALY['02'], 1)])
    assert result['micro_auc'] == pytest.approx(roc_auc_score(gt, -smoothed), abs=1e-12)
    assert result['num_frames'] == 12
    # Smoothing the whole clip and dropping afterwards would give another number here.
    after = np.concatenate([gaussian_filter1d(-ANOMALY['01'], 1)[keep],
                            gaussian_filter1d(-ANOMALY['02'], 1)])
    assert roc_auc_score(gt, -after) != pytest.approx(result['micro_auc'], abs=1e-6)


def test_frame_selection_from_mask_folder(tmp_path: Path) -> None:
    masks = tmp_path / 'hr_bool_masks'
    masks.mkdir()
    np.save(masks / '02.npy', np.array([True, True, True, True, False, False]))
    metric = VADAUCMetric(gt_dir=_write_npy_gt(tmp_path / 'gt'), seg_len=1, sigmas=(),
                          frame_selection=dict(dir=str(masks)), out_dir=str(tmp_path / 'out'))
    metric.process(None, _samples(ANOMALY))
    result = metric.compute_metrics(metric.results)
    gt = np.concatenate([GT['01'], GT['02'][:4]])
    anomaly = np.concatenate([ANOMALY['01'], ANOMALY['02'][:4]])
    assert result['micro_auc'] == pytest.approx(roc_auc_score(gt, anomaly), abs=1e-12)
    assert result['num_frames'] == 12


def test_frame_selection_of_wrong_length_names_it(tmp_path: Path) -> None:
    metric = VADAUCMetric(gt_dir=_write_npy_gt(tmp_path / 'gt'), seg_len=1,
                          frame_selection=dict(runs={'02': [[1, 7]]}),
                          out_dir=str(tmp_path / 'out'))
    metric.process(None, _samples(ANOMALY))
    with pytest.raises(ValueError, match="runs of clip '02': selects among 7 frames but clip "
                                         "'02' has 6"):
        metric.compute_metrics(metric.results)
