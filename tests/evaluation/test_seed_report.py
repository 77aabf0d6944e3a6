"""Tables of the demo's runs: the report functions on hand-made result dicts (hand-computed
means and ddof=1 stds, table text), and the bootstrap rows against sklearn."""
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mgenet_mm.evaluation.seed_report import (BOOTSTRAP_COLUMNS, bootstrap_intervals,
                                              event_columns, format_intervals, format_mean_std,
                                              format_table, mean_std, report_tables,
                                              seeds_report, table_rows)
from tests.evaluation.seed_report_inputs import bootstrap_arrays


def _run(micro, kinds=None, events=None, components=(), event_names=None):
    """A test run's vad_results.json: overall micro (macro = micro - 0.1), per-kind micro, per
    event micro, and for each component the same keys suffixed, shifted by -0.01 each."""
    base = {'micro_auc': micro, 'macro_auc': micro - 0.1}
    base.update({f'micro_auc/{kind}': value for kind, value in (kinds or {}).items()})
    base.update({f'micro_auc/{event}': value for event, value in (events or {}).items()})
    metrics = dict(base)
    for i, component in enumerate(components):  # micro_auc_mo, micro_auc/motion_mo, ...
        metrics.update({f'{key}_{component}': value - 0.01 * (i + 1)
                        for key, value in base.items()})
    return dict(metrics=metrics, event_names=event_names, run_dir=f'/runs/{micro}')


def _summary(seed, micro, stgnf_micro, events=None):
    names = {'1': 'motion/sprint', '5': 'appearance/carry_box', '9': 'scene/jog'}  # no jog
    return dict(seed=seed, preset='tiny', data=f'/d{seed}', work_dir=f'/w{seed}',
                total_seconds=1.0,
                mgenet=_run(micro, {'motion': micro + 0.05}, events, ('mo', 'app', 'mm'), names),
                stgnf=_run(stgnf_micro, {'motion': stgnf_micro}, events, (), names))


def test_table_rows_and_format() -> None:
    mgenet = _run(0.8, {'motion': 0.9}, components=('mo', 'app'))
    rows = table_rows(mgenet, _run(0.7))
    assert [r[0] for r in rows] == ['MGENet (eq. 16)', 'S_mo alone', 'S_app alone',
                                    'STG-NF alone']
    assert rows[0][1:5] == [0.8, pytest.approx(0.7), 0.9, None]
    assert rows[1][1:5] == [pytest.approx(0.79), pytest.approx(0.69), pytest.approx(0.89), None]
    assert rows[2][1:4] == [pytest.approx(0.78), pytest.approx(0.68), pytest.approx(0.88)]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ['micro', 'macro', 'motion', 'micro', 'motion', 'macro',
                                'appearance', 'micro', 'appearance', 'macro', 'scene', 'micro',
                                'scene', 'macro']
    assert set(lines[1]) == {'-'} and len(lines[1]) == len(lines[0])
    assert lines[2].split() == ['MGENet', '(eq.', '16)', '80.0', '70.0', '90.0'] + ['-'] * 5


def test_mean_std_by_hand() -> None:
    per_seed = [{'A': {'x': 0.7, 'y': 0.5, 'z': None}},
                {'A': {'x': 0.8, 'y': None, 'z': None}, 'B': {'x': 0.1}},
                {'A': {'x': 0.9, 'y': None, 'z': None}}]
    stats = mean_std(per_seed)
    assert list(stats) == ['A', 'B'] and list(stats['A']) == ['x', 'y', 'z']
    assert stats['A']['x']['mean'] == pytest.approx(0.8)
    assert stats['A']['x']['std'] == pytest.approx(0.1)  # ddof=1: sqrt((0.01 + 0 + 0.01) / 2)
    assert stats['A']['x']['n'] == 3
    assert stats['A']['y'] == dict(mean=0.5, std=None, n=1)
    assert stats['A']['z'] == dict(mean=None, std=None, n=0)
    assert stats['B']['x'] == dict(mean=0.1, std=None, n=1)
    text = format_mean_std(stats, ['x', 'y', 'z', 'micro_auc/motion'], 3)
    lines = text.splitlines()
    assert lines[2].split() == ['A', '80.0', '+-', '10.0', '50.0*', '-', '-']
    assert lines[3].split() == ['B', '10.0*', '-', '-', '-']
    md = format_mean_std(stats, ['x'], 3, markdown=True).splitlines()
    assert md[0] == '|  | x |' and md[1] == '| --- | ---: |' and md[2] == '| A | 80.0 ± 10.0 |'


def test_format_intervals() -> None:
    intervals = {'M': {'micro_auc': dict(point=0.725, low=0.6, high=0.8),
                       'micro_auc/motion': dict(point=0.5, low=None, high=None)}}
    line = format_intervals(intervals, BOOTSTRAP_COLUMNS).splitlines()[2]
    assert line.split() == ['M', '72.5', '[60.0,', '80.0]', '-', '-', '-']


def test_event_columns_by_code_over_all_seeds() -> None:
    first = dict(mgenet=_run(0.5, event_names={'5': 'appearance/carry_box'}),
                 stgnf=_run(0.5))
    second = dict(mgenet=_run(0.5, event_names={'9': 'scene/jog', '1': 'motion/sprint'}),
                  stgnf=_run(0.5, event_names={'5': 'appearance/carry_box'}))
    assert event_columns([first, second]) == [
        'micro_auc/motion/sprint', 'micro_auc/appearance/carry_box', 'micro_auc/scene/jog']
    assert event_columns([dict(mgenet=_run(0.5), stgnf=_run(0.5))]) == []


def test_seeds_report_and_tables() -> None:
    events = {'motion/sprint': 0.6, 'appearance/carry_box': 0.7}
    summaries = [_summary(0, 0.70, 0.60, events), _summary(1, 0.80, 0.64, events),
                 _summary(2, 0.90, 0.62, dict(events, **{'appearance/carry_box': 0.8}))]
    intervals = {'MGENet (eq. 16)': {'micro_auc': dict(point=0.7, low=0.6, high=0.75)}}
    report = seeds_report(summaries, intervals, num_resamples=1000)
    assert report['seeds'] == [0, 1, 2] and report['std_ddof'] == 1
    assert report['event_columns'] == ['micro_auc/motion/sprint',
                                       'micro_auc/appearance/carry_box']  # no jog anywhere
    assert 'micro_auc/scene/jog' not in report['per_seed']['0']['S_mo alone']
    assert report['per_seed']['1']['STG-NF alone']['micro_auc'] == 0.64
    assert report['per_seed']['2']['S_app alone']['micro_auc/appearance/carry_box'] == \
        pytest.approx(0.78)
    cell = report['mean_std']['MGENet (eq. 16)']['micro_auc']
    assert cell['mean'] == pytest.approx(0.8) and cell['std'] == pytest.approx(0.1)
    events_cell = report['mean_std']['S_mo alone']['micro_auc/appearance/carry_box']
    assert events_cell['mean'] == pytest.approx(np.mean([0.69, 0.69, 0.79]))
    assert events_cell['std'] == pytest.approx(np.std([0.69, 0.69, 0.79], ddof=1))
    assert report['runs']['2'] == dict(data='/d2', work_dir='/w2', mgenet_run='/runs/0.9',
                                       stgnf_run='/runs/0.62', total_seconds=1.0)
    assert report['bootstrap']['seed'] == 0 and report['bootstrap']['rows'] == intervals
    json.dumps(report)  # the payload is plain JSON
    text = report_tables(report)
    assert 'ddof=1' in text and '±' not in text
    lines = text.splitlines()
    mgenet_lines = [line.split() for line in lines if line.startswith('MGENet (eq. 16)')]
    # Main table: micro, macro, motion micro; then the events table; then the intervals.
    assert mgenet_lines[0][3:12] == ['80.0', '+-', '10.0', '70.0', '+-', '10.0', '85.0', '+-',
                                     '10.0']
    assert mgenet_lines[1][3:] == ['60.0', '+-', '0.0', '73.3', '+-', '5.8']  # events
    stgnf_lines = [line.split() for line in lines if line.startswith('STG-NF alone')]
    assert stgnf_lines[0][2:5] == ['62.0', '+-', '2.0']
    assert stgnf_lines[1][2:] == ['60.0', '+-', '0.0', '73.3', '+-', '5.8']
    assert '70.0 [60.0, 75.0]' in text
    md = report_tables(report, markdown=True)
    assert '| MGENet (eq. 16) | 80.0 ± 10.0 |' in md and '| appearance/carry_box |' in md


def _bootstrap_inputs():
    """MGENet's and STG-NF's final scores (the same arrays), the components ``mo`` and ``mm``
    alone, and the ground truth of :func:`tests.evaluation.seed_report_inputs.bootstrap_arrays`."""
    masks, kinds, final, alone = bootstrap_arrays()
    scores = {'MGENet (eq. 16)': final,
              'S_mo alone': {c: alone[f'mo/{c}'] for c in masks},
              'S_mm alone': {c: alone[f'mm/{c}'] for c in masks},
              'STG-NF alone': final}
    return scores, masks, kinds


def test_bootstrap_intervals() -> None:
    scores, masks, kinds = _bootstrap_inputs()
    intervals = bootstrap_intervals(scores, masks, kinds, num_resamples=200)
    clips = sorted(masks)
    for row in ('MGENet (eq. 16)', 'S_mo alone'):
        s = np.concatenate([scores[row][c] for c in clips])
        g = np.concatenate([masks[c] for c in clips])
        k = np.concatenate([kinds[c] for c in clips])
        assert intervals[row]['micro_auc']['point'] == pytest.approx(roc_auc_score(g, s))
        keep = k != 2
        assert intervals[row]['micro_auc/motion']['point'] == pytest.approx(
            roc_auc_score(k[keep] == 1, s[keep]))
        assert 'micro_auc/scene' not in intervals[row]
    # Same clips, same seed: the final score's intervals equal STG-NF's (same scores here).
    assert intervals['MGENet (eq. 16)'] == intervals['STG-NF alone']
