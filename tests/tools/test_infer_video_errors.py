"""tools/infer_video.py on bad inputs: one clear message naming the file or option each."""
import json

import cv2
import numpy as np
import pytest

from tests.apis.test_inference import STGNF_DEMO_CONFIG, write_scene
from tests.conftest import load_tool
from tests.tools.test_infer_video import stgnf_checkpoint  # noqa: F401


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/infer_video.py')


@pytest.fixture(scope='module')
def finite_poses(tmp_path_factory):
    """The 60-frame walk's poses without its frame of NaN keypoints, as a file."""
    tmp = tmp_path_factory.mktemp('poses')
    _, poses = write_scene(tmp)
    poses = {person: {frame: entry for frame, entry in track.items()
                      if np.isfinite(entry['keypoints']).all()}
             for person, track in poses.items()}
    path = tmp / 'walk_alphapose_tracked_person.json'
    path.write_text(json.dumps(poses))
    return path


def run(tool, capsys, args):
    capsys.readouterr()
    code = tool.main(args)
    return code, capsys.readouterr()


def assert_clear(printed, *names):
    for name in names:
        assert name in printed.err, printed.err
    for word in ('num_frames', 'ground-truth', 'Traceback', 'JSONDecodeError',
                 'AttributeError', 'range()'):
        assert word not in printed.err, printed.err


def test_empty_frame_folder(tool, capsys, stgnf_checkpoint, finite_poses, tmp_path):  # noqa: F811
    empty = tmp_path / 'empty_clip'
    empty.mkdir()
    code, printed = run(tool, capsys, [STGNF_DEMO_CONFIG, stgnf_checkpoint, str(empty),
                                       '--poses', str(finite_poses), '--out-dir',
                                       str(tmp_path / 'out')])
    assert code == 1
    assert_clear(printed, 'empty_clip', 'has no frames')


def test_video_without_frames(tool, capsys, stgnf_checkpoint, finite_poses,  # noqa: F811
                              tmp_path):
    path = tmp_path / 'nothing.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25, (64, 48))
    writer.release()  # a container with no frame
    code, printed = run(tool, capsys, [STGNF_DEMO_CONFIG, stgnf_checkpoint, str(path),
                                       '--poses', str(finite_poses), '--out-dir',
                                       str(tmp_path / 'out')])
    assert code == 1
    assert_clear(printed, 'nothing.avi')
    assert 'no frame' in printed.err or 'cannot open video' in printed.err


def test_poses_of_a_longer_clip(tool, capsys, stgnf_checkpoint, finite_poses,  # noqa: F811
                                tmp_path):
    video, _ = write_scene(tmp_path, num_frames=1)  # one frame; the poses have 60
    code, printed = run(tool, capsys, [STGNF_DEMO_CONFIG, stgnf_checkpoint, str(video),
                                       '--poses', str(finite_poses), '--out-dir',
                                       str(tmp_path / 'out')])
    assert code == 1
    assert_clear(printed, str(finite_poses), 'walk.avi', '1 frames',
                 'the poses are not of this video')


def test_truncated_pose_json(tool, capsys, stgnf_checkpoint, finite_poses,  # noqa: F811
                             tmp_path):
    video, _ = write_scene(tmp_path, num_frames=30)
    cut = tmp_path / 'cut_alphapose_tracked_person.json'
    text = finite_poses.read_text()
    cut.write_text(text[:len(text) // 2])
    code, printed = run(tool, capsys, [STGNF_DEMO_CONFIG, stgnf_checkpoint, str(video),
                                       '--poses', str(cut), '--out-dir', str(tmp_path / 'out')])
    assert code == 1
    assert_clear(printed, str(cut), 'not valid JSON', 'line 1')


def test_calibration_that_is_a_list(tool, capsys, stgnf_checkpoint, finite_poses,  # noqa: F811
                                    tmp_path):
    video, _ = write_scene(tmp_path, num_frames=30)
    calibration = tmp_path / 'listed.json'
    calibration.write_text(json.dumps([{'fill_value': 0.0}]))
    for mode in ([], ['--stream']):
        code, printed = run(tool, capsys, [STGNF_DEMO_CONFIG, stgnf_checkpoint, str(video),
                                           '--poses', str(finite_poses), '--out-dir',
                                           str(tmp_path / 'out'), '--calibration',
                                           str(calibration), *mode])
        assert code == 1
        assert_clear(printed, str(calibration), 'top level is a JSON array')


@pytest.mark.parametrize('option', ['--batch-size', '--scene-frames', '--max-frames'])
def test_counts_below_one(tool, capsys, option, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        tool.parse_args([STGNF_DEMO_CONFIG, 'x.pth', 'v.avi', '--out-dir', str(tmp_path),
                         option, '0'])
    assert exit_info.value.code == 2
    assert f'{option} must be at least 1, got 0' in capsys.readouterr().err
