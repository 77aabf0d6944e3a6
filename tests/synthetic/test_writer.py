"""The synthetic benchmark's writer: layout, determinism, pose/pixel agreement, ground truth."""
import json
import os
import time
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np
import pytest

from mgenet_mm.datasets.pose_utils import read_tracked_pose_json
from mgenet_mm.synthetic import (KIND_CODES, check_layout, expected_files, generate_benchmark,
                                 plan_benchmark, plan_meta, preset_config)
from mgenet_mm.synthetic.vocabulary import ANOMALIES, EVENT_CODES
from tests.synthetic.helpers import HIPS, SHOULDERS, file_hashes


@pytest.fixture(scope='module')
def tiny(tmp_path_factory) -> Tuple[Path, dict, float]:
    root = tmp_path_factory.mktemp('synthetic') / 'tiny'
    start = time.perf_counter()
    meta = generate_benchmark(preset_config('tiny'), str(root), log=None)
    return root, meta, time.perf_counter() - start


def test_tiny_writes_exactly_the_layout(tiny) -> None:
    root, meta, _ = tiny
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
    """The same seed gives the same bytes, whatever the number of rendering processes."""
    root, _, _ = tiny
    generate_benchmark(preset_config('tiny'), str(tmp_path / 'again'), workers=2, log=None)
    first, second = file_hashes(root), file_hashes(tmp_path / 'again')
    assert first.keys() == second.keys()
    assert first == second


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


def test_validation_split_and_event_labels(tiny) -> None:
    """validation/ is laid out as testing/, with its own clips; events name each abnormal frame."""
    root, meta, _ = tiny
    assert meta['val'] and not set(meta['val']) & set(meta['test'])
    for name, clip in meta['val'].items():
        assert int(name.split('_')[1]) > 500  # validation numbers start at 501
        assert (root / 'validation' / 'frames' / name / '000.jpg').is_file()
        assert (root / 'validation' / 'videos' / f'{name}.avi').is_file()
        assert (root / 'pose' / 'val' / f'{name}_alphapose_tracked_person.json').is_file()
    for split in ('test', 'val'):
        names = json.loads((root / 'gt' / f'{split}_frame_events' / 'names.json').read_text())
        assert names == {str(code): f'{ANOMALIES[event]}/{event}'
                         for event, code in EVENT_CODES.items()}
        for name, clip in meta[split].items():
            mask = np.load(root / 'gt' / f'{split}_frame_mask' / f'{name}.npy')
            events = np.load(root / 'gt' / f'{split}_frame_events' / f'{name}.npy')
            np.testing.assert_array_equal(events > 0, mask > 0)
            if mask.any():  # one event per clip: every abnormal frame carries its code
                assert set(np.unique(events[mask > 0])) == {EVENT_CODES[clip['event']]}
    # a corrupted events file is caught by the layout check
    name = next(n for n, c in meta['test'].items() if c['abnormal_frames'])
    path = root / 'gt' / 'test_frame_events' / f'{name}.npy'
    original = path.read_bytes()
    try:
        events = np.load(path)
        events[events > 0] = EVENT_CODES['jog'] if events.max() != EVENT_CODES['jog'] else 1
        np.save(path, events)
        assert any('events are not all' in p for p in check_layout(str(root)))
    finally:
        path.write_bytes(original)


def test_region_ground_truth(tiny) -> None:
    """Every evaluation clip has its RBDC/TBDC regions: on abnormal frames, around the visible
    pixels of the anomalous person (its visible joints inside, its own labels on every edge)."""
    from types import SimpleNamespace

    from mgenet_mm.evaluation.functional import load_region_tracks
    from mgenet_mm.synthetic import ClipRenderer
    from mgenet_mm.synthetic.vocabulary import LABEL_STRIDE
    from mgenet_mm.synthetic.writer import anomalous_regions
    root, meta, _ = tiny
    plan = plan_benchmark(preset_config('tiny'))
    checked = 0
    for split in ('test', 'val'):
        for name, clip in meta[split].items():
            mask = np.load(root / 'gt' / f'{split}_frame_mask' / f'{name}.npy')
            regions = load_region_tracks(root / 'gt' / f'{split}_region_tracks' / f'{name}.txt',
                                         len(mask))
            assert mask[regions.frames].all()
            assert len(regions.frames) > 0.9 * mask.sum()  # a hidden person has no region
            if split != 'test' or not len(regions.frames) or checked:
                continue
            checked += 1
            clip_plan = next(c for c in plan.clips if c.name == name)
            renderer = ClipRenderer(clip_plan, plan.camera, plan.config.fps)
            anomalous = [i for i, p in enumerate(clip_plan.persons) if p.anomaly is not None]
            for t, (x1, y1, x2, y2) in zip(regions.frames[::7], regions.boxes[::7]):
                _, labels = renderer.render(int(t))
                x1, y1, x2, y2 = int(x1), int(y1), int(x2), int(y2)
                fits = []  # anomalous persons whose visible pixels the box bounds exactly
                for index in anomalous:
                    own = (labels >= (index + 1) * LABEL_STRIDE) & (
                        labels < (index + 2) * LABEL_STRIDE)
                    if (own[y1:y2, x1:x2].sum() == own.sum() > 0 and own[y1:y2, x1].any()
                            and own[y1:y2, x2 - 1].any() and own[y1, x1:x2].any()
                            and own[y2 - 1, x1:x2].any()):
                        fits.append(index)
                assert len(fits) == 1, (name, t)
                visible = renderer.visible_joints(labels, fits[0], int(t))
                joints = renderer.tracks[fits[0]].image[t, :17][visible]
                assert ((joints >= [x1 - 1, y1 - 1]) & (joints <= [x2, y2])).all()
    assert checked
    # A region on a normal frame is caught by the layout check.
    name = next(n for n, c in meta['test'].items() if c['abnormal_frames'])
    path = root / 'gt' / 'test_region_tracks' / f'{name}.txt'
    original = path.read_bytes()
    normal = int(np.flatnonzero(np.load(root / 'gt' / 'test_frame_mask' / f'{name}.npy') == 0)[0])
    try:
        path.write_bytes(original + f'9,{normal},0,0,5,5\n'.encode())
        assert any('regions on frames the mask marks normal' in p
                   for p in check_layout(str(root)))
    finally:
        path.write_bytes(original)
    # Tracks: one per run of performing frames; a frame without a visible box has no region.
    person = SimpleNamespace(anomaly='fall')
    tracks = [SimpleNamespace(person=SimpleNamespace(anomaly=None), performing=np.ones(6, bool)),
              SimpleNamespace(person=person, performing=np.array([0, 1, 1, 0, 1, 1], bool))]
    boxes = {(1, t): (t, 0, t + 2, 3) for t in (1, 2, 5)}  # frame 4: hidden
    regions = anomalous_regions(tracks, boxes)
    np.testing.assert_array_equal(regions.frames, [1, 2, 5])
    np.testing.assert_array_equal(regions.tracks, [0, 0, 1])
    np.testing.assert_array_equal(regions.boxes[2], [5, 0, 7, 3])
