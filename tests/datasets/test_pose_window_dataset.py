"""PoseWindowDataset and the pose helpers: parity with the official STG-NF loader, bad input."""
import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mgenet_mm.datasets import PoseWindowDataset
from mgenet_mm.datasets.pose_utils import (MAX_POSE_INDEX, clip_ids, clip_name_from_pose_file,
                                           coco17_to_coco18, pose_files_in,
                                           read_tracked_pose_json, stgnf_window_starts)
from mgenet_mm.datasets.transforms import NormalizePoseWindow, RandomFlipPoseWindow

init_default_scope('mmaction')


def _track(frames, seed=0, jitter=5.0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(100, 400, size=(17, 3))
    base[:, 2] = 0.9
    return {str(f): {'keypoints': (base + [jitter * np.sin(f + j) for j in range(3)]).round(3)
                     .ravel().tolist(), 'scores': 0.8} for f in frames}


def _write(folder: Path, clip: str, persons: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'{clip}_alphapose_tracked_person.json'
    path.write_text(json.dumps(persons))
    return path


def test_windows_and_metadata_match_reference(fixtures_dir: Path) -> None:
    reference = np.load(fixtures_dir / 'stgnf_reference' / 'expected_sht.npz')
    dataset = PoseWindowDataset(str(fixtures_dir / 'stgnf_reference' / 'pose' / 'test'),
                                seg_len=24, stride=1, test_mode=True,
                                pipeline=[dict(type='NormalizePoseWindow')])
    np.testing.assert_array_equal(dataset.window_metadata(), reference['metadata'])
    windows = np.stack([dataset[i]['keypoint'] for i in range(64)])  # (64, T, V, C)
    # float32 rounding of the same arithmetic: identical up to one ulp of values ~4.
    np.testing.assert_allclose(windows.transpose(0, 3, 1, 2), reference['segments'], rtol=0,
                               atol=1e-6)
    # Bounded by frames: one keypoint row per recorded frame, not per window x T.
    assert dataset.keypoints.shape[0] < len(dataset) * 24 / 10


def test_window_starts_rule() -> None:
    frames = np.arange(30)
    # ceil((30 - 24) / 6) = 1: one fewer than a plain sliding window.
    starts, dropped = stgnf_window_starts(frames, 24, 6)
    assert starts.tolist() == [0] and dropped == 0
    starts, _ = stgnf_window_starts(np.arange(31), 24, 6)
    assert starts.tolist() == [0, 6]
    assert stgnf_window_starts(np.arange(24), 24, 1)[0].size == 0
    # Frames 3-5 missing. Row 0 expects frames 0-4 and misses two (kept); rows 1 and 2 expect
    # 1-5 and 2-6 and miss three (dropped); from row 3 on nothing is missing.
    gapped = np.array([0, 1, 2, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    starts, dropped = stgnf_window_starts(gapped, 5, 1)
    assert starts.tolist() == [0, 3, 4, 5, 6] and dropped == 2
    # Two missing frames are tolerated.
    starts, dropped = stgnf_window_starts(np.array([0, 1, 2, 5, 6, 7, 8]), 5, 1)
    assert starts.tolist() == [0, 1]


def test_coco18_conversion() -> None:
    keypoints = np.arange(17 * 3, dtype=np.float64).reshape(17, 3)
    converted = coco17_to_coco18(keypoints)
    np.testing.assert_allclose(converted[1], (keypoints[5] + keypoints[6]) / 2)  # neck
    np.testing.assert_allclose(converted[2], keypoints[6])  # right shoulder
    np.testing.assert_allclose(converted[14], keypoints[2])
    with pytest.raises(ValueError, match='17 COCO joints'):
        coco17_to_coco18(np.zeros((18, 3)))


def test_clip_names() -> None:
    assert clip_name_from_pose_file('01_0014_alphapose_tracked_person.json') == '01_0014'
    assert clip_ids('01_0014') == (1, 14)
    assert clip_ids('abnormal_scene_5_scenario_2_smoke') == (5, 2)
    assert clip_ids('my_video') == (-1, -1)


def test_frames_read_as_numbers(tmp_path: Path) -> None:
    frames = list(range(1, 40))
    persons = {'1': _track(frames)}
    _write(tmp_path / 'padded', 'clip', {'1': {f'{int(k):04d}': v for k, v in persons['1'].items()}})
    # Unpadded keys in shuffled order: string sorting would put 10 before 9.
    shuffled = dict(sorted(persons['1'].items(), key=lambda item: hash(item[0]) % 7))
    _write(tmp_path / 'plain', 'clip', {'1': shuffled})
    padded = PoseWindowDataset(str(tmp_path / 'padded'), seg_len=8, test_mode=True)
    plain = PoseWindowDataset(str(tmp_path / 'plain'), seg_len=8, test_mode=True)
    assert len(plain) == len(padded) == 31
    np.testing.assert_array_equal(plain.window_metadata(), padded.window_metadata())
    np.testing.assert_array_equal(plain[9]['keypoint'], padded[9]['keypoint'])
    assert plain[9]['start_frame'] == 10


def test_skips_are_counted(tmp_path: Path) -> None:
    gapped = [f for f in range(1, 41) if f not in (10, 11, 12)]
    gap_track = _track([f for f in range(1, 31) if f != 5], seed=2)
    flat = _track(range(1, 21), seed=3, jitter=0.0)
    for entry in flat.values():  # every y equal: no vertical spread
        entry['keypoints'][1::3] = [200.0] * 17
    _write(tmp_path, 'clip', {'1': _track(range(1, 5)), '2': _track(gapped, seed=1),
                              '3': gap_track, '4': flat})
    _write(tmp_path, 'empty', {})
    dataset = PoseWindowDataset(str(tmp_path), seg_len=8, test_mode=True,
                                pipeline=[dict(type='NormalizePoseWindow')])
    counts = dataset.skip_counts
    assert counts['clips'] == 2 and counts['persons'] == 4
    assert counts['short_persons'] == 1
    assert counts['degenerate_windows'] == 12  # ceil((20 - 8) / 1) windows of the flat person
    # person 2: 37 rows, 29 tried; person 3 (no frame 5): 29 rows, 21 tried.
    kept = {pid: sum(1 for d in dataset.data_list if d['person_id'] == pid) for pid in (2, 3)}
    assert counts['windows_missing_frames'] == (29 - kept[2]) + (21 - kept[3]) > 0
    assert counts['windows'] == len(dataset) == kept[2] + kept[3]
    for index in range(len(dataset)):
        assert np.isfinite(dataset[index]['keypoint']).all()


@pytest.mark.parametrize('text, match', [
    ('{"1": {"001": {"keypoints": [1, 2', r'malformed JSON at line 1, column \d+ \(char \d+\)'),
    ('[1, 2]', 'expected an object'),
    ('{"1": {"001": {"keypoints": [1, 2, 3], "scores": 1}}}', 'expected 51 keypoint values'),
    ('{"a": {}}', "person id 'a' is not an integer"),
    ('{"1": {"x1": {"keypoints": []}}}', "frame key 'x1' is not a frame number"),
])
def test_bad_json_names_file_and_problem(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / 'bad_alphapose_tracked_person.json'
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as error:
        PoseWindowDataset(str(tmp_path), seg_len=8, test_mode=True)
    assert str(path) in str(error.value)


def test_duplicate_frame_is_an_error(tmp_path: Path) -> None:
    track = _track(range(1, 20))
    track['0005'] = track['5']
    _write(tmp_path, 'dup', {'1': track})
    with pytest.raises(ValueError, match="has frame 5 twice \\(keys '5' and '0005'\\)"):
        PoseWindowDataset(str(tmp_path), seg_len=8, test_mode=True)


def _entry_text(values=None, scores='0.8') -> str:
    values = ', '.join(['1.5'] * 51) if values is None else values
    return f'{{"keypoints": [{values}], "scores": {scores}}}'


def test_person_ids_of_one_number_are_an_error(tmp_path: Path) -> None:
    # '1' and '01' are both person 1: read as numbers, the second would replace the first.
    path = _write(tmp_path, 'clip', {'1': _track(range(1, 20)), '01': _track(range(1, 20), 1)})
    with pytest.raises(ValueError, match="person ids '1' and '01' are both person 1") as error:
        PoseWindowDataset(str(tmp_path), seg_len=8, test_mode=True)
    assert str(path) in str(error.value)


@pytest.mark.parametrize('text, key', [
    ('{"1": {"001": ENTRY}, "1": {"002": ENTRY}}', '1'),  # a person twice
    ('{"1": {"001": ENTRY, "001": ENTRY}}', '001'),  # a frame twice
])
def test_key_repeated_in_the_json_text_is_an_error(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / 'clip_alphapose_tracked_person.json'
    path.write_text(text.replace('ENTRY', _entry_text()))
    # json.load alone keeps the last one silently.
    assert len(json.loads(path.read_text())) == 1
    with pytest.raises(ValueError, match=f"key '{key}' is written twice in one JSON object"):
        read_tracked_pose_json(str(path))


@pytest.mark.parametrize('frame_key', ['1_000', '-5', '+5', ' 5', '5 ', '', '\u0665', '1e3',
                                       '99999999999999999999', str(MAX_POSE_INDEX + 1)])
def test_frame_keys_are_digits_in_range(tmp_path: Path, frame_key: str) -> None:
    path = tmp_path / 'clip_alphapose_tracked_person.json'
    path.write_text(json.dumps({'1': {frame_key: json.loads(_entry_text())}}))
    with pytest.raises(ValueError, match='is not a frame number') as error:
        read_tracked_pose_json(str(path))
    assert str(path) in str(error.value) and repr(frame_key) in str(error.value)


def test_frame_keys_read_at_the_ends_of_the_range(tmp_path: Path) -> None:
    path = tmp_path / 'clip_alphapose_tracked_person.json'
    entry = json.loads(_entry_text())
    path.write_text(json.dumps({'0007': {'0': entry, str(MAX_POSE_INDEX): entry, '00012': entry}}))
    frames, keypoints, scores = read_tracked_pose_json(str(path))[7]
    np.testing.assert_array_equal(frames, [0, 12, MAX_POSE_INDEX])
    assert keypoints.shape == (3, 17, 3) and (keypoints == 1.5).all()
    np.testing.assert_allclose(scores, 0.8)


@pytest.mark.parametrize('value, match', [
    ('true', 'is bool, not a number'),  # json reads it as True, which numpy takes as 1.0
    ('"1.0"', 'is str, not a number'),  # numpy would convert the string
    ('null', 'is null, not a number'),
    ('[1.0]', 'is list, not a number'),
    ('NaN', 'is not finite'),
    ('-Infinity', 'is not finite'),
    ('1e39', 'is out of float32 range'),
    ('1' + '0' * 400, 'is out of float32 range'),
])
def test_keypoint_values_are_finite_numbers(tmp_path: Path, value: str, match: str) -> None:
    path = tmp_path / 'clip_alphapose_tracked_person.json'
    values = ', '.join(['1.5'] * 7 + [value] + ['1.5'] * 43)
    path.write_text(f'{{"3": {{"0010": {_entry_text()}, "0011": {_entry_text(values)}}}}}')
    with pytest.raises(ValueError, match=f'person 3, frame 0011: keypoint value 7 .*{match}'):
        read_tracked_pose_json(str(path))


@pytest.mark.parametrize('scores', ['"0.8"', 'true', 'null', 'NaN'])
def test_scores_are_finite_numbers(tmp_path: Path, scores: str) -> None:
    path = tmp_path / 'clip_alphapose_tracked_person.json'
    path.write_text(f'{{"3": {{"0010": {_entry_text(scores=scores)}}}}}')
    with pytest.raises(ValueError, match='frame 0010: "scores" is .*not a finite number'):
        read_tracked_pose_json(str(path))


def test_integer_keypoints_and_absent_scores_are_read(tmp_path: Path) -> None:
    path = tmp_path / 'clip_alphapose_tracked_person.json'
    path.write_text('{"2": {"4": {"keypoints": [%s]}}}' % ', '.join(map(str, range(51))))
    frames, keypoints, scores = read_tracked_pose_json(str(path))[2]
    np.testing.assert_array_equal(keypoints.reshape(-1), np.arange(51))
    assert frames.tolist() == [4] and np.isnan(scores).all()


@pytest.mark.parametrize('name', ['clip_alphapose_tracked_person.JSON',
                                  'clip_alphapose_tracked_person.json.gz', 'clip.Json',
                                  'clip.json.zip'])
def test_misnamed_pose_file_is_an_error(tmp_path: Path, name: str) -> None:
    _write(tmp_path, 'other', {'1': _track(range(1, 20))})
    (tmp_path / name).write_bytes(b'{}')
    # Left out, its clip would be scored as a clip with nobody in it.
    with pytest.raises(ValueError, match='not read as a pose file') as error:
        PoseWindowDataset(str(tmp_path), seg_len=8, test_mode=True)
    assert str(tmp_path / name) in str(error.value)
    with pytest.raises(ValueError, match='not read as a pose file'):
        pose_files_in(str(tmp_path))


def test_two_pose_files_of_one_clip_are_an_error(tmp_path: Path) -> None:
    _write(tmp_path, 'clip', {'1': _track(range(1, 20))})
    (tmp_path / 'clip.json').write_text('{}')
    with pytest.raises(ValueError, match='clip clip has two pose files'):
        PoseWindowDataset(str(tmp_path), seg_len=8, test_mode=True)


def test_pose_files_in_lists_clips_in_file_order(tmp_path: Path) -> None:
    for name in ('b_tracked_person.json', 'a_alphapose_tracked_person.json', 'c.json',
                 'notes.txt', '.a_alphapose_tracked_person.json.1a2b3c4d.tmp'):
        (tmp_path / name).write_text('{}')
    assert pose_files_in(str(tmp_path)) == [
        ('a', str(tmp_path / 'a_alphapose_tracked_person.json')),
        ('b', str(tmp_path / 'b_tracked_person.json')), ('c', str(tmp_path / 'c.json'))]


def test_training_set_without_windows_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, 'clip', {'1': _track(range(1, 10)), '2': _track(range(1, 12), seed=1)})
    _write(tmp_path, 'empty', {})
    # Without windows, mmengine's sampler fails with ZeroDivisionError naming nothing.
    with pytest.raises(ValueError, match=r'no training windows in .*: of 2 persons in 2 clips, '
                       r'2 have fewer recorded frames than a window \(seg_len=24\)') as error:
        PoseWindowDataset(str(tmp_path), seg_len=24)
    assert str(tmp_path) in str(error.value)
    # A test set without windows is valid: every clip is scored as empty.
    assert len(PoseWindowDataset(str(tmp_path), seg_len=24, test_mode=True)) == 0
    assert len(PoseWindowDataset(str(tmp_path), seg_len=8)) > 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(seg_len='abc'), "seg_len must be an integer, got 'abc'"),
    (dict(stride=1.5), 'stride must be an integer, got 1.5'),
    (dict(max_missing=True), 'max_missing must be an integer, got True'),
    (dict(exclude_clips='01_0014'), "exclude_clips must be a list of clip names, got the string"),
    (dict(clips='01_0014'), "clips must be a list of clip names, got the string"),
])
def test_bad_settings_name_the_key(tmp_path: Path, kwargs: dict, match: str) -> None:
    _write(tmp_path, 'clip', {'1': _track(range(1, 40))})
    with pytest.raises(ValueError, match=match):
        PoseWindowDataset(str(tmp_path), test_mode=True, **kwargs)


def test_metainfo_names_every_clip_with_a_pose_file(tmp_path: Path) -> None:
    _write(tmp_path, 'clip', {'1': _track(range(1, 40))})
    _write(tmp_path, 'empty', {})  # a clip with nobody in it: no windows, still a clip
    _write(tmp_path, 'left_out', {})
    dataset = PoseWindowDataset(str(tmp_path), seg_len=8, exclude_clips=['left_out'],
                                test_mode=True)
    assert dataset.metainfo['clips'] == ('clip', 'empty')
    assert dataset.metainfo['pose_dirs'] == (str(tmp_path), )
    assert dataset.metainfo['seg_len'] == 8


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='pose folder not found'):
        PoseWindowDataset(str(tmp_path / 'nope'))
    with pytest.raises(FileNotFoundError, match='no pose files'):
        PoseWindowDataset(str(tmp_path))


def test_clip_selection(fixtures_dir: Path) -> None:
    pose_dir = str(fixtures_dir / 'stgnf_reference' / 'pose' / 'test')
    subset = PoseWindowDataset(pose_dir, seg_len=24, clips=['01_0014'], test_mode=True)
    assert {d['clip_name'] for d in subset.data_list} == {'01_0014'}
    rest = PoseWindowDataset(pose_dir, seg_len=24, exclude_clips=['01_0014'], test_mode=True)
    assert '01_0014' not in {d['clip_name'] for d in rest.data_list}


def test_transforms() -> None:
    window = np.random.default_rng(0).uniform(0, 400, size=(6, 18, 3)).astype(np.float32)
    normalised = NormalizePoseWindow()(dict(keypoint=window))['keypoint']
    assert abs(normalised[..., :2].mean(axis=(0, 1))).max() < 1e-5
    assert abs(normalised[..., 1].std() - 1) < 1e-5
    np.testing.assert_array_equal(normalised[..., 2], window[..., 2])
    flipped = RandomFlipPoseWindow(prob=1.0)(dict(keypoint=normalised.copy()))
    assert flipped['flip'] is True
    np.testing.assert_array_equal(flipped['keypoint'][..., 0], -normalised[..., 0])
    np.testing.assert_array_equal(flipped['keypoint'][..., 1], normalised[..., 1])
    kept = RandomFlipPoseWindow(prob=0.0)(dict(keypoint=normalised.copy()))
    assert kept['flip'] is False
    assert 'prob=1.0' in repr(RandomFlipPoseWindow(prob=1.0))
    flat = window.copy()
    flat[..., 1] = 3.0
    with pytest.raises(ValueError, match='degenerate pose window'):
        NormalizePoseWindow()(dict(keypoint=flat, clip_name='c'))


def test_getitems_gathers_a_batch_as_the_items_would(fixtures_dir: Path) -> None:
    from mgenet_mm.datasets import pose_window_collate
    dataset = PoseWindowDataset(str(fixtures_dir / 'stgnf_reference' / 'pose' / 'test'),
                                seg_len=24, stride=1, test_mode=True)
    indices = [5, 0, 77, len(dataset) - 1, 5]
    batch = dataset.__getitems__(indices)
    singles = [dataset[i] for i in indices]
    assert [sorted(item) for item in batch] == [sorted(item) for item in singles]
    for item, single in zip(batch, singles):
        assert {k: v for k, v in item.items() if k != 'keypoint'} == \
            {k: v for k, v in single.items() if k != 'keypoint'}
        np.testing.assert_array_equal(item['keypoint'], single['keypoint'])  # (T, 18, 3)
    assert batch.stacked_keypoints.shape == (5, 24, 18, 3)
    np.testing.assert_array_equal(batch.stacked_keypoints, np.stack([s['keypoint']
                                                                     for s in singles]))
    # the collate takes the stacked array; the same inputs as from the single items
    fast, slow = pose_window_collate(batch), pose_window_collate(singles)
    assert all(np.array_equal(a, b) for a, b in zip(fast['inputs'], slow['inputs']))
    assert [s.metainfo for s in fast['data_samples']] == \
        [s.metainfo for s in slow['data_samples']]


def test_getitems_runs_the_pipeline_when_there_is_one(fixtures_dir: Path) -> None:
    init_default_scope('mmaction')
    dataset = PoseWindowDataset(str(fixtures_dir / 'stgnf_reference' / 'pose' / 'test'),
                                seg_len=24, stride=1, test_mode=True,
                                pipeline=[dict(type='NormalizePoseWindow')])
    batch = dataset.__getitems__([3, 1])
    assert not hasattr(batch, 'stacked_keypoints')
    np.testing.assert_array_equal(batch[1]['keypoint'], dataset[1]['keypoint'])
    assert abs(float(batch[1]['keypoint'][..., 1].std()) - 1.0) < 1e-5  # normalised
