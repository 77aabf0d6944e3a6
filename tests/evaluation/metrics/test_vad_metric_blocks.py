"""VADAUCMetric's storage: one block of arrays per batch, the same metrics as per-window dicts."""
from pathlib import Path

import numpy as np
import pytest
import torch

from mgenet_mm.evaluation.metrics import VADAUCMetric
from mgenet_mm.evaluation.metrics import vad_metric as vad_metric_module
from mgenet_mm.evaluation.metrics.vad_metric import window_table


def _samples(reference, extra: bool = False):
    names = {(int(n[:2]), int(n[3:])): str(n) for n in reference['clips']}
    noise = np.random.default_rng(0).normal(size=len(reference['metadata']))
    samples = []
    for m, v, e in zip(reference['metadata'], -reference['normality'], noise):
        scores = dict(nll=float(v))
        if extra:
            scores['noise'] = torch.tensor(e, dtype=torch.float64)  # tensors are read too
        samples.append(dict(clip_name=names[(int(m[0]), int(m[1]))], person_id=int(m[2]),
                            start_frame=int(m[3]), anomaly_scores=scores))
    return samples


def _per_window(samples):
    """The per-window dicts, built independently of ``process``."""
    return [dict(clip=s['clip_name'], person=s['person_id'], start=s['start_frame'],
                 scores={k: float(v) for k, v in s['anomaly_scores'].items()}) for s in samples]


@pytest.fixture(scope='module')
def reference(fixtures_dir):
    return np.load(fixtures_dir / 'stgnf_reference' / 'expected_sht.npz')


@pytest.fixture
def gt_dir(fixtures_dir: Path) -> str:
    return str(fixtures_dir / 'stgnf_reference' / 'gt' / 'test_frame_mask')


def test_one_block_per_batch() -> None:
    metric = VADAUCMetric(gt_dir='unused')
    batch = [dict(clip_name='01_0014', person_id=3, start_frame=10,
                  anomaly_scores=dict(nll=torch.tensor(1.5), mo=2.0)),
             dict(clip_name='01_0015', person_id=torch.tensor(4), start_frame=0,
                  anomaly_scores=dict(mo=-1.0, nll=0.25))]
    metric.process(None, batch)
    metric.process(None, batch[:1])
    metric.process(None, [])
    assert len(metric.results) == 2
    block = metric.results[0]
    assert block['clips'].tolist() == ['01_0014', '01_0015']
    assert block['person'].tolist() == [3, 4] and block['person'].dtype == np.int64
    assert block['start'].tolist() == [10, 0]
    assert sorted(block['scores']) == ['mo', 'nll']
    np.testing.assert_array_equal(block['scores']['nll'], [1.5, 0.25])
    np.testing.assert_array_equal(block['scores']['mo'], [2.0, -1.0])
    names, person_start, scores = window_table(metric.results)
    assert names == ['01_0014', '01_0015', '01_0014']
    np.testing.assert_array_equal(person_start, [[3, 10], [4, 0], [3, 10]])
    np.testing.assert_array_equal(scores['nll'], [1.5, 0.25, 1.5])


def test_window_table_mixes_both_forms() -> None:
    block = dict(clips=np.array(['a', 'b']), person=np.array([1, 2]), start=np.array([5, 6]),
                 scores=dict(x=np.array([0.5, 0.75])))
    window = dict(clip='c', person=7, start=8, scores=dict(x=-1.0))
    names, person_start, scores = window_table([window, block])
    assert names == ['c', 'a', 'b']
    np.testing.assert_array_equal(person_start, [[7, 8], [1, 5], [2, 6]])
    np.testing.assert_array_equal(scores['x'], [-1.0, 0.5, 0.75])
    empty_names, empty_rows, empty_scores = window_table([])
    assert empty_names == [] and empty_rows.shape == (0, 2) and empty_scores == {}


@pytest.mark.parametrize('extra', [False, True])
def test_blocks_give_the_metrics_of_per_window_dicts(reference, gt_dir: str, tmp_path: Path,
                                                     extra: bool) -> None:
    samples = _samples(reference, extra)
    weights = dict(nll=1.0, noise=0.1) if extra else None
    blocks = VADAUCMetric(gt_dir=gt_dir, score_weights=weights, out_dir=str(tmp_path / 'b'))
    for start in range(0, len(samples), 700):
        blocks.process(None, samples[start:start + 700])
    assert len(blocks.results) == -(-len(samples) // 700)
    got = blocks.compute_metrics(blocks.results)
    plain = VADAUCMetric(gt_dir=gt_dir, score_weights=weights, out_dir=str(tmp_path / 'p'))
    want = plain.compute_metrics(_per_window(samples))
    assert got == want
    assert got['num_windows'] == len(samples)
    if not extra:
        assert abs(got['micro_auc'] - float(reference['auc'])) < 1e-6
    # Half blocks, half dicts: the same again.
    half = len(samples) // 2
    mixed = VADAUCMetric(gt_dir=gt_dir, score_weights=weights, out_dir=str(tmp_path / 'm'))
    mixed.process(None, samples[:half])
    assert mixed.compute_metrics(mixed.results + _per_window(samples[half:])) == want


def test_excluded_clips_leave_blocks(reference, gt_dir: str, tmp_path: Path) -> None:
    samples = _samples(reference)
    dropped = samples[0]['clip_name']
    metric = VADAUCMetric(gt_dir=gt_dir, exclude_clips=[dropped], out_dir=str(tmp_path))
    metric.process(None, samples)
    got = metric.compute_metrics(metric.results)
    assert got['num_windows'] == sum(s['clip_name'] != dropped for s in samples)
    assert got == metric.compute_metrics(_per_window(samples))


def test_components_of_some_windows_only_are_an_error() -> None:
    metric = VADAUCMetric(gt_dir='unused')
    one = dict(clip_name='a', person_id=1, start_frame=0, anomaly_scores=dict(mo=1.0))
    two = dict(clip_name='a', person_id=2, start_frame=0, anomaly_scores=dict(mo=1.0, app=2.0))
    with pytest.raises(ValueError, match=r"\['app'\] are present in some windows only"):
        metric.process(None, [one, two])
    metric.process(None, [one])
    metric.process(None, [two])
    with pytest.raises(ValueError, match=r"\['app'\] are present in some windows only"):
        window_table(metric.results)


def test_missing_anomaly_scores_is_an_error() -> None:
    with pytest.raises(KeyError, match='anomaly_scores'):
        VADAUCMetric(gt_dir='unused').process(None, [dict(clip_name='a', person_id=1,
                                                          start_frame=0)])


def test_per_window_dicts_for_subclasses_and_several_ranks(monkeypatch) -> None:
    class Extended(VADAUCMetric):
        def process(self, data_batch, data_samples):
            super().process(data_batch, data_samples)

    class ExtendedBlocks(Extended):
        per_window_results = False

    samples = [dict(clip_name='a', person_id=i, start_frame=0, anomaly_scores=dict(x=float(i)))
               for i in range(3)]
    assert Extended.per_window_results and not VADAUCMetric.per_window_results
    extended = Extended(gt_dir='unused')
    extended.process(None, samples)
    assert extended.results == _per_window(samples)
    blocks = ExtendedBlocks(gt_dir='unused')
    blocks.process(None, samples)
    assert len(blocks.results) == 1
    # On several ranks, collect_results must see one entry per window to drop the padding.
    monkeypatch.setattr(vad_metric_module, 'get_world_size', lambda: 2)
    ranked = VADAUCMetric(gt_dir='unused')
    ranked.process(None, samples)
    assert ranked.results == _per_window(samples)
