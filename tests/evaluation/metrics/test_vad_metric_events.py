"""VADAUCMetric per event type and per component, on small hand-made ground-truth folders.

Windows of length 1 land on their own frame and ``sigmas=()`` turns smoothing off, so the final
per-frame scores are the window scores themselves and every AUC can be checked with sklearn."""
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mgenet_mm.evaluation.metrics import VADAUCMetric

FRAMES = 20
NAMES = {'1': 'motion/sprint', '5': 'appearance/carry_box', '9': 'scene/jog'}
KIND_OF = {0: 0, 1: 1, 5: 2, 9: 3}


def _events():
    events = {name: np.zeros(FRAMES, dtype=np.int64) for name in ('01_0001', '01_0002',
                                                                   '02_0001')}
    events['01_0001'][5:10] = 1
    events['01_0002'][10:15] = 5
    events['02_0001'][0:4] = 1
    events['02_0001'][12:17] = 9
    return events


def _write_gt(root: Path, events) -> dict:
    dirs = {sub: root / sub for sub in ('mask', 'kinds', 'events')}
    for folder in dirs.values():
        folder.mkdir(parents=True)
    for clip, codes in events.items():
        np.save(dirs['mask'] / f'{clip}.npy', (codes > 0).astype(np.uint8))
        np.save(dirs['kinds'] / f'{clip}.npy', np.vectorize(KIND_OF.get)(codes).astype(np.uint8))
        np.save(dirs['events'] / f'{clip}.npy', codes)
    (dirs['events'] / 'names.json').write_text(json.dumps(NAMES))
    return {k: str(v) for k, v in dirs.items()}


def _scores(components=('mo', 'app')):
    rng = np.random.default_rng(0)
    return {c: {clip: rng.normal(size=FRAMES) + (codes > 0) * (0.5 + i)
                for clip, codes in sorted(_events().items())}
            for i, c in enumerate(components)}


def _samples(scores):
    components = list(scores)
    clips = scores[components[0]]
    return [dict(clip_name=clip, person_id=0, start_frame=f,
                 anomaly_scores={c: float(scores[c][clip][f]) for c in components})
            for clip in clips for f in range(FRAMES)]


def _run(dirs, scores, tmp_path, **kwargs):
    weights = {c: 1.0 for c in scores} if len(scores) > 1 else None
    metric = VADAUCMetric(gt_dir=dirs['mask'], seg_len=1, sigmas=(), score_weights=weights,
                          kind_dir=dirs['kinds'], out_dir=str(tmp_path), **kwargs)
    metric.process(None, _samples(scores))
    return metric.compute_metrics(metric.results)


def _expected(per_clip, code, codes_by_clip):
    clips = sorted(per_clip)
    s = np.concatenate([per_clip[c] for c in clips])
    k = np.concatenate([codes_by_clip[c] for c in clips])
    keep = (k == 0) | (k == code)
    return roc_auc_score(k[keep] == code, s[keep])


def test_event_and_kind_keys_for_final_and_components(tmp_path: Path) -> None:
    dirs = _write_gt(tmp_path / 'gt', _events())
    scores = _scores()
    metrics = _run(dirs, scores, tmp_path, event_dir=dirs['events'])
    events = _events()
    kinds = {c: np.vectorize(KIND_OF.get)(e) for c, e in events.items()}
    # Components alone: raw scores (no smoothing) against sklearn.
    for component in ('mo', 'app'):
        for code, name in NAMES.items():
            assert metrics[f'micro_auc/{name}_{component}'] == pytest.approx(
                _expected(scores[component], int(code), events), abs=1e-12)
            assert f'macro_auc/{name}_{component}' in metrics
        for kind, name in ((1, 'motion'), (2, 'appearance'), (3, 'scene')):
            assert metrics[f'micro_auc/{name}_{component}'] == pytest.approx(
                _expected(scores[component], kind, kinds), abs=1e-12)
    # The final score and its counts.
    final = dict(np.load(tmp_path / 'vad_frame_scores.npz'))
    for code, name in NAMES.items():
        assert metrics[f'micro_auc/{name}'] == pytest.approx(
            _expected(final, int(code), events), abs=1e-12)
    assert metrics['num_frames/motion/sprint'] == 9
    assert metrics['num_frames/appearance/carry_box'] == 5
    assert 'num_frames/scene/jog_mo' not in metrics
    # Motion has one event type only, so its kind and event AUCs coincide.
    assert metrics['micro_auc/motion'] == metrics['micro_auc/motion/sprint']
    assert metrics['macro_auc/motion_app'] == metrics['macro_auc/motion/sprint_app']
    # macro per event: mean padded AUC over the clips holding the event; carry_box is in one
    # clip: its 5 event frames against the clip's 15 normal ones, plus the two pads.
    clip = final['01_0002']
    gt = np.concatenate(([0], events['01_0002'] == 5, [1]))
    bound = 2 * np.abs(clip).max() + 1
    assert metrics['macro_auc/appearance/carry_box'] == pytest.approx(
        roc_auc_score(gt, np.concatenate(([-bound], clip, [bound]))), abs=1e-12)
    saved = json.loads((tmp_path / 'vad_results.json').read_text())
    assert saved['event_names'] == NAMES
    assert saved['metrics']['micro_auc/scene/jog_app'] == metrics['micro_auc/scene/jog_app']


def test_component_frame_scores_file(tmp_path: Path) -> None:
    dirs = _write_gt(tmp_path / 'gt', _events())
    scores = _scores(('app', 'mm', 'mo'))
    metrics = _run(dirs, scores, tmp_path)
    alone = np.load(tmp_path / 'vad_component_frame_scores.npz')
    assert sorted(alone.files) == sorted(f'{c}/{clip}' for c in scores for clip in _events())
    for component, per_clip in scores.items():
        for clip, values in per_clip.items():
            np.testing.assert_allclose(alone[f'{component}/{clip}'], values, atol=1e-12)
    # Without events nothing changes in the keys of today.
    assert 'micro_auc/appearance_app' in metrics and 'micro_auc_mm' in metrics
    assert not any(key.count('/') > 1 for key in metrics)
    # One component (STG-NF): no component file.
    single = tmp_path / 'single'
    single.mkdir()
    _run(dirs, _scores(('nll',)), single, event_dir=dirs['events'])
    assert not (single / 'vad_component_frame_scores.npz').exists()
    assert (single / 'vad_frame_scores.npz').exists()


def test_event_names_given_instead_of_names_json(tmp_path: Path) -> None:
    dirs = _write_gt(tmp_path / 'gt', _events())
    (Path(dirs['events']) / 'names.json').unlink()
    metrics = _run(dirs, _scores(), tmp_path, event_dir=dirs['events'],
                   event_names={1: 'a/x', 5: 'b/y', 9: 'c/z'})
    assert {'micro_auc/a/x', 'micro_auc/b/y_mo', 'num_frames/c/z'} <= set(metrics)


@pytest.mark.parametrize('text, message', [
    (None, 'names.json not found'),
    ('{"1": "motion/sprint",', 'not valid JSON'),
    ('["motion/sprint"]', 'expected a non-empty object'),
    ('{"one": "motion/sprint", "5": "a", "9": "b"}', "code 'one' is not a positive integer"),
    ('{"1": "", "5": "a", "9": "b"}', 'event 1 has no name'),
    ('{"1": "x", "5": "x", "9": "b"}', r"\['x'\] are used twice"),
    ('{"1": "motion", "5": "a", "9": "b"}', 'kind names'),
    ('{"1": "motion/sprint", "5": "a"}', r'02_0001: events .*02_0001.npy hold codes \[9\]'),
])
def test_bad_names_json(tmp_path: Path, text, message) -> None:
    dirs = _write_gt(tmp_path / 'gt', _events())
    names = Path(dirs['events']) / 'names.json'
    names.unlink()
    if text is not None:
        names.write_text(text)
    with pytest.raises((ValueError, FileNotFoundError), match=message) as err:
        _run(dirs, _scores(), tmp_path, event_dir=dirs['events'])
    assert 'names.json' in str(err.value) or '02_0001.npy' in str(err.value)


def test_bad_event_files(tmp_path: Path) -> None:
    events = _events()
    dirs = _write_gt(tmp_path / 'gt', events)
    folder = Path(dirs['events'])
    run = lambda: _run(dirs, _scores(), tmp_path, event_dir=dirs['events'])  # noqa: E731
    (folder / '01_0002.npy').unlink()
    with pytest.raises(FileNotFoundError, match='clip 01_0002: per-frame events .*01_0002.npy'):
        run()
    np.save(folder / '01_0002.npy', events['01_0002'][:-1])
    with pytest.raises(ValueError, match='01_0002: events .*01_0002.npy has 19 frames, its '
                       'ground-truth mask 20'):
        run()
    shifted = np.roll(events['01_0002'], 1)
    np.save(folder / '01_0002.npy', shifted)
    with pytest.raises(ValueError, match=r'01_0002: events .* disagree with its ground-truth mask '
                       r'\(2 frames, the first 10\)'):
        run()
    np.save(folder / '01_0002.npy', np.where(events['01_0002'] > 0, -5, 0))
    with pytest.raises(ValueError, match='not non-negative integer codes'):
        run()
    (folder / '01_0002.npy').write_text('not an array')
    with pytest.raises(ValueError, match='01_0002: events .* is not a numpy array'):
        run()
    with pytest.raises(ValueError, match='event_names: event code 0'):
        VADAUCMetric(gt_dir=dirs['mask'], event_dir=dirs['events'], event_names={0: 'x/y'})
