"""The synthetic benchmark generator: layout, determinism, pose/pixel agreement, anomaly plan."""
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np
import pytest

from mgenet_mm.datasets.pose_utils import read_tracked_pose_json
from mgenet_mm.datasets.synthetic import (ANOMALIES, APPEARANCE_EVENTS, HAIRS, KIND_CODES,
                                          JOINT_PARTS, LABEL_STRIDE, MOTION_EVENTS,
                                          OBJECT_COLOURS, PARTS, SHIRTS, SKINS, TROUSERS,
                                          VISIBLE, ClipRenderer, check_layout, expected_files,
                                          generate_benchmark, plan_benchmark, plan_meta,
                                          preset_config)
from tests.conftest import REPO, load_tool, run_tool

SHOULDERS, HIPS = (5, 6), (11, 12)


def _hashes(root: Path) -> Dict[str, str]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope='module')
def tiny(tmp_path_factory) -> Tuple[Path, dict, float]:
    root = tmp_path_factory.mktemp('synthetic') / 'tiny'
    start = time.perf_counter()
    meta = generate_benchmark(preset_config('tiny'), str(root), log=None)
    return root, meta, time.perf_counter() - start


@pytest.fixture(scope='module')
def default_plan():
    return plan_benchmark(preset_config('default'))


def test_tiny_writes_exactly_the_layout(tiny) -> None:
    root, meta, seconds = tiny
    # A few seconds alone; generous because the test machine's cores are shared.
    assert seconds < 60, f'tiny preset took {seconds:.1f}s'
    assert check_layout(str(root)) == []
    found = sorted(str(p.relative_to(root)).replace(os.sep, '/')
                   for p in root.rglob('*') if p.is_file())
    assert found == expected_files(meta)
    assert meta['train'] and meta['test']
    for name in meta['train']:
        assert (root / 'training' / 'videos' / f'{name}.avi').is_file()
        assert len(name.split('_')[1]) == 3  # ShanghaiTech names: 01_001 (train), 01_0014 (test)
        keys = [k for track in json.loads(
            (root / 'pose' / 'train' / f'{name}_alphapose_tracked_person.json').read_text())
            .values() for k in track]
        assert keys and all(len(k) == 4 for k in keys)  # zero-padded to 4 digits
    for name, clip in meta['test'].items():
        assert len(name.split('_')[1]) == 4
        assert (root / 'testing' / 'frames' / name / '000.jpg').is_file()
        data = json.loads(
            (root / 'pose' / 'test' / f'{name}_alphapose_tracked_person.json').read_text())
        keys = [k for track in data.values() for k in track]
        assert keys and all(len(k) == 3 for k in keys)
        assert all(pid.isdigit() for pid in data)


def test_same_seed_same_bytes(tiny, tmp_path) -> None:
    root, _, _ = tiny
    generate_benchmark(preset_config('tiny'), str(tmp_path / 'again'), log=None)
    first, second = _hashes(root), _hashes(tmp_path / 'again')
    assert first.keys() == second.keys()
    assert first == second


def test_other_seed_other_benchmark() -> None:
    a = plan_benchmark(preset_config('tiny', seed=0))
    b = plan_benchmark(preset_config('tiny', seed=1))
    assert [c.n_frames for c in a.clips] != [c.n_frames for c in b.clips] or \
        [p.start_xz for c in a.clips for p in c.persons] != \
        [p.start_xz for c in b.clips for p in c.persons]


def test_rendered_pixels_follow_the_skeleton() -> None:
    """Where a shoulder (hip) is visible, the rendered colour is the shirt (trousers).

    Exactly so where the joint lies inside its parts (its 3x3 label neighbourhood is all the
    joint's own parts); on a part's edge anti-aliasing blends neighbouring colours, so there the
    colour is only close.
    """
    plan = plan_benchmark(preset_config('tiny'))
    visible = interior = exact = close = 0
    for clip in plan.clips:
        renderer = ClipRenderer(clip, plan.camera, plan.config.fps)
        for t in range(0, clip.n_frames, 5):
            img, labels = renderer.render(t)
            for i, track in enumerate(renderer.tracks):
                if not track.on_screen[t]:
                    continue
                vis = renderer.joint_visibility(labels, i, t)
                kp = track.image[t, :17]
                base = (i + 1) * LABEL_STRIDE
                for joints, key in ((SHOULDERS, 'shirt'), (HIPS, 'trousers')):
                    for j in joints:
                        if vis[j] != VISIBLE:
                            continue
                        x, y = int(round(kp[j, 0])), int(round(kp[j, 1]))
                        expected = np.array(track.person.colours[key])
                        visible += 1
                        close += np.abs(img[y, x].astype(int) - expected).max() <= 40
                        around = labels[y - 1:y + 2, x - 1:x + 2].astype(int) - base
                        own = {PARTS[p] for p in JOINT_PARTS[j]}
                        if around.shape == (3, 3) and set(around.ravel()) <= own:
                            interior += 1
                            exact += tuple(img[y, x]) == tuple(expected)
    assert visible > 200 and interior > 0.5 * visible, (interior, visible)
    assert exact == interior
    assert close / visible > 0.9, (close, visible)


def test_pose_json_follows_the_written_frames(tiny) -> None:
    """High-confidence shoulders and hips of the JSON land on the person's clothes in the JPEGs."""
    root, meta, _ = tiny
    rng = np.random.default_rng(0)
    hits = decoys = checked = 0
    for name, clip in meta['test'].items():
        persons = {p['id']: p for p in clip['persons']}
        poses = read_tracked_pose_json(
            str(root / 'pose' / 'test' / f'{name}_alphapose_tracked_person.json'))
        frames = {}
        for pid, (fr, kps, _) in poses.items():
            others = [q for q in persons if q != pid]
            for t, kp in zip(fr, kps):
                if t not in frames:
                    frames[t] = cv2.imread(str(root / 'testing' / 'frames' / name / f'{t:03d}.jpg'))
                img = frames[t].astype(np.int64)
                for joints, key in ((SHOULDERS, 'shirt_bgr'), (HIPS, 'trousers_bgr')):
                    for j in joints:
                        if kp[j, 2] < 0.52:  # confidences >= 0.52 are given to visible joints
                            continue
                        x, y = int(round(kp[j, 0])), int(round(kp[j, 1]))
                        colour = img[y, x]
                        checked += 1
                        hits += np.linalg.norm(colour - persons[pid][key]) < 45
                        if others:
                            decoy = persons[int(rng.choice(others))][key]
                            decoys += np.linalg.norm(colour - decoy) < 45
    assert checked > 150
    assert hits / checked > 0.8, (hits, checked)
    assert decoys / checked < 0.35, (decoys, checked)


def test_pose_json_is_realistic(tiny) -> None:
    """Noise, confidences and dropped frames, as a tracked pose estimator gives them."""
    root, meta, _ = tiny
    confidences, gaps, noise = [], 0, []
    for split in ('train', 'test'):
        for name in meta[split]:
            poses = read_tracked_pose_json(
                str(root / 'pose' / split / f'{name}_alphapose_tracked_person.json'))
            for frames, kps, scores in poses.values():
                confidences.append(kps[:, :, 2].ravel())
                gaps += int((np.diff(frames) > 1).sum())
                assert np.all(scores > 0) and np.all(scores <= 1.2)
                # Frame-to-frame jitter of a visible shoulder while standing still would be the
                # noise; use second differences over consecutive frames as its proxy.
                ok = (np.diff(frames, 2) == 0) & (np.diff(frames)[:-1] == 1)
                if ok.sum() > 5:
                    dd = np.diff(kps[:, 5, :2], 2, axis=0)[ok]
                    noise.append(np.median(np.abs(dd)))
    conf = np.concatenate(confidences)
    assert 0.5 < np.mean(conf >= 0.52) < 0.95  # mostly visible, some hidden joints
    assert conf.min() >= 0 and conf.max() <= 1
    assert gaps > 0  # detections go missing now and then
    assert 0.3 < float(np.median(noise)) < 4.0  # ~1-2 px keypoint noise, not exact


def test_ground_truth_aligns_with_frames(tiny) -> None:
    root, meta, _ = tiny
    saw_abnormal = False
    for name, clip in meta['test'].items():
        n = len(list((root / 'testing' / 'frames' / name).glob('*.jpg')))
        mask = np.load(root / 'gt' / 'test_frame_mask' / f'{name}.npy')
        kinds = np.load(root / 'gt' / 'test_frame_kinds' / f'{name}.npy')
        cap = cv2.VideoCapture(str(root / 'testing' / 'videos' / f'{name}.avi'))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
        cap.release()
        assert mask.shape == kinds.shape == (n,) == (clip['frames'],)
        assert set(np.unique(mask)) <= {0, 1}
        assert set(np.unique(kinds)) <= set(KIND_CODES.values())
        np.testing.assert_array_equal(mask, kinds > 0)
        # Abnormal frames are exactly those where an anomalous person performs on screen.
        expected = np.zeros(n, dtype=bool)
        for person in clip['persons']:
            if person['anomalous'] and person['anomaly_span']:
                a, b = person['anomaly_span']
                expected[a:b + 1] = True
                assert person['kind'] in ('motion', 'appearance', 'scene')
        assert np.all(mask[~expected] == 0)
        saw_abnormal |= bool(mask.any())
    assert saw_abnormal


def test_ground_truth_needs_no_rendering(tiny) -> None:
    _, meta, _ = tiny
    planned = plan_meta(plan_benchmark(preset_config('tiny')))
    for name, clip in meta['test'].items():
        assert planned['test'][name]['abnormal_frames'] == clip['abnormal_frames']


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


def _load_tool():
    return load_tool('tools/data/make_synthetic.py')


@pytest.mark.slow
def test_cli_generates_checks_and_keeps(tmp_path, capsys) -> None:
    out = tmp_path / 'syn'
    tool = str(REPO / 'tools' / 'data' / 'make_synthetic.py')
    args = ('--out', str(out), '--preset', 'tiny', '--test-clips', '1', '--train-clips', '1',
            '--frames', '48', '--scenes', '3', '--quiet')
    proc = run_tool(tool, *args, '--montage', str(tmp_path / 'montage.png'), cwd=tmp_path)
    assert 'layout OK' in proc.stdout and 'windows_T24_stride6' in proc.stdout
    assert cv2.imread(str(tmp_path / 'montage.png')) is not None
    meta = json.loads((out / 'meta.json').read_text())
    assert all(c['frames'] == 48 for c in meta['test'].values())
    before = _hashes(out)
    # The same benchmark again: kept as it is (in-process, to spare a second package import).
    main = _load_tool().main
    assert main(list(args)) == 0
    assert 'already holds this benchmark' in capsys.readouterr().out
    assert _hashes(out) == before
    assert main(['--out', str(out), '--check']) == 0
    assert 'layout OK' in capsys.readouterr().out
    # Another configuration is refused unless overwriting, which leaves no stale files.
    assert main(['--out', str(out), '--preset', 'tiny', '--frames', '30', '--scenes', '2',
                 '--quiet']) == 2
    assert 'overwrite' in capsys.readouterr().err
    smaller = preset_config('tiny', frames=(30, 30), scenes=2)
    with pytest.raises(FileExistsError):
        generate_benchmark(smaller, str(out), log=None)
    generate_benchmark(smaller, str(out), log=None, overwrite=True)
    assert check_layout(str(out)) == []
    assert len(json.loads((out / 'meta.json').read_text())['test']) == 2
    (out / 'gt' / 'test_frame_mask' / '01_0001.npy').unlink()
    assert any('missing gt/test_frame_mask/01_0001.npy' in p for p in check_layout(str(out)))
    assert main(['--out', str(out), '--check']) == 1
