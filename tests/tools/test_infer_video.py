"""tools/infer_video.py: from a video to scores, a curve and an overlay, offline and streaming.

Poses come either from a given JSON or from the random-weight RTMDet-tiny/RTMPose-t models of
``test_extract_poses`` (saved in their real checkpoint formats), so the whole path runs here
without downloads.
"""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mgenet_mm.apis import init_model
from tests.apis.test_inference import (MGENET_DEMO_CONFIG, STGNF_DEMO_CONFIG, mgenet_checkpoint,
                                       one_torch_thread, scene, write_scene)  # noqa: F401
from tests.conftest import REPO, load_tool, run_tool
from tests.utils.test_checkpoint_trust import _evil_checkpoint
from tests.tools.test_extract_poses import DET_CONFIG, POSE_CONFIG, models  # noqa: F401

GUIDANCE_OFF = ['--cfg-options', 'model.guidance.init_cfg=None']


TOOL = 'tools/infer_video.py'


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


@pytest.fixture(scope='module')
def short_video(tmp_path_factory):
    """30 frames: enough for a few T = 24 windows, short for the pose models."""
    video, _ = write_scene(tmp_path_factory.mktemp('short'), num_frames=30)
    return str(video)


@pytest.fixture(scope='module')
def stgnf_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = init_model(STGNF_DEMO_CONFIG, None)
    path = tmp_path_factory.mktemp('stgnf') / 'stgnf_demo.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}}, path)
    return str(path)


def read_video(path: Path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def calibration_file(scores_json: Path, path: Path, widen: float = 0.0) -> str:
    """A vad_results.json-shaped calibration from an offline run's recorded calibration, its
    component ranges ``widen`` wider on each side."""
    calibration = json.loads(scores_json.read_text())['calibration']
    ranges = {k: [low - widen, high + widen] for k, (low, high) in calibration['ranges'].items()}
    path.write_text(json.dumps(dict(score_weights=calibration['score_weights'],
                                    normalize=calibration['normalize'],
                                    component_ranges=ranges,
                                    fill_value=-calibration['fill_anomaly'])))
    return str(path)


def test_offline_and_streaming_with_given_poses(tool, scene, mgenet_checkpoint, tmp_path,
                                                capsys):
    out = tmp_path / 'offline'
    args = [MGENET_DEMO_CONFIG, mgenet_checkpoint, scene['video'], '--poses',
            scene['pose_path'], '--out-dir', str(out), '--overlay', '--scene-frames', '40',
            *GUIDANCE_OFF]
    assert tool.main(args) == 0
    result = json.loads((out / 'walk_scores.json').read_text())
    assert result['num_frames'] == 60 and len(result['frame_scores']) == 60
    assert len(result['windows']) == 45 and 'tube_box' in result['windows'][0]
    assert (out / 'walk_scores.png').stat().st_size > 10_000
    overlay = read_video(out / 'walk_overlay.mp4')
    assert len(overlay) == 60 and overlay[0].shape == (150 + 60, 200, 3)
    assert 'windows/s' in capsys.readouterr().out

    # The random BSMM's S_mm spans a tiny range: that range would blow float32 rounding up into
    # the mixed score, so both modes use ranges one unit wider (any fixed calibration must
    # give equal scores).
    calibration = calibration_file(out / 'walk_scores.json', tmp_path / 'vad_results.json',
                                   widen=1.0)
    assert tool.main([*args, '--calibration', calibration]) == 0
    result = json.loads((out / 'walk_scores.json').read_text())
    stream_out = tmp_path / 'stream'
    assert tool.main([MGENET_DEMO_CONFIG, mgenet_checkpoint, scene['video'], '--poses',
                      scene['pose_path'], '--out-dir', str(stream_out), '--stream',
                      '--overlay', '--scene-frames', '40', '--calibration', calibration,
                      *GUIDANCE_OFF]) == 0
    printed = capsys.readouterr().out
    assert 'frame 0: anomaly' in printed and 'compute per frame mean' in printed
    streamed = json.loads((stream_out / 'walk_scores.json').read_text())
    np.testing.assert_allclose(streamed['frame_scores'], result['frame_scores'], atol=1e-5)
    assert len(read_video(stream_out / 'walk_overlay.mp4')) == 60


def test_extraction_offline_equals_streaming(tool, models, stgnf_checkpoint,  # noqa: F811
                                             short_video, tmp_path, capsys):
    """Poses from MMDet + MMPose (random weights, a detector that always fires), then the
    STG-NF scores, offline and streaming; the extracted poses are saved for reuse."""
    pose_args = ['--det-config', DET_CONFIG, '--det-checkpoint', models['det_fire'],
                 '--pose-config', POSE_CONFIG, '--pose-checkpoint', models['pose']]
    out = tmp_path / 'offline'
    assert tool.main([STGNF_DEMO_CONFIG, stgnf_checkpoint, short_video, '--out-dir',
                      str(out), *pose_args]) == 0
    poses = json.loads((out / 'walk_alphapose_tracked_person.json').read_text())
    assert list(poses) == ['1'] and len(poses['1']) == 30
    offline = json.loads((out / 'walk_scores.json').read_text())
    assert len(offline['windows']) == 30 - 24
    calibration = calibration_file(out / 'walk_scores.json', tmp_path / 'vad_results.json')
    stream_out = tmp_path / 'stream'
    assert tool.main([STGNF_DEMO_CONFIG, stgnf_checkpoint, short_video, '--out-dir',
                      str(stream_out), '--stream', '--calibration', calibration,
                      *pose_args]) == 0
    streamed = json.loads((stream_out / 'walk_scores.json').read_text())
    np.testing.assert_allclose(streamed['frame_scores'], offline['frame_scores'], atol=1e-5)
    assert 'late windows 0, dropped 0' in capsys.readouterr().out


def test_bad_inputs(tool, models, stgnf_checkpoint, scene, short_video, tmp_path,  # noqa: F811
                    capsys):

    def error_of(args):
        capsys.readouterr()
        code = tool.main(args)
        return code, capsys.readouterr()

    out = str(tmp_path / 'out')
    code, printed = error_of([STGNF_DEMO_CONFIG, stgnf_checkpoint, str(tmp_path / 'gone.avi'),
                              '--poses', scene['pose_path'], '--out-dir', out])
    assert code == 1 and 'gone.avi' in printed.err
    broken = tmp_path / 'broken.avi'
    broken.write_bytes(b'no video here')
    code, printed = error_of([STGNF_DEMO_CONFIG, stgnf_checkpoint, str(broken), '--out-dir',
                              out, '--det-config', DET_CONFIG, '--det-checkpoint',
                              models['det_fire'], '--pose-config', POSE_CONFIG,
                              '--pose-checkpoint', models['pose']])
    assert code == 1 and 'cannot open video' in printed.err and 'broken.avi' in printed.err
    code, printed = error_of([STGNF_DEMO_CONFIG, stgnf_checkpoint, short_video, '--out-dir',
                              out, '--det-config', str(tmp_path / 'no_det.py'),
                              '--pose-config', POSE_CONFIG, '--pose-checkpoint',
                              models['pose']])
    assert code == 1 and 'no_det.py' in printed.err
    code, printed = error_of([STGNF_DEMO_CONFIG, stgnf_checkpoint, short_video, '--poses',
                              scene['pose_path'], '--out-dir', out, '--stream'])
    assert code == 1 and '--calibration' in printed.err
    code, printed = error_of([MGENET_DEMO_CONFIG, stgnf_checkpoint, short_video, '--poses',
                              scene['pose_path'], '--out-dir', out, *GUIDANCE_OFF])
    assert code == 1 and 'does not fit' in printed.err and 'stgnf_demo.pth' in printed.err

    # A checkpoint that pickles code: refused without --trust-checkpoint, nothing run.
    evil, marker = _evil_checkpoint(tmp_path)
    code, printed = error_of([STGNF_DEMO_CONFIG, str(evil), short_video, '--poses',
                              scene['pose_path'], '--out-dir', out])
    assert code == 1 and 'evil.pth' in printed.err and '--trust-checkpoint' in printed.err
    assert not marker.exists()

    # Nobody in the video: an empty pose file, a message, every frame the fill score.
    code, printed = error_of([STGNF_DEMO_CONFIG, stgnf_checkpoint, short_video, '--out-dir',
                              out, '--det-config', DET_CONFIG, '--det-checkpoint',
                              models['det_silent'], '--pose-config', POSE_CONFIG,
                              '--pose-checkpoint', models['pose']])
    assert code == 0 and 'no persons found' in printed.out
    result = json.loads((Path(out) / 'walk_scores.json').read_text())
    assert result['windows'] == [] and not any(result['covered'])


@pytest.mark.slow
def test_real_video_streaming_throughput(models, stgnf_checkpoint,  # noqa: F811
                                        fixtures_dir, tmp_path):
    """The campus clip streamed through the command line with pose extraction and an overlay;
    the frames/s it prints are those of this machine (random-weight models)."""
    out = tmp_path / 'campus'
    proc = run_tool(str(REPO / 'tools' / 'infer_video.py'), STGNF_DEMO_CONFIG, stgnf_checkpoint,
                    str(fixtures_dir / 'real_video' / 'vtest.avi'), '--out-dir', str(out),
                    '--stream', '--max-frames', '30', '--overlay', '--calibration',
                    json_calibration(tmp_path), '--det-config', DET_CONFIG, '--det-checkpoint',
                    models['det_fire'], '--pose-config', POSE_CONFIG, '--pose-checkpoint',
                    models['pose'], cwd=tmp_path, timeout=600)
    assert 'frames/s' in proc.stdout
    print(proc.stdout.splitlines()[-1])
    overlay = read_video(out / 'vtest_overlay.mp4')
    assert len(overlay) == 30 and overlay[0].shape == (576 + 60, 768, 3)


def json_calibration(tmp_path: Path) -> str:
    path = tmp_path / 'stgnf_vad_results.json'
    path.write_text(json.dumps(dict(score_weights=None, normalize=True, component_ranges={},
                                    fill_value=-1.0)))
    return str(path)


def test_interrupted_stream_still_writes_its_frames(tool, stgnf_checkpoint, scene, tmp_path,
                                                    monkeypatch, capsys):
    """Ctrl-C (KeyboardInterrupt) after 30 frames: those frames are finished and written."""
    real_stream = tool.stream_video

    def interrupted(*args, **kwargs):
        for step in real_stream(*args, **kwargs):
            if step.frame == 30:
                raise KeyboardInterrupt
            yield step

    monkeypatch.setattr(tool, 'stream_video', interrupted)
    out = tmp_path / 'stream'
    assert tool.main([STGNF_DEMO_CONFIG, stgnf_checkpoint, scene['video'], '--poses',
                      scene['pose_path'], '--out-dir', str(out), '--stream', '--calibration',
                      json_calibration(tmp_path)]) == 0
    assert 'interrupted after 31 frames' in capsys.readouterr().out
    result = json.loads((out / 'walk_scores.json').read_text())
    assert result['num_frames'] == 31 and len(result['frame_scores']) == 31
