"""GT files as published: CUHK Avenue's .mat pixel masks and the per-camera mask folders."""
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from mgenet_mm.evaluation.functional.gt_formats import (GT_FORMATS, avenue_clip_name, gt_file,
                                                        list_gt_clips, load_avenue_gt)


def write_avenue_mat(path: Path, abnormal_frames, num_frames: int, shape=(4, 6)) -> None:
    """A ``<n>_label.mat`` as CUHK publishes it: ``volLabel``, a 1 x F cell of pixel masks."""
    cells = np.empty((1, num_frames), dtype=object)
    for frame in range(num_frames):
        mask = np.zeros(shape, dtype=np.uint8)
        if frame in abnormal_frames:
            mask[1, frame % shape[1]] = 1  # a single abnormal pixel is enough
        cells[0, frame] = mask
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {'volLabel': cells})


def test_avenue_mat_is_read_frame_by_frame(tmp_path: Path) -> None:
    path = tmp_path / '3_label.mat'
    write_avenue_mat(path, abnormal_frames={2, 3, 6}, num_frames=8)
    mask = load_avenue_gt(str(path))
    np.testing.assert_array_equal(mask, [0, 0, 1, 1, 0, 0, 1, 0])
    assert mask.dtype == np.uint8


def test_avenue_names(tmp_path: Path) -> None:
    fmt = GT_FORMATS['avenue']
    # Videos are zero-padded (testing_videos/07.avi), the label files are not (7_label.mat).
    assert gt_file(fmt, 'gt', '07') == 'gt/7_label.mat'
    assert gt_file(fmt, 'gt', '21') == 'gt/21_label.mat'
    assert avenue_clip_name('7_label.mat') == '07' and avenue_clip_name('vol07.mat') is None
    for name in ('1_label.mat', '12_label.mat', 'ground_truth_show.m'):
        (tmp_path / name).write_bytes(b'')
    assert list_gt_clips(fmt, str(tmp_path)) == ['01', '12']
    (tmp_path / '01_label.mat').write_bytes(b'')
    with pytest.raises(ValueError, match="both the mask of clip '01'"):
        list_gt_clips(fmt, str(tmp_path))
    with pytest.raises(ValueError, match='video numbers'):
        gt_file(fmt, 'gt', 'abnormal_scene_1_scenario_1')


def test_bad_avenue_files(tmp_path: Path) -> None:
    not_mat = tmp_path / '1_label.mat'
    not_mat.write_text('hello')
    with pytest.raises(ValueError, match='1_label.mat: not a MATLAB .mat file'):
        load_avenue_gt(str(not_mat))
    other = tmp_path / '2_label.mat'
    savemat(str(other), {'vol': np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"2_label.mat: no volLabel variable \(found \['vol'\]\)"):
        load_avenue_gt(str(other))
    numeric = tmp_path / '3_label.mat'
    savemat(str(numeric), {'volLabel': np.zeros((4, 6, 3))})
    with pytest.raises(ValueError, match='3_label.mat: volLabel must be a non-empty cell array'):
        load_avenue_gt(str(numeric))
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0], cells[0, 1] = np.zeros((4, 6)), np.zeros((4, 6, 2))  # a colour image
    flat = tmp_path / '4_label.mat'
    savemat(str(flat), {'volLabel': cells})
    with pytest.raises(ValueError, match='4_label.mat: frame 1 of volLabel is not a 2-D'):
        load_avenue_gt(str(flat))
    with pytest.raises(FileNotFoundError):
        load_avenue_gt(str(tmp_path / '5_label.mat'))


def test_masks_by_camera(tmp_path: Path) -> None:
    fmt = GT_FORMATS['shanghaitech_by_camera']
    for relative, mask in (('01/01_0014.npy', [0, 1, 1]), ('02/02_0003.npy', [1, 0]),
                           ('02/01_0001.npy', [0, 0])):  # filed under another camera: no mask
        (tmp_path / relative).parent.mkdir(exist_ok=True)
        np.save(tmp_path / relative, np.asarray(mask))
    (tmp_path / 'README').write_text('not a camera folder')
    assert list_gt_clips(fmt, str(tmp_path)) == ['01_0014', '02_0003']
    path = gt_file(fmt, str(tmp_path), '01_0014')
    assert path == str(tmp_path / '01' / '01_0014.npy')
    np.testing.assert_array_equal(fmt.loader(path), [0, 1, 1])
    with pytest.raises(ValueError,
                       match="clip '0014': masks by camera need clip names <camera>_<video>"):
        gt_file(fmt, str(tmp_path), '0014')


def test_flat_formats_keep_their_names(tmp_path: Path) -> None:
    np.save(tmp_path / '01_0014.npy', np.array([0, 1]))
    (tmp_path / 'abnormal_scene_1_scenario_1_tracks.txt').write_bytes(b'')
    assert list_gt_clips(GT_FORMATS['shanghaitech'], str(tmp_path)) == ['01_0014']
    assert list_gt_clips(GT_FORMATS['ubnormal'], str(tmp_path)) == [
        'abnormal_scene_1_scenario_1']
    assert gt_file(GT_FORMATS['ubnormal'], 'g', 'x') == 'g/x_tracks.txt'
