"""VADAUCMetric: reference AUC from reference window scores, result files, mixing, bad input."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator

from mgenet_mm.datasets import PoseWindowDataset
from mgenet_mm.evaluation.functional import min_max
from mgenet_mm.evaluation.metrics import VADAUCMetric
from mgenet_mm.fileio import atomic_write_bytes
from mmaction.registry import METRICS
from tests.conftest import REPO


def _samples(reference, component='nll', values=None):
    values = -reference['normality'] if values is None else values
    names = {(int(n[:2]), int(n[3:])): str(n) for n in reference['clips']}
    return [dict(clip_name=names[(int(m[0]), int(m[1]))], person_id=int(m[2]),
                 start_frame=int(m[3]), anomaly_scores={component: torch.tensor(float(v), dtype=torch.float64)})
            for m, v in zip(reference['metadata'], values)]


@pytest.fixture(scope='module')
def reference(fixtures_dir):
    return np.load(fixtures_dir / 'stgnf_reference' / 'expected_sht.npz')


def test_reference_auc_and_files(reference, fixtures_dir: Path, tmp_path: Path) -> None:
    metric = VADAUCMetric(gt_dir=str(fixtures_dir / 'stgnf_reference' / 'gt' / 'test_frame_mask'),
                          seg_len=24, out_dir=str(tmp_path))
    samples = _samples(reference)
    for start in range(0, len(samples), 1000):
        metric.process(None, samples[start:start + 1000])
    metrics = metric.compute_metrics(metric.results)
    assert abs(metrics['micro_auc'] - float(reference['auc'])) < 1e-6
    assert metrics['num_windows'] == len(samples) and metrics['num_frames'] == 2622
    saved = json.loads((tmp_path / 'vad_results.json').read_text())
    assert saved['metrics']['micro_auc'] == metrics['micro_auc']  # full precision
    frames = np.load(tmp_path / 'vad_frame_scores.npz')
    assert sorted(frames.files) == sorted(reference['clips'].tolist())
    anomaly = np.concatenate([frames[c] for c in sorted(frames.files)])
    np.testing.assert_allclose(-anomaly, reference['frame_scores'], rtol=1e-6)


def _with_noise(reference, seed: int):
    """The reference windows with a second, random component ``noise``: (samples, nll, noise)."""
    nll = -reference['normality']
    noise = np.random.default_rng(seed).normal(size=nll.shape)
    samples = _samples(reference)
    for sample, extra in zip(samples, noise):
        sample['anomaly_scores']['noise'] = torch.tensor(extra, dtype=torch.float64)
    return samples, nll, noise


def test_components_are_mixed_after_min_max(reference, fixtures_dir: Path, tmp_path) -> None:
    gt_dir = str(fixtures_dir / 'stgnf_reference' / 'gt' / 'test_frame_mask')
    samples, nll, noise = _with_noise(reference, 0)
    metric = VADAUCMetric(gt_dir=gt_dir, score_weights=dict(nll=1.0, noise=0.1),
                          out_dir=str(tmp_path))
    metric.process(None, samples)
    metrics = metric.compute_metrics(metric.results)
    # Each component alone is reported; nll alone is the reference.
    assert abs(metrics['micro_auc_nll'] - float(reference['auc'])) < 1e-6
    assert 0.3 < metrics['micro_auc_noise'] < 0.7
    # The mix equals scoring the hand-mixed min-max values as one component.
    mixed = min_max(nll) + 0.1 * min_max(noise)
    single = VADAUCMetric(gt_dir=gt_dir, out_dir=str(tmp_path))
    single.process(None, _samples(reference, values=mixed))
    assert single.compute_metrics(single.results)['micro_auc'] == pytest.approx(
        metrics['micro_auc'], abs=1e-12)
    # Without weights, several components are refused.
    unmixed = VADAUCMetric(gt_dir=gt_dir, out_dir=str(tmp_path))
    unmixed.process(None, samples)
    with pytest.raises(ValueError, match='set score_weights'):
        unmixed.compute_metrics(unmixed.results)


def test_weight_grid_scores_every_point_from_one_pass(reference, fixtures_dir: Path,
                                                       tmp_path: Path) -> None:
    gt_dir = str(fixtures_dir / 'stgnf_reference' / 'gt' / 'test_frame_mask')
    samples, nll, noise = _with_noise(reference, 1)
    grid = dict(noise=[0.0, 0.1, 1.0])
    metric = VADAUCMetric(gt_dir=gt_dir, score_weights=dict(nll=1.0, noise=0.5),
                          weight_grid=grid, out_dir=str(tmp_path))
    metric.process(None, samples)
    metrics = metric.compute_metrics(metric.results)
    # Each point by an independent route: the hand-mixed scores as one component.
    expected = []
    for weight in grid['noise']:
        single = VADAUCMetric(gt_dir=gt_dir, out_dir=str(tmp_path / f'single_{weight}'))
        (tmp_path / f'single_{weight}').mkdir()
        single.process(None, _samples(reference, values=min_max(nll) + weight * min_max(noise)))
        expected.append(single.compute_metrics(single.results)['micro_auc'])
    saved = json.loads((tmp_path / 'vad_results.json').read_text())['fusion_grid']
    assert [p['weights'] for p in saved['points']] == [dict(nll=1.0, noise=w) for w in grid['noise']]
    np.testing.assert_allclose([p['micro_auc'] for p in saved['points']], expected, atol=1e-12)
    best = int(np.argmax(expected))
    assert saved['best'] == best
    assert metrics['fusion_grid/best_micro_auc'] == pytest.approx(expected[best], abs=1e-12)
    assert metrics['fusion_grid/best_weights/noise'] == grid['noise'][best]
    # The final score keeps score_weights (noise 0.5), not the grid's best.
    assert metrics['micro_auc'] not in expected
    with pytest.raises(ValueError, match='set score_weights too'):
        VADAUCMetric(gt_dir=gt_dir, weight_grid=grid)


def test_min_max() -> None:
    np.testing.assert_allclose(min_max(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(min_max(np.array([1.0, 1.0])), [0.0, 0.0])
    with pytest.raises(ValueError, match='non-finite'):
        min_max(np.array([1.0, np.inf]))


def test_bad_input(reference, fixtures_dir: Path, tmp_path: Path) -> None:
    gt_dir = str(fixtures_dir / 'stgnf_reference' / 'gt' / 'test_frame_mask')
    metric = VADAUCMetric(gt_dir=gt_dir, out_dir=str(tmp_path))
    with pytest.raises(KeyError, match='anomaly_scores'):
        metric.process(None, [dict(clip_name='01_0014', person_id=1, start_frame=1)])
    stray = _samples(reference)[:5]
    stray[0]['clip_name'] = '09_0099'
    metric.process(None, stray)
    with pytest.raises(ValueError, match='09_0099'):
        metric.compute_metrics(metric.results)
    with pytest.raises(FileNotFoundError, match='ground-truth folder not found'):
        VADAUCMetric(gt_dir=str(tmp_path / 'none')).compute_metrics([])
    with pytest.raises(ValueError, match='gt_format'):
        VADAUCMetric(gt_dir=gt_dir, gt_format='ucsd_ped2')  # not a known format
    with pytest.raises(FileNotFoundError, match='clip list not found'):
        VADAUCMetric(gt_dir=gt_dir, clips=str(tmp_path / 'list.txt')).compute_metrics([])


def test_clip_selection_and_empty_clips(reference, fixtures_dir: Path, tmp_path: Path) -> None:
    root = fixtures_dir / 'stgnf_reference'
    samples = [s for s in _samples(reference) if s['clip_name'] != '01_0014']
    # Clips come from the pose folder; 01_0014 has masks but no windows: all its frames are
    # filled with the least anomalous score and the metric still runs.
    metric = VADAUCMetric(gt_dir=str(root / 'gt' / 'test_frame_mask'),
                          clips=str(root / 'pose' / 'test'), out_dir=str(tmp_path))
    metric.process(None, samples)
    metrics = metric.compute_metrics(metric.results)
    assert metrics['num_clips'] == 6 and metrics['num_empty_frames'] >= 265
    excluded = VADAUCMetric(gt_dir=str(root / 'gt' / 'test_frame_mask'),
                            exclude_clips=['01_0014'], out_dir=str(tmp_path))
    excluded.process(None, _samples(reference))
    assert excluded.compute_metrics(excluded.results)['num_clips'] == 5


def test_clips_from_a_list_file_and_from_the_dataset(reference, fixtures_dir: Path,
                                                     tmp_path: Path) -> None:
    gt_dir = str(fixtures_dir / 'stgnf_reference' / 'gt' / 'test_frame_mask')
    clips = sorted(str(c) for c in reference['clips'])
    samples = [s for s in _samples(reference) if s['clip_name'] != clips[0]]
    # A list file: blank lines and '#' comments are skipped, as by the dataset.
    list_file = tmp_path / 'clips.txt'
    list_file.write_text('# chosen clips\n\n' + '\n'.join(clips[1:]) + '\n')
    listed = VADAUCMetric(gt_dir=gt_dir, clips=str(list_file), out_dir=str(tmp_path))
    listed.process(None, samples)
    expected = listed.compute_metrics(listed.results)
    assert expected['num_clips'] == len(clips) - 1
    # The dataset's clips, as the evaluator hands them over (dataset.metainfo -> dataset_meta).
    metric = VADAUCMetric(gt_dir=gt_dir, use_dataset_clips=True, out_dir=str(tmp_path))
    metric.dataset_meta = dict(clips=tuple(clips[1:]))
    metric.process(None, samples)
    assert metric.compute_metrics(metric.results) == expected
    with pytest.raises(ValueError, match='dataset_meta'):
        VADAUCMetric(gt_dir=gt_dir, use_dataset_clips=True).compute_metrics([])
    with pytest.raises(ValueError, match='not both'):
        VADAUCMetric(gt_dir=gt_dir, clips=clips, use_dataset_clips=True)


def test_atomic_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / 'out.json'
    target.write_text('old')

    def broken(f):
        f.write(b'half')
        raise RuntimeError('killed')

    with pytest.raises(RuntimeError):
        atomic_write_bytes(str(target), broken)
    assert target.read_text() == 'old'
    assert [p.name for p in tmp_path.iterdir()] == ['out.json']


def test_kind_aucs_by_hand() -> None:
    from mgenet_mm.evaluation.functional import kind_aucs
    scores = {'a': np.array([0., 1., 5., 6., 2.]), 'b': np.array([3., 1., 4., 0.])}
    kinds = {'a': np.array([0, 0, 1, 1, 0]), 'b': np.array([0, 2, 2, 0])}
    result = kind_aucs(scores, kinds, {1: 'motion', 2: 'appearance', 3: 'scene'})
    assert result['micro_auc/motion'] == 1.0
    # appearance {1, 4} against normal {0, 1, 2, 3, 0}: (2.5 + 5) / 10
    assert result['micro_auc/appearance'] == pytest.approx(0.75)
    assert 'micro_auc/scene' not in result and result['num_frames/motion'] == 2
    with pytest.raises(ValueError, match="clip 'b'"):
        kind_aucs(scores, {'a': kinds['a'], 'b': kinds['b'][:2]}, {1: 'motion'})


def test_metric_reports_kinds(reference, fixtures_dir: Path, tmp_path: Path) -> None:
    gt_dir = fixtures_dir / 'stgnf_reference' / 'gt' / 'test_frame_mask'
    kind_dir = tmp_path / 'kinds'
    kind_dir.mkdir()
    for mask in gt_dir.glob('*.npy'):  # every abnormal frame is a "motion" frame
        np.save(kind_dir / mask.name, np.load(mask).astype(np.int64))
    metric = VADAUCMetric(gt_dir=str(gt_dir), kind_dir=str(kind_dir), out_dir=str(tmp_path))
    metric.process(None, _samples(reference))
    metrics = metric.compute_metrics(metric.results)
    assert metrics['micro_auc/motion'] == pytest.approx(metrics['micro_auc'], abs=1e-12)
    np.save(kind_dir / '01_0014.npy', np.zeros(265, dtype=np.int64))
    with pytest.raises(ValueError, match='01_0014: kinds .* disagree'):
        metric.compute_metrics(metric.results)


# ---------------------------------------------------------------------- GT against the dataset
def _fixture_copy(fixtures_dir: Path, tmp_path: Path) -> Tuple[Path, Path]:
    """The STG-NF fixture's test poses and GT masks, in folders a test may change."""
    root = fixtures_dir / 'stgnf_reference'
    pose_dir, gt_dir = tmp_path / 'pose', tmp_path / 'gt'
    shutil.copytree(root / 'pose' / 'test', pose_dir)
    shutil.copytree(root / 'gt' / 'test_frame_mask', gt_dir)
    return pose_dir, gt_dir


def _evaluator(gt_dir: Path, **kwargs) -> Evaluator:
    return Evaluator([METRICS.build(dict(type='VADAUCMetric', gt_dir=str(gt_dir), seg_len=24,
                                         **kwargs))])


def test_gt_clip_without_a_pose_file_is_an_error(fixtures_dir: Path, tmp_path: Path) -> None:
    pose_dir, gt_dir = _fixture_copy(fixtures_dir, tmp_path)
    (pose_dir / '01_0015_alphapose_tracked_person.json').unlink()
    dataset = PoseWindowDataset(str(pose_dir), seg_len=24, test_mode=True)
    # What the test loop does when it is built, before inference: without the check, 01_0015
    # would be scored as a clip with nobody in it.
    with pytest.raises(ValueError, match=r'clip 01_0015 has a ground-truth mask \(.*01_0015.npy\) '
                       'but no pose file in .*pose.*empty JSON object {}'):
        _evaluator(gt_dir).dataset_meta = dataset.metainfo
    # Leaving it out on both sides is the way to evaluate without it.
    _evaluator(gt_dir, exclude_clips=['01_0015']).dataset_meta = dataset.metainfo


def test_extra_gt_mask_or_pose_file_is_an_error(fixtures_dir: Path, tmp_path: Path) -> None:
    pose_dir, gt_dir = _fixture_copy(fixtures_dir, tmp_path)
    dataset = PoseWindowDataset(str(pose_dir), seg_len=24, test_mode=True)
    _evaluator(gt_dir).dataset_meta = dataset.metainfo  # the fixture as it is pairs up
    np.save(gt_dir / '09_0099.npy', np.zeros(100, dtype=np.uint8))
    with pytest.raises(ValueError, match='clip 09_0099 has a ground-truth mask'):
        _evaluator(gt_dir).dataset_meta = dataset.metainfo
    (gt_dir / '09_0099.npy').unlink()
    (pose_dir / '09_0098_alphapose_tracked_person.json').write_text('{}')
    with pytest.raises(ValueError, match='clip 09_0098 has a pose file in .* but no '
                       'ground-truth mask'):
        _evaluator(gt_dir).dataset_meta = PoseWindowDataset(str(pose_dir), seg_len=24,
                                                             test_mode=True).metainfo


@pytest.mark.parametrize('suffix', ['.JSON', '.json.gz'])
def test_misnamed_pose_file_is_an_error(fixtures_dir: Path, tmp_path: Path, suffix: str) -> None:
    pose_dir, gt_dir = _fixture_copy(fixtures_dir, tmp_path)
    path = pose_dir / '01_0015_alphapose_tracked_person.json'
    misnamed = path.with_name(path.name[:-len('.json')] + suffix)
    path.rename(misnamed)
    with pytest.raises(ValueError, match='not read as a pose file') as error:
        PoseWindowDataset(str(pose_dir), seg_len=24, test_mode=True)
    assert str(misnamed) in str(error.value)
    # The metric's own listing of a pose folder (clips=<folder>) follows the same rule.
    with pytest.raises(ValueError, match='not read as a pose file'):
        VADAUCMetric(gt_dir=str(gt_dir), clips=str(pose_dir)).compute_metrics([])


@pytest.mark.parametrize('key, value, match', [
    ('seg_len', 'abc', "seg_len must be a positive integer.*got 'abc' \\(str\\)"),
    ('seg_len', 0, 'seg_len must be a positive integer'),
    ('seg_len', True, 'seg_len must be a positive integer'),
    ('seg_len', 24.0, 'seg_len must be a positive integer'),
    ('gt_dir', None, 'gt_dir must be a folder path'),
    ('exclude_clips', '01_0014', 'exclude_clips must be a list of clip names'),
    ('clips', 5, 'clips must be None, a list of clip names'),
    ('use_dataset_clips', 'yes', 'use_dataset_clips must be True or False'),
    ('normalize', 1, 'normalize must be True or False'),
    ('score_weights', dict(mo='1'), 'score_weights must be None or a dict'),
    ('sigmas', 3, 'sigmas must be a list of positive numbers'),
    ('sigmas', [1, -2], 'sigmas must be a list of positive numbers'),
    ('kind_names', {'1': 'motion'}, 'kind_names must be None or a dict of kind id'),
    ('out_dir', 7, 'out_dir must be None or a folder path'),
])
def test_constructor_arguments_are_type_checked(fixtures_dir: Path, key: str, value,
                                                match: str) -> None:
    gt_dir = str(fixtures_dir / 'stgnf_reference' / 'gt' / 'test_frame_mask')
    cfg = Config(dict(test_evaluator=dict(type='VADAUCMetric', gt_dir=gt_dir, seg_len=24)))
    # The way --cfg-options test_evaluator.seg_len=abc reaches the metric.
    cfg.merge_from_dict({f'test_evaluator.{key}': value})
    # Today's failure was a TypeError after the whole inference; now building fails.
    with pytest.raises(ValueError, match=f'VADAUCMetric: {match}'):
        METRICS.build(cfg.test_evaluator)


def _failing_test_tool(fixtures_dir: Path, tmp_path: Path, *options: str) -> str:
    """tools/test.py on the STG-NF fixture config, which must fail; returns its stderr."""
    work_dir = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'test.py'),
         str(REPO / 'configs' / 'stgnf' / 'stgnf_sht_fixture.py'),
         str(fixtures_dir / 'stgnf_reference' / 'ShanghaiTech_85_9.tar'), '--work-dir',
         str(work_dir), *options],
        cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert not list(work_dir.glob('*/vad_results.json'))
    # Raised while the test loop is built: before the checkpoint is loaded and any window scored.
    assert 'in build_test_loop' in proc.stderr, proc.stderr[-3000:]
    return proc.stderr


@pytest.mark.slow
def test_tools_test_stops_before_inference(fixtures_dir: Path, tmp_path: Path) -> None:
    stderr = _failing_test_tool(fixtures_dir, tmp_path, '--cfg-options',
                                'test_evaluator.seg_len=abc')
    assert ("ValueError: VADAUCMetric: seg_len must be a positive integer (the window length T), "
            "got 'abc' (str)") in stderr, stderr[-3000:]
    # The fixture's poses less one clip's file, under the config's pose_dir 'pose/test'.
    pose_dir = tmp_path / 'data' / 'pose' / 'test'
    shutil.copytree(fixtures_dir / 'stgnf_reference' / 'pose' / 'test', pose_dir)
    (pose_dir / '01_0015_alphapose_tracked_person.json').unlink()
    stderr = _failing_test_tool(fixtures_dir, tmp_path, '--cfg-options',
                                f'test_dataloader.dataset.data_root={tmp_path / "data"}')
    assert 'ValueError: clip 01_0015 has a ground-truth mask' in stderr, stderr[-3000:]
