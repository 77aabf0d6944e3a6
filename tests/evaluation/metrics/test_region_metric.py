"""VADRegionMetric: RBDC/TBDC of hand-built windows beside the AUCs, result file, bad input."""
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from mgenet_mm.evaluation.metrics import VADAUCMetric, VADRegionMetric, region_metric
from mgenet_mm.evaluation.metrics.region_metric import merge_results_json

# The case of tests/evaluation/functional/test_region_metrics.py, in clip 01_0001 (3 frames,
# its frames 1 and 2 are that case's frames 0 and 1) beside a normal clip 01_0002 (1 frame):
# 4 frames in all, so RBDC = 0.75 and TBDC = 0.875 (computed there by hand).
SEG_LEN = 2  # a window starting at s scores frame s + 1
REGIONS = '0,1,0,0,10,10\n0,2,0,0,10,10\n1,2,20,20,30,30\n'
DETECTIONS = [  # frame of 01_0001, box, score
    (1, [0, 0, 10, 10], 0.9), (2, [50, 50, 60, 60], 0.8), (2, [20, 20, 30, 30], 0.7),
    (1, [100, 100, 110, 110], 0.6), (2, [5, 0, 15, 10], 0.5), (1, [9, 9, 19, 19], 0.4)]


def _samples(box_key: str = 'tube_box'):
    return [{'clip_name': '01_0001', 'person_id': i, 'start_frame': frame - SEG_LEN // 2,
             box_key: torch.tensor(box), 'anomaly_scores': {'nll': torch.tensor(score)}}
            for i, (frame, box, score) in enumerate(DETECTIONS)]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / 'gt').mkdir()
    np.save(tmp_path / 'gt' / '01_0001.npy', np.array([0, 1, 1], np.uint8))
    np.save(tmp_path / 'gt' / '01_0002.npy', np.array([0], np.uint8))
    (tmp_path / 'regions').mkdir()
    (tmp_path / 'regions' / '01_0001.txt').write_text(REGIONS)  # 01_0002: none (normal)
    (tmp_path / 'out').mkdir()
    return tmp_path


def _metric(data: Path, **kwargs) -> VADRegionMetric:
    args = dict(gt_dir=str(data / 'gt'), region_dir=str(data / 'regions'), seg_len=SEG_LEN,
                sigmas=(), out_dir=str(data / 'out'))
    args.update(kwargs)
    return VADRegionMetric(**args)


def test_rbdc_tbdc_beside_the_aucs(data: Path) -> None:
    metric = _metric(data)
    metric.process(None, _samples()[:4])
    metric.process(None, _samples()[4:])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['rbdc'] == pytest.approx(0.75) and metrics['tbdc'] == pytest.approx(0.875)
    assert (metrics['num_gt_regions'], metrics['num_gt_tracks'], metrics['num_detections'],
            metrics['num_true_detections'], metrics['num_clips_without_regions']) == (3, 2, 6, 3, 1)
    # The AUCs are VADAUCMetric's own.
    plain = VADAUCMetric(gt_dir=str(data / 'gt'), seg_len=SEG_LEN, sigmas=(),
                         out_dir=str(data / 'plain'))
    plain.process(None, _samples())
    expected = plain.compute_metrics(plain.results)
    assert {k: metrics[k] for k in expected} == expected
    saved = json.loads((data / 'out' / 'vad_results.json').read_text())
    assert saved['metrics']['rbdc'] == metrics['rbdc']
    assert saved['metrics']['micro_auc'] == metrics['micro_auc']
    assert saved['fill_value'] is not None  # VADAUCMetric's entries are kept
    assert saved['region_detection']['clips_without_regions'] == ['01_0002']
    assert saved['region_detection']['iou_thr'] == 0.1


def test_shanghaitech_pixel_masks_give_the_same_values(data: Path) -> None:
    masks = np.zeros((3, 40, 40), np.uint8)
    masks[1, 0:10, 0:10] = 1    # region A
    masks[2, 0:10, 0:10] = 1    # region B, overlapping A: the same track
    masks[2, 20:30, 20:30] = 1  # region C
    (data / 'masks').mkdir()
    np.save(data / 'masks' / '01_0001.npy', masks)
    np.save(data / 'masks' / '01_0002.npy', np.zeros((1, 40, 40), np.uint8))
    metric = _metric(data, region_dir=str(data / 'masks'), region_format='shanghaitech')
    metric.process(None, _samples())
    metrics = metric.compute_metrics(metric.results)
    assert metrics['rbdc'] == pytest.approx(0.75) and metrics['tbdc'] == pytest.approx(0.875)
    assert metrics['num_clips_without_regions'] == 0


def test_frame_selection_drops_frames_detections_and_regions(data: Path) -> None:
    # Frame 1 of 01_0001 left out: region A and the detections 0.9, 0.6, 0.4 go with it; over
    # the 3 frames left the points are (0, 0, 0), (1/3, 0, 0), (1/3, 1/2, 1/2), (1/3, 1, 1),
    # flat to FPR 1 (track 0 is region B alone now): RBDC = TBDC = 2/3.
    metric = _metric(data, frame_selection=dict(runs={'01_0001': [[1, 1], [0, 1], [1, 1]]}))
    metric.process(None, _samples())
    metrics = metric.compute_metrics(metric.results)
    assert metrics['rbdc'] == pytest.approx(2 / 3) and metrics['tbdc'] == pytest.approx(2 / 3)
    assert metrics['num_gt_regions'] == 2 and metrics['num_detections'] == 3


def test_set_without_detections_is_zero_with_a_warning(data: Path, monkeypatch) -> None:
    logged = []
    monkeypatch.setattr(region_metric, 'print_log',
                        lambda msg, logger=None, level=logging.INFO: logged.append((msg, level)))
    metric = _metric(data)
    metrics = metric.compute_metrics([])
    assert metrics['rbdc'] == 0.0 and metrics['tbdc'] == 0.0 and metrics['num_detections'] == 0
    assert ('VADRegionMetric: RBDC/TBDC of a set without any detection is 0',
            logging.WARNING) in logged


def test_bad_input(data: Path) -> None:
    metric = _metric(data)
    with pytest.raises(KeyError, match="box `tube_box`.*PersonTubeBox"):
        metric.process(None, _samples(box_key='bbox'))
    metric.process(None, _samples())
    # A missing region file of a clip with abnormal frames.
    (data / 'regions' / '01_0001.txt').unlink()
    with pytest.raises(FileNotFoundError, match='01_0001.txt not found, and the clip has 2 '
                                                'abnormal frames'):
        metric.compute_metrics(metric.results)
    # A region file of another frame count than the clip.
    (data / 'regions' / '01_0001.txt').write_text(REGIONS + '1,3,20,20,30,30\n')
    with pytest.raises(ValueError, match='01_0001.txt: a region in frame 3, but the clip has 3'):
        metric.compute_metrics(metric.results)
    # A track id repeated in one frame; a box of zero size.
    (data / 'regions' / '01_0001.txt').write_text(REGIONS + '1,2,0,0,5,5\n')
    with pytest.raises(ValueError, match='track 1 has two regions in frame 2'):
        metric.compute_metrics(metric.results)
    (data / 'regions' / '01_0001.txt').write_text(REGIONS + '2,2,5,5,5,9\n')
    with pytest.raises(ValueError, match='zero or negative size'):
        metric.compute_metrics(metric.results)
    # A missing pixel mask.
    (data / 'masks').mkdir()
    masks = _metric(data, region_dir=str(data / 'masks'), region_format='shanghaitech')
    with pytest.raises(FileNotFoundError, match='masks/01_0001.npy not found'):
        masks.compute_metrics([])
    # A detection box of zero size.
    (data / 'regions' / '01_0001.txt').write_text(REGIONS)
    flat = _metric(data)
    samples = _samples()
    samples[0]['tube_box'] = torch.tensor([5, 5, 5, 9])
    flat.process(None, samples)
    with pytest.raises(ValueError, match='detection box 0 .* zero or negative size.*tube_box'):
        flat.compute_metrics(flat.results)
    with pytest.raises(FileNotFoundError, match='region ground-truth folder not found'):
        _metric(data, region_dir=str(data / 'nowhere')).compute_metrics([])
    with pytest.raises(ValueError, match='region_format'):
        _metric(data, region_format='avenue')


def test_region_dir_of_the_synthetic_layout(tmp_path: Path) -> None:
    gt = tmp_path / 'gt' / 'val_frame_mask'
    metric = VADRegionMetric(gt_dir=str(gt) + '/')
    assert metric.region_dir == str(tmp_path / 'gt' / 'val_region_tracks')
    with pytest.raises(ValueError, match='give region_dir'):
        VADRegionMetric(gt_dir=str(tmp_path / 'gt'))
    with pytest.raises(ValueError, match='give region_dir'):
        VADRegionMetric(gt_dir=str(gt), region_format='shanghaitech')


def test_merge_results_json_keeps_other_entries(tmp_path: Path) -> None:
    path = tmp_path / 'vad_results.json'
    path.write_text(json.dumps(dict(metrics=dict(micro_auc=0.8), fill_value=1.5)))
    merge_results_json(str(path), dict(rbdc=0.25), 'region_detection', dict(iou_thr=0.1))
    assert json.loads(path.read_text()) == dict(
        metrics=dict(micro_auc=0.8, rbdc=0.25), fill_value=1.5,
        region_detection=dict(iou_thr=0.1))
    merge_results_json(str(tmp_path / 'new.json'), dict(tbdc=0.5), 'region_detection', {})
    assert json.loads((tmp_path / 'new.json').read_text())['metrics'] == dict(tbdc=0.5)


@pytest.mark.slow
def test_demo_config_on_a_synthetic_benchmark(tmp_path: Path) -> None:
    """configs/stgnf/stgnf_demo.py's test data carry each window's tube box into the metric,
    where it meets the benchmark's regions: scores that follow the regions get a high RBDC,
    scores that avoid them a low one."""
    from mmengine.config import Config
    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope

    from mgenet_mm.datasets import build_collate_fn
    from mgenet_mm.evaluation.functional import load_region_tracks
    from mgenet_mm.evaluation.functional.region_metrics import box_iou
    from mgenet_mm.synthetic import generate_benchmark, preset_config
    from mmaction.registry import DATASETS
    init_default_scope('mmaction')
    root = tmp_path / 'synthetic'
    generate_benchmark(preset_config('tiny'), str(root), log=None)
    cfg = Config.fromfile(str(Path(__file__).parents[3] / 'configs/stgnf/stgnf_demo.py'))
    loader = cfg.test_dataloader
    dataset = DATASETS.build(dict(loader.dataset, data_root=str(root)))
    batch = build_collate_fn(loader)([dataset[i] for i in range(len(dataset))])
    samples = batch['data_samples']
    assert all(len(s.tube_box) == 4 for s in samples)
    regions = {}
    for name in {s.clip_name for s in samples}:
        regions[name] = load_region_tracks(root / 'gt' / 'test_region_tracks' / f'{name}.txt')

    def overlap(sample) -> float:  # the window's best IoU with a region of its middle frame
        found = regions[sample.clip_name]
        here = found.frames == sample.start_frame + sample.seg_len // 2
        boxes = found.boxes[here]
        return float(box_iou(np.array([sample.tube_box]), boxes).max()) if len(boxes) else 0.0

    results = {}
    for sign in (1, -1):
        for sample in samples:
            sample.anomaly_scores = {'nll': torch.tensor(sign * overlap(sample))}
        evaluator = Evaluator(dict(cfg.test_evaluator, gt_dir=str(root / 'gt' / 'test_frame_mask'),
                                   kind_dir=None, event_dir=None, out_dir=str(tmp_path)))
        evaluator.dataset_meta = dataset.metainfo
        evaluator.process(samples)
        results[sign] = evaluator.evaluate(len(samples))
    # Scored by their overlap, all hits rank above all false positives (IoU < 0.1): RBDC is the
    # fraction of regions that some window's box hits, counted here directly.
    hit = [sum(box_iou(np.array([s.tube_box for s in samples if s.clip_name == name
                                 and s.start_frame + s.seg_len // 2 == frame]).reshape(-1, 4),
                       box[None]).max(initial=0) >= 0.1
               for frame, box in zip(found.frames, found.boxes))
           for name, found in regions.items()]
    expected = sum(hit) / sum(len(found.frames) for found in regions.values())
    assert results[1]['vad/rbdc'] == pytest.approx(expected) and expected > 0.3
    assert results[-1]['vad/rbdc'] < expected - 0.1
    assert results[1]['vad/tbdc'] > results[-1]['vad/tbdc']
    assert results[1]['vad/num_gt_tracks'] >= 3 and results[1]['vad/num_clips_without_regions'] == 0
