"""Scoring one video: init_model, score_video (offline), StreamingScorer (streaming).

The offline path is held to the official STG-NF numbers; streaming is held to the offline
path on the same video, for STG-NF and for a small random-weight MGENet with all three score
components.
"""
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mgenet_mm.apis import Calibration, StreamingScorer, init_model, score_video, stream_video
from mgenet_mm.apis.inference import (InferenceError, frame_scores_from_windows,
                                      mix_components)
from mgenet_mm.apis.streaming import smoothing_radius
from mgenet_mm.evaluation.functional.vad_scores import (fill_empty_frames,
                                                        windows_to_frame_scores)
from mgenet_mm.evaluation.metrics.vad_metric import VADAUCMetric
from mgenet_mm.models.modules.gap_whitening import gap_moments
from tests.conftest import REPO

STGNF_FIXTURE_CONFIG = str(REPO / 'configs' / 'stgnf' / 'stgnf_sht_fixture.py')
STGNF_DEMO_CONFIG = str(REPO / 'configs' / 'stgnf' / 'stgnf_demo.py')
MGENET_DEMO_CONFIG = str(REPO / 'configs' / 'mgenet' / 'demo.py')
FRAME_SIZE = (200, 150)  # (width, height) of the test videos


@pytest.fixture(scope='module', autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------- test data
def walking_pose(t: int, x0: float, speed: float, rng: np.random.Generator) -> np.ndarray:
    """A COCO-17 skeleton (17, 3) walking right, limbs swinging, with keypoint noise."""
    base = np.array([[0, -40], [-2, -42], [2, -42], [-4, -40], [4, -40], [-8, -30], [8, -30],
                     [-10, -18], [10, -18], [-11, -7], [11, -7], [-5, -5], [5, -5], [-6, 8],
                     [6, 8], [-6, 22], [6, 22]], dtype=np.float64)
    swing = np.sin(t / 3.0) * 5
    base[[9, 15], 0] += swing
    base[[10, 16], 0] -= swing
    xy = base + [x0 + speed * t, 80] + rng.normal(0, 0.7, base.shape)
    return np.concatenate([xy, rng.uniform(0.6, 0.95, (17, 1))], axis=1)


def write_scene(tmp: Path, num_frames: int = 60):
    """A video of two people (coloured blobs following their skeletons) and their poses.

    Person 1 walks throughout, with three frames the pose estimator missed (20, 21 and 33: left
    out of the pose file, since a keypoint must be a finite number); person 2 enters at frame 14.
    Returns (video path, pose dict).
    """
    rng = np.random.default_rng(0)
    poses = {'1': {}, '2': {}}
    path = tmp / 'walk.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25, FRAME_SIZE)
    assert writer.isOpened()
    for t in range(num_frames):
        frame = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), (90, 110, 100), np.uint8)
        cv2.rectangle(frame, (0, 110), (FRAME_SIZE[0], FRAME_SIZE[1]), (60, 60, 60), -1)
        people = [('1', walking_pose(t, 20, 1.5, rng), (40, 40, 200))]
        if t >= 14:
            people.append(('2', walking_pose(t - 14, 150, -1.2, rng), (200, 120, 40)))
        for person, pose, colour in people:
            for x, y in pose[:, :2]:
                cv2.circle(frame, (int(x), int(y)), 4, colour, -1)
            if person == '1' and t in (20, 21, 33):
                continue  # the pose estimator missed this frame: it is left out
            keypoints = pose.copy()
            poses[person][f'{t:04d}'] = {'keypoints': keypoints.reshape(-1).tolist(),
                                         'scores': 0.8}
        writer.write(frame)
    writer.release()
    return path, poses


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('scene')
    video, poses = write_scene(tmp)
    pose_path = tmp / 'walk_alphapose_tracked_person.json'
    pose_path.write_text(json.dumps(poses))
    return dict(video=str(video), poses=poses, pose_path=str(pose_path), tmp=tmp)


@pytest.fixture(scope='module')
def mgenet_checkpoint(tmp_path_factory):
    """A random-weight demo MGENet saved the way a feature-cache run saves it: without the
    frozen cube embedding and scene encoder; its BSMM holds random items so that S_mm exists."""
    tmp = tmp_path_factory.mktemp('mgenet')
    model = init_model(MGENET_DEMO_CONFIG, None, cfg_options={'model.guidance.init_cfg': None})
    with torch.no_grad():
        model.bsmm.items.uniform_(0, 1)
        model.bsmm.num_written.fill_(10)
        # the whitened level-1 gap of the demo config, fitted on random gaps
        generator = torch.Generator().manual_seed(0)
        model.motion_whitening.fit(*gap_moments(torch.randn(40, 24, 36, generator=generator)))
    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith(('cube_embed.', 'scene_encoder.'))}
    path = tmp / 'mgenet_demo.pth'
    torch.save({'state_dict': state, 'meta': {'epoch': 1}}, path)
    return str(path)


def load_mgenet(checkpoint: str):
    return init_model(MGENET_DEMO_CONFIG, checkpoint,
                      cfg_options={'model.guidance.init_cfg': None})


# ------------------------------------------------------------------------------- maths
def test_mix_components_equals_the_metric_mix_with_the_set_ranges():
    rng = np.random.default_rng(1)
    scores = {'mo': rng.normal(5, 2, 40), 'app': rng.normal(0, 1, 40), 'mm': np.full(40, 0.3)}
    weights = dict(mo=1.0, app=0.1, mm=0.1)
    metric = VADAUCMetric(gt_dir='unused', score_weights=weights)
    ranges = {k: (v.min(), v.max()) for k, v in scores.items()}
    np.testing.assert_allclose(mix_components(scores, weights, ranges), metric._mix(scores),
                               rtol=0, atol=1e-12)
    # Fixed ranges wider than the video's: eq. 16 by hand.
    wide = {'mo': (0.0, 10.0), 'app': (-5.0, 5.0), 'mm': (0.0, 1.0)}
    expected = (scores['mo'] / 10 + 0.1 * (scores['app'] + 5) / 10 + 0.1 * scores['mm'])
    np.testing.assert_allclose(mix_components(scores, weights, wide), expected, atol=1e-12)
    with pytest.raises(InferenceError, match='score_weights'):
        mix_components(scores, None, ranges)


def test_frame_scores_follow_the_protocol():
    # Two persons, T = 4: windows land on start + 2; a frame takes its most anomalous person;
    # uncovered frames take the fill value; then smoothing.
    anomaly = np.array([1.0, 3.0, 2.0])
    person_start = np.array([[1, 0], [2, 0], [1, 3]])
    raw, smoothed, covered, fill = frame_scores_from_windows(anomaly, person_start, 8, 4,
                                                             fill_anomaly=-1.0, sigmas=())
    np.testing.assert_array_equal(raw, [-1, -1, 3, -1, -1, 2, -1, -1])
    np.testing.assert_array_equal(covered, [0, 0, 1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(smoothed, raw)
    # Without a fill value: the least anomalous scored frame of the clip (the metric's rule).
    raw, _, _, fill = frame_scores_from_windows(anomaly, person_start, 8, 4, sigmas=())
    assert fill == 2.0 and raw[0] == 2.0
    assert smoothing_radius((1, 2, 3, 4, 5, 6)) == 84


# ------------------------------------------------------------------------------- offline
def test_score_video_reproduces_the_official_stgnf_frame_scores(fixtures_dir):
    """One fixture clip through score_video equals the reference's final frame scores when the
    reference set's fill value is given (the only number that depends on the other clips)."""
    ref_dir = fixtures_dir / 'stgnf_reference'
    reference = np.load(ref_dir / 'expected_sht.npz')
    clips = sorted(str(c) for c in reference['clips'])
    gt = {c: np.load(ref_dir / 'gt' / 'test_frame_mask' / f'{c}.npy') for c in clips}
    frames = windows_to_frame_scores(reference['normality'], reference['metadata'],
                                     {c: len(m) for c, m in gt.items()}, 24)
    _, fill_normality = fill_empty_frames(frames)
    model = init_model(STGNF_FIXTURE_CONFIG, str(ref_dir / 'ShanghaiTech_85_9.tar'))
    offsets = np.concatenate([[0], np.cumsum([len(gt[c]) for c in clips])])
    for index in (1, 4):
        clip = clips[index]
        pose = next((ref_dir / 'pose' / 'test').glob(f'{clip}_*.json'))
        result = score_video(model, None, str(pose), num_frames=len(gt[clip]),
                             calibration=Calibration(fill_anomaly=-fill_normality),
                             show_progress=False)
        assert result.clip_name == clip
        expected = reference['frame_scores'][offsets[index]:offsets[index + 1]]
        np.testing.assert_allclose(-result.frame_scores, expected, rtol=1e-6, atol=1e-6)
        rows = reference['metadata'][:, 1] == int(clip.split('_')[1])
        rows &= reference['metadata'][:, 0] == int(clip.split('_')[0])
        nll = {(int(p), int(s)): v for (_, _, p, s), v in
               zip(reference['metadata'][rows], reference['nll'][rows])}
        assert len(result.windows) == len(nll)
        for window in result.windows:
            assert abs(window['anomaly'] - nll[(window['person_id'],
                                                window['start_frame'])]) < 1e-4


def test_streaming_equals_offline_stgnf(fixtures_dir):
    """The fixture clip replayed frame by frame (no video: STG-NF reads poses only)."""
    ref_dir = fixtures_dir / 'stgnf_reference'
    model = init_model(STGNF_FIXTURE_CONFIG, str(ref_dir / 'ShanghaiTech_85_9.tar'))
    clip = '01_0014'
    pose = next((ref_dir / 'pose' / 'test').glob(f'{clip}_*.json'))
    num_frames = len(np.load(ref_dir / 'gt' / 'test_frame_mask' / f'{clip}.npy'))
    calibration = Calibration(fill_anomaly=5.0)
    offline = score_video(model, None, str(pose), num_frames=num_frames,
                          calibration=calibration, show_progress=False)
    by_frame = {}
    for person, frames in json.loads(pose.read_text()).items():
        for frame, entry in frames.items():
            by_frame.setdefault(int(frame), {})[int(person)] = entry
    scorer = StreamingScorer(model, calibration)
    emitted = []
    for frame in range(num_frames):
        emitted += scorer.push(None, by_frame.get(frame, {}))
        # nothing is emitted before the smoothing radius and half a window have passed
        assert all(s.delay >= scorer.radius for s in emitted)
    emitted += scorer.finish()
    assert [s.frame for s in emitted] == list(range(num_frames))
    np.testing.assert_allclose([s.anomaly for s in emitted], offline.frame_scores, atol=1e-5)
    np.testing.assert_array_equal([s.covered for s in emitted], offline.covered)
    assert scorer.late_windows == 0 and len(scorer.windows) == len(offline.windows)


def test_streaming_equals_offline_mgenet(scene, mgenet_checkpoint):
    """A random-weight MGENet (S_mo, S_app, S_mm) on a video: offline (the dataset and test
    pipeline, OpenCV decoding per window) and streaming (frames pushed once) agree."""
    model = load_mgenet(mgenet_checkpoint)
    assert model.motion_whitening.is_fitted  # S_mo is the whitened gap, from the checkpoint
    first = score_video(model, scene['video'], scene['pose_path'], scene_frames=40,
                        show_progress=False)
    assert set(first.windows[0]['components']) == {'mo', 'app', 'mm'}
    # Person 1: 60 frames minus 3 left out (20, 21, 33) = 57 rows -> 57 - 24 = 33
    # tried windows; the 10 starting at frames 10..19 miss 3 frames (> max_missing 2): 23 kept.
    # Person 2: 46 rows -> 22 windows.
    persons = [w['person_id'] for w in first.windows]
    assert persons.count(1) == 23 and persons.count(2) == 22
    assert first.calibration.source == 'video' and first.calibration.fill_anomaly is not None
    offline = score_video(model, scene['video'], scene['poses'],
                          calibration=first.calibration, scene_frames=40, show_progress=False)
    np.testing.assert_allclose(offline.frame_scores, first.frame_scores, atol=1e-12)
    # The random BSMM's S_mm spans a tiny range: that range would blow float32 rounding of batches
    # of other sizes up into the mixed score. Any fixed calibration must give equal scores, so
    # compare under ranges one unit wider on each side.
    calibration = dataclasses.replace(first.calibration, ranges={
        name: (low - 1.0, high + 1.0) for name, (low, high) in first.calibration.ranges.items()})
    offline = score_video(model, scene['video'], scene['poses'], calibration=calibration,
                          scene_frames=40, show_progress=False)

    scorer = StreamingScorer(model, calibration, scene_frames=40, track_timeout=5)
    emitted = []
    for step in stream_video(scorer, scene['video'], poses=scene['pose_path']):
        emitted += step.scores
    assert [s.frame for s in emitted] == list(range(offline.num_frames))
    np.testing.assert_allclose([s.anomaly for s in emitted], offline.frame_scores, atol=1e-5)
    window_keys = {(w['person_id'], w['start_frame']) for w in offline.windows}
    assert {(w['person_id'], w['start_frame']) for w in scorer.windows} == window_keys
    components = {(w['person_id'], w['start_frame']): w['components'] for w in offline.windows}
    for window in scorer.windows:
        key = (window['person_id'], window['start_frame'])
        assert set(window['components']) == {'mo', 'app', 'mm'}
        for name, value in window['components'].items():
            # float32 model outputs; batches of other sizes round differently.
            assert value == pytest.approx(components[key][name], rel=1e-5, abs=1e-5), name
    assert scorer.late_windows == 0 and scorer.dropped_windows == 0


def test_test_masks_do_not_depend_on_the_batch(mgenet_checkpoint):
    """S_app of a window is the same alone and in a batch (one shared mask pair)."""
    model = load_mgenet(mgenet_checkpoint)
    torch.manual_seed(3)
    grid = model.token_grid
    inputs = dict(tokens=torch.randn(3, 192, *grid), pose=torch.randn(3, 24, 18, 3),
                  scene=torch.randn(3, 3, 112, 112))
    batch = model.anomaly_components(inputs)
    for i in range(3):
        single = model.anomaly_components({k: v[i:i + 1] for k, v in inputs.items()})
        for name, value in single.items():
            torch.testing.assert_close(value[0], batch[name][i], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------- bad input
def test_bad_inputs(scene, mgenet_checkpoint, tmp_path):
    model = load_mgenet(mgenet_checkpoint)
    broken = tmp_path / 'broken.avi'
    broken.write_bytes(b'not a video at all')
    with pytest.raises(ValueError, match='broken.avi'):
        score_video(model, str(broken), scene['pose_path'], show_progress=False)
    with pytest.raises(FileNotFoundError, match='missing.avi'):
        score_video(model, str(tmp_path / 'missing.avi'), scene['pose_path'])
    with pytest.raises(InferenceError, match='give poses'):
        score_video(model, scene['video'])
    with pytest.raises(InferenceError, match='fill'):
        StreamingScorer(model, Calibration(score_weights=dict(mo=1.0)))
    with pytest.raises(InferenceError, match='component_ranges'):
        Calibration.from_results({'score_weights': {'mo': 1.0}, 'fill_value': 0.0})
    cached = init_model(str(REPO / 'configs' / 'mgenet' / 'demo_cached.py'), mgenet_checkpoint,
                        cfg_options={'model.guidance.init_cfg': None})
    with pytest.raises(InferenceError, match='cached features'):
        score_video(cached, scene['video'], scene['pose_path'])
    # A checkpoint of another model: named, with the keys that do not fit.
    with pytest.raises(InferenceError, match='does not fit'):
        init_model(STGNF_DEMO_CONFIG, mgenet_checkpoint)


def test_video_without_people(scene, mgenet_checkpoint):
    model = load_mgenet(mgenet_checkpoint)
    result = score_video(model, scene['video'], {}, show_progress=False)
    assert result.windows == [] and result.num_frames == 60
    assert not result.covered.any() and np.all(result.frame_scores == result.frame_scores[0])
