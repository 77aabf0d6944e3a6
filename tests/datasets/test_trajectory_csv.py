"""The peers' per-person CSV trajectories: rows, folders, layouts, the dataset, bad input."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401
from mmaction.registry import DATASETS
from mgenet_mm.datasets.trajectory_csv import (read_trajectory_csv, read_trajectory_folder,
                                               trajectory_clip_folders)


def _row(frame, xy):
    return ','.join(f'{v:.4f}' for v in [frame, *np.asarray(xy, dtype=float).ravel()])


def _xy(offset: float) -> np.ndarray:
    xy = np.stack([np.arange(17) + offset, 2 * np.arange(17) + 100.0], axis=1)  # (17, 2)
    xy[3] = 0.0  # joint 3 not detected
    return xy


def test_rows_are_read_sorted_with_confidence(tmp_path: Path) -> None:
    path = tmp_path / '00007.csv'
    path.write_text('\n'.join([_row(5, _xy(50)), _row(3, _xy(30)), _row(4, _xy(40))]) + '\n')
    frames, keypoints, scores = read_trajectory_csv(str(path), frame_offset=1)
    np.testing.assert_array_equal(frames, [2, 3, 4])  # 1-based file frames 3, 4, 5
    assert keypoints.shape == (3, 17, 3) and keypoints.dtype == np.float32
    np.testing.assert_allclose(keypoints[0, :, :2], _xy(30))
    np.testing.assert_array_equal(keypoints[1, :, 2], [1] * 3 + [0] + [1] * 13)
    assert np.isnan(scores).all()
    assert read_trajectory_csv(str(path))[0].tolist() == [3, 4, 5]


def test_bad_rows_name_the_file(tmp_path: Path) -> None:
    cases = {
        'columns': ('1,2,3', '3 columns, expected 35'),
        'text': ('a,b', 'not a numeric trajectory CSV'),
        'fraction': (_row(2.5, _xy(0)), r'row 1: frame number 2.5 is not an integer'),
        'twice': (_row(2, _xy(0)) + '\n' + _row(2, _xy(1)), 'frame 2 appears twice'),
        'nan': (_row(2, _xy(0)) + '\n' + _row(3, _xy(0)).replace('100.0000', 'nan', 1),
                'row 2 holds a value that is not a finite number'),
        'zero': (_row(0, _xy(0)), 'frame number 0 is below frame_offset=1'),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / f'{name}.csv'
        path.write_text(text + '\n')
        with pytest.raises(ValueError, match=f'{name}.csv: .*{message}'):
            read_trajectory_csv(str(path), frame_offset=1)


def test_empty_file_is_a_person_without_frames(tmp_path: Path) -> None:
    (tmp_path / '1.csv').write_text('')
    frames, keypoints, _ = read_trajectory_csv(str(tmp_path / '1.csv'))
    assert frames.shape == (0, ) and keypoints.shape == (0, 17, 3)


def test_folder_of_persons(tmp_path: Path) -> None:
    (tmp_path / '00002.csv').write_text(_row(0, _xy(0)) + '\n')
    (tmp_path / '00010.csv').write_text(_row(4, _xy(0)) + '\n' + _row(5, _xy(1)) + '\n')
    (tmp_path / 'notes.txt').write_text('ignored')
    persons = read_trajectory_folder(str(tmp_path))
    assert sorted(persons) == [2, 10] and persons[10][0].tolist() == [4, 5]
    (tmp_path / '2.csv').write_text(_row(1, _xy(0)) + '\n')
    with pytest.raises(ValueError, match='00002.csv and .*2.csv are both person 2'):
        read_trajectory_folder(str(tmp_path))
    (tmp_path / '2.csv').unlink()
    (tmp_path / 'person_a.csv').write_text('')
    with pytest.raises(ValueError, match="person_a.csv: a trajectory file is named after its "
                                         "person number"):
        read_trajectory_folder(str(tmp_path))


def test_clip_folder_layouts(tmp_path: Path) -> None:
    flat = tmp_path / 'flat'
    for name in ('01-0014', '12-0003'):
        (flat / name).mkdir(parents=True)
    (flat / 'README.md').write_text('not a clip')
    assert [c for c, _ in trajectory_clip_folders(str(flat))] == ['01_0014', '12_0003']
    (flat / '01_0014').mkdir()
    with pytest.raises(ValueError, match="both clip '01_0014'"):
        trajectory_clip_folders(str(flat))

    nested = tmp_path / 'nested'
    for name in ('01/0014', '01/0015', '00/01_001'):
        (nested / name).mkdir(parents=True)
    clips = dict(trajectory_clip_folders(str(nested), 'nested'))
    assert sorted(clips) == ['01_001', '01_0014', '01_0015']
    assert clips['01_0014'] == str(nested / '01' / '0014')

    with pytest.raises(ValueError, match="layout must be one of"):
        trajectory_clip_folders(str(flat), 'tree')
    with pytest.raises(FileNotFoundError, match='trajectory folder not found'):
        trajectory_clip_folders(str(tmp_path / 'none'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match="no clip folders in .*<scene>-<clip>"):
        trajectory_clip_folders(str(tmp_path / 'empty'))


def test_dataset_windows_and_arguments(tmp_path: Path) -> None:
    init_default_scope('mmaction')
    folder = tmp_path / '03-0002'
    folder.mkdir()
    rows = [_row(frame, _xy(frame) + np.sin(frame + np.arange(17))[:, None])
            for frame in range(1, 31)]  # 30 frames, counted from 1
    (folder / '00001.csv').write_text('\n'.join(rows) + '\n')
    dataset = DATASETS.build(dict(type='TrajectoryCSVDataset', pose_dir=str(tmp_path),
                                  layout='flat', frame_offset=1, seg_len=24, test_mode=True))
    assert len(dataset) == 30 - 24
    item = dataset.get_data_info(2)
    assert (item['clip_name'], item['scene_id'], item['clip_id']) == ('03_0002', 3, 2)
    assert item['person_id'] == 1 and item['start_frame'] == 2
    assert item['keypoint'].shape == (24, 18, 3)  # COCO-17 -> 18 as for the JSON poses
    for kwargs, message in ((dict(layout='tree'), 'layout must be one of'),
                            (dict(frame_offset=2), 'frame_offset must be 0 or 1'),
                            (dict(frame_offset=True), 'frame_offset must be 0 or 1')):
        with pytest.raises(ValueError, match=message):
            DATASETS.build(dict(type='TrajectoryCSVDataset', pose_dir=str(tmp_path), **kwargs))
    with pytest.raises(FileNotFoundError, match='no trajectory clip folders selected'):
        DATASETS.build(dict(type='TrajectoryCSVDataset', pose_dir=str(tmp_path),
                            clips=['99_0001'], test_mode=True))
