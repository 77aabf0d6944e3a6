"""The synthetic benchmark's planner: seeds, the anomaly plan, and no give-away cues."""
import numpy as np
import pytest

from mgenet_mm.synthetic import (ANOMALIES, APPEARANCE_EVENTS, HAIRS, MOTION_EVENTS,
                                 OBJECT_COLOURS, SHIRTS, SKINS, TROUSERS, plan_benchmark,
                                 plan_meta, preset_config)


@pytest.fixture(scope='module')
def default_plan():
    return plan_benchmark(preset_config('default'))


def test_other_seed_other_benchmark() -> None:
    a = plan_benchmark(preset_config('tiny', seed=0))
    b = plan_benchmark(preset_config('tiny', seed=1))
    assert [c.n_frames for c in a.clips] != [c.n_frames for c in b.clips] or \
        [p.start_xz for c in a.clips for p in c.persons] != \
        [p.start_xz for c in b.clips for p in c.persons]


def test_default_plan_has_every_anomaly(default_plan) -> None:
    test = default_plan.split('test')
    anomalies = {p.anomaly for c in test for p in c.persons if p.anomalous}
    assert anomalies == set(ANOMALIES)
    assert set(MOTION_EVENTS) | set(APPEARANCE_EVENTS) | {'jog'} == anomalies
    kinds = {p.kind for c in test for p in c.persons if p.anomalous}
    assert kinds == {'motion', 'appearance', 'scene'}
    meta = plan_meta(default_plan)
    for kind in ('motion', 'appearance', 'scene'):
        assert sum(c['kind_frames'][kind] for c in meta['test'].values()) > 50, kind
    # Every anomalous person is actually seen performing.
    for clip in meta['test'].values():
        for person in clip['persons']:
            if person['anomalous']:
                assert person['anomaly_frames'] > 0


def test_running_is_normal_only_on_the_sports_ground(default_plan) -> None:
    def runs(person) -> bool:
        return any(mode in ('jog', 'sprint') for mode, _, _ in person.script)

    train = default_plan.split('train')
    assert not any(p.anomalous or (p.attachment not in (None,)) for c in train
                   for p in c.persons)
    running_scenes = {c.scene.kind for c in train for p in c.persons if runs(p)}
    assert running_scenes == {'sports'}
    test = default_plan.split('test')
    # Normal running in test clips too, only on the sports ground; running elsewhere is abnormal.
    normal_runners = [c for c in test for p in c.persons if runs(p) and not p.anomalous]
    assert normal_runners and all(c.scene.running_normal for c in normal_runners)
    assert all(c.scene.running_normal for c in test if c.category == 'normal')
    for clip in test:
        for p in clip.persons:
            if p.anomaly == 'jog':
                assert not clip.scene.running_normal and p.kind == 'scene'


def test_anomalies_are_not_given_away_by_clothing(default_plan) -> None:
    """Anomalous persons wear the same palette as everyone; anomalous objects use other colours."""
    clothes = set(SHIRTS) | set(TROUSERS) | set(SKINS) | set(HAIRS)
    for clip in default_plan.clips:
        for p in clip.persons:
            assert p.colours['shirt'] in SHIRTS and p.colours['trousers'] in TROUSERS
    for colours in OBJECT_COLOURS.values():
        assert not set(colours[:2]) & clothes
    heights = {a: [p.height for c in default_plan.clips for p in c.persons
                   if p.anomalous == a] for a in (True, False)}
    assert abs(np.mean(heights[True]) - np.mean(heights[False])) < 0.06


def _counts(clips, key):
    out = {}
    for clip in clips:
        out[key(clip)] = out.get(key(clip), 0) + 1
    return out


@pytest.mark.parametrize('split', ['test', 'val'])
def test_every_kind_and_event_is_represented(default_plan, split) -> None:
    """Test: >= 6 clips of each kind, >= 2 of each event type, kinds spread over the scenes that
    can hold them. Validation: every kind and every event type at least once."""
    clips = default_plan.split(split)
    per_kind = _counts(clips, lambda c: c.category)
    per_event = _counts([c for c in clips if c.event], lambda c: c.event)
    least_kind, least_event = (6, 2) if split == 'test' else (4, 1)
    for kind in ('motion', 'appearance', 'scene'):
        assert per_kind.get(kind, 0) >= least_kind, (kind, per_kind)
    for event in ANOMALIES:
        assert per_event.get(event, 0) >= least_event, (event, per_event)
    assert per_kind.get('normal', 0) >= 1
    for kind in ('motion', 'appearance', 'scene'):
        scenes = [s for s in default_plan.scenes if kind != 'scene' or not s.running_normal]
        spread = [sum(c.category == kind and c.scene == s for c in clips) for s in scenes]
        assert max(spread) - min(spread) <= 2 and min(spread) >= 1, (kind, spread)
    for clip in clips:
        if clip.category == 'scene':
            assert not clip.scene.running_normal


def test_validation_clips_are_their_own(default_plan) -> None:
    """Validation draws its own seeds: no clip shares a name, a seed or the lengths of test."""
    test, val = default_plan.split('test'), default_plan.split('val')
    assert not {c.name for c in test} & {c.name for c in val}
    assert not {c.seed for c in test} & {c.seed for c in val}
    assert [c.n_frames for c in test[:len(val)]] != [c.n_frames for c in val]
