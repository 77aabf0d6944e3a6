"""tools/data/extract_poses.py and mgenet_mm.apis.pose_extraction, without downloads.

Small MMDet (RTMDet-tiny) and MMPose (RTMPose-t) models are built from the configs shipped in
the installed packages, given random weights and saved in their real checkpoint format, then
loaded back through the tool. Random weights find nobody, so the detections are controlled in
two ways: a stub detector feeding the real pose model (tracking and JSON layout), and detector
weights set so that its output does not depend on the image (the real path end to end).
"""
import itertools
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mgenet_mm.apis.clips import (CheckpointMismatchError, Clip, ClipReader, ClipReadError,
                                  ModelFileNotFoundError, PoseExtractionError, find_clips)
from mgenet_mm.apis.pose_extraction import (MMDetPersonDetector, MMPoseTopDownEstimator,
                                            PoseExtractor, pose_json_path, resolve_config,
                                            run_pose_extraction)
from mgenet_mm.datasets.pose_utils import read_tracked_pose_json
from tests.conftest import REPO, load_tool, run_tool

DET_CONFIG = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'
POSE_CONFIG = 'mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py'
POSE_CONFIG_S = 'mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-s_8xb256-420e_coco-256x192.py'
HAND_CONFIG = ('mmpose::hand_2d_keypoint/rtmpose/hand5/'
               'rtmpose-m_8xb256-210e_hand5-256x256.py')
FIRE_SCORE = float(torch.sigmoid(torch.tensor(3.0)))


TOOL = 'tools/data/extract_poses.py'


def save_checkpoint(model, path: Path) -> str:
    """The format mmengine's CheckpointHook writes: weights plus meta (with dataset_meta,
    whose numpy arrays need the trusted local loader under torch >= 2.6)."""
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': model.dataset_meta, 'epoch': 1}}, path)
    return str(path)


@pytest.fixture(scope='module', autouse=True)
def one_torch_thread():
    """Run these small models on one thread: on a shared two-core machine, two OpenMP
    threads competing with other processes ran them up to ten times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Random-weight checkpoints of RTMDet-tiny (one that fires, one that does not) and
    RTMPose-t."""
    from mmdet.apis import init_detector
    from mmpose.apis import init_model
    root = tmp_path_factory.mktemp('models')
    torch.manual_seed(0)
    detector = init_detector(resolve_config(DET_CONFIG), None, device='cpu')
    pose = init_model(resolve_config(POSE_CONFIG), None, device='cpu')
    head = detector.bbox_head
    with torch.no_grad():
        for cls_conv, reg_conv in zip(head.rtm_cls, head.rtm_reg):
            # Zero weights: every prior gets the same class scores and box, whatever the image.
            cls_conv.weight.zero_()
            cls_conv.bias.fill_(-10.0)
            reg_conv.weight.zero_()
            # Box sides 1000 strides from every prior: after clipping, all boxes are the whole
            # frame, so NMS leaves exactly one.
            reg_conv.bias.fill_(1000.0)
    silent = save_checkpoint(detector, root / 'rtmdet_tiny_silent.pth')
    with torch.no_grad():
        for cls_conv in head.rtm_cls:
            cls_conv.bias[0] = 3.0  # "person" (COCO class 0) at sigmoid(3) everywhere
    fire = save_checkpoint(detector, root / 'rtmdet_tiny_fire.pth')
    pose_ckpt = save_checkpoint(pose, root / 'rtmpose_t.pth')
    extra = root / 'rtmpose_t_extra_key.pth'
    state = pose.state_dict()
    state['head.unused.weight'] = torch.zeros(3)
    torch.save({'state_dict': state, 'meta': {}}, extra)
    return dict(root=root, det_fire=fire, det_silent=silent, pose=pose_ckpt,
                pose_extra=str(extra))


@pytest.fixture(scope='module')
def pose_estimator(models):
    return MMPoseTopDownEstimator(POSE_CONFIG, models['pose'], device='cpu')


def write_video(path: Path, num_frames: int = 6, size=(160, 120)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10, size)
    assert writer.isOpened()
    for t in range(num_frames):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.rectangle(frame, (10 + 8 * t, 20), (40 + 8 * t, 100), (200, 180, 160), -1)
        writer.write(frame)
    writer.release()
    return path


def write_frames(folder: Path, num_frames: int = 4, names=None) -> Path:
    folder.mkdir(parents=True)
    for t, name in enumerate(names or [f'{t:03d}.jpg' for t in range(num_frames)]):
        cv2.imwrite(str(folder / name), np.full((48, 64, 3), 30 * t, np.uint8))
    return folder


class StubDetector:
    """Two people walking towards each other and crossing (10 px per frame); person B is
    undetected in frames 3-4 (a short gap) and gone for good after frame 7; a third person
    shows up at frame 9. Returns (boxes, scores) like MMDetPersonDetector."""

    def __call__(self, img):
        t = self.frame = getattr(self, 'frame', -1) + 1
        boxes, scores = [], []
        boxes.append([20 + 10 * t, 10, 50 + 10 * t, 90])
        scores.append(0.9)
        if t not in (3, 4) and t <= 7:
            boxes.append([125 - 10 * t, 15, 155 - 10 * t, 95])
            scores.append(0.8)
        if t >= 9:
            boxes.append([150, 10, 180, 90])
            scores.append(0.7)
        return np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32)


class StubPose:
    """Keypoints at the box centre with confidence 0.5 (no model)."""

    def __call__(self, img, boxes):
        centres = (boxes[:, None, :2] + boxes[:, None, 2:]) / 2
        return np.repeat(centres, 17, axis=1), np.full((len(boxes), 17), 0.5, np.float32)


def blank_frames(n: int, size=(120, 200)):
    return [np.zeros((*size, 3), np.uint8) for _ in range(n)]


# --- PoseExtractor with a stub detector -------------------------------------------------------


def test_extract_clip_layout_and_tracking(pose_estimator, tmp_path):
    extractor = PoseExtractor(StubDetector(), pose_estimator, tracker=dict(max_missing=2))
    poses = extractor.extract_clip(blank_frames(11))
    assert list(poses) == ['1', '2', '3']
    assert list(poses['1']) == [f'{t:04d}' for t in range(11)]
    # B keeps its id across the crossing and across the 2-frame gap.
    assert list(poses['2']) == ['0000', '0001', '0002', '0005', '0006', '0007']
    assert list(poses['3']) == ['0009', '0010']
    entry = poses['1']['0004']
    assert len(entry['keypoints']) == 51
    confidences = np.asarray(entry['keypoints']).reshape(17, 3)[:, 2]
    assert entry['scores'] == pytest.approx(confidences.mean(), abs=1e-3)

    # The written file reads back with the datasets' reader.
    path = tmp_path / ('clip' + '_alphapose_tracked_person.json')
    path.write_text(json.dumps(poses))
    persons = read_tracked_pose_json(str(path))
    frames, keypoints, scores = persons[2]
    assert list(frames) == [0, 1, 2, 5, 6, 7]
    assert keypoints.shape == (6, 17, 3) and np.isfinite(keypoints).all()


def test_extract_clip_bbox_scores_and_no_people():
    extractor = PoseExtractor(StubDetector(), StubPose(), score_mode='bbox')
    poses = extractor.extract_clip(blank_frames(3))
    assert poses['1']['0000']['scores'] == pytest.approx(0.9)
    assert poses['2']['0002']['scores'] == pytest.approx(0.8)

    nobody = PoseExtractor(lambda img: (np.zeros((0, 4)), np.zeros(0)), StubPose())
    assert nobody.extract_clip(blank_frames(3)) == {}
    with pytest.raises(ValueError, match='score_mode'):
        PoseExtractor(StubDetector(), StubPose(), score_mode='mean')


# --- clips, resume, bad videos ----------------------------------------------------------------


def test_find_clips(tmp_path):
    (tmp_path / 'videos').mkdir()
    video = write_video(tmp_path / 'videos' / 'walk.avi')
    assert find_clips(str(video)) == [Clip('walk', str(video), 'video')]
    frames = write_frames(tmp_path / 'frames' / 'clip01', names=['1.jpg', '2.jpg', '10.jpg'])
    assert find_clips(str(frames)) == [Clip('clip01', str(frames), 'frames')]
    # Numeric file names are in numeric order ('10.jpg' is the last frame).
    assert [os.path.basename(p) for p in ClipReader(find_clips(str(frames))[0])._files] == \
        ['1.jpg', '2.jpg', '10.jpg']
    (tmp_path / 'videos' / 'notes.txt').write_text('ignored')
    write_frames(tmp_path / 'videos' / 'frames_clip')
    assert [(c.name, c.kind) for c in find_clips(str(tmp_path / 'videos'))] == \
        [('frames_clip', 'frames'), ('walk', 'video')]
    (tmp_path / 'empty').mkdir()
    with pytest.raises(PoseExtractionError, match='no videos'):
        find_clips(str(tmp_path / 'empty'))
    write_frames(tmp_path / 'videos' / 'walk')
    with pytest.raises(PoseExtractionError, match="two clips named 'walk'"):
        find_clips(str(tmp_path / 'videos'))
    with pytest.raises(FileNotFoundError, match='missing'):
        find_clips(str(tmp_path / 'missing'))


def test_unreadable_video(tmp_path):
    bad = tmp_path / 'broken.avi'
    bad.write_bytes(b'not a video at all')
    with pytest.raises(ClipReadError, match='broken.avi'):
        ClipReader(find_clips(str(bad))[0])


def test_directory_run_resume_and_failures(tmp_path):
    inputs = tmp_path / 'videos'
    inputs.mkdir()
    write_video(inputs / 'a.avi', num_frames=3)
    write_video(inputs / 'b.avi', num_frames=3)
    write_frames(inputs / 'c', num_frames=2)
    (inputs / 'd.avi').write_bytes(b'garbage')
    out = tmp_path / 'pose'
    out.mkdir()
    # 'a' finished in an earlier run; 'b' was interrupted while its JSON was being written.
    finished = out / 'a_alphapose_tracked_person.json'
    finished.write_text('{"7": {}}')
    # (the temporary a killed atomic_write_bytes leaves: '.' + name + 8 random chars + '.tmp')
    leftover = out / ('.' + Path(pose_json_path(str(out), 'b')).name + 'k1ll3d_x.tmp')
    leftover.write_text('{"1": {"00')

    logged = []
    results = run_pose_extraction(PoseExtractor(StubDetector(), StubPose()), str(inputs),
                                  str(out), show_progress=False, log=logged.append)
    status = {r.name: r.status for r in results}
    assert status == {'a': 'skipped', 'b': 'done', 'c': 'done', 'd': 'failed'}
    assert finished.read_text() == '{"7": {}}'
    assert not leftover.exists()
    b = read_tracked_pose_json(pose_json_path(str(out), 'b'))
    assert sorted(b) == [1, 2] and list(b[1][0]) == [0, 1, 2]
    c = read_tracked_pose_json(pose_json_path(str(out), 'c'))
    assert list(c[1][0]) == [0, 1]  # StubDetector state is per instance, not per clip
    failed = results[-1]
    assert 'd.avi' in failed.error and not os.path.exists(failed.output)
    assert any('d.avi' in line and 'failed' in line for line in logged)
    assert sorted(os.listdir(out)) == sorted(
        f'{n}_alphapose_tracked_person.json' for n in 'abc')

    # Everything finished is skipped the next time; --overwrite redoes it.
    again = run_pose_extraction(PoseExtractor(StubDetector(), StubPose()), str(inputs),
                                str(out), show_progress=False, log=logged.append)
    assert [r.status for r in again] == ['skipped', 'skipped', 'skipped', 'failed']
    redo = run_pose_extraction(PoseExtractor(StubDetector(), StubPose()), str(inputs / 'a.avi'),
                               str(out), overwrite=True, show_progress=False,
                               log=logged.append)
    assert redo[0].status == 'done' and read_tracked_pose_json(str(finished))


# --- the real models through the tool ---------------------------------------------------------


def tool_args(models, video, out, det='det_fire', *extra):
    return [str(video), '--out-dir', str(out), '--det-config', DET_CONFIG, '--det-checkpoint',
            models[det], '--pose-config', POSE_CONFIG, '--pose-checkpoint', models['pose'],
            '--device', 'cpu', '--no-progress', *extra]


def test_controlled_detector(models):
    # The test detector's one box is the whole frame, clipped from the padded network input.
    detector = MMDetPersonDetector(DET_CONFIG, models['det_fire'])
    boxes, scores = detector(np.zeros((120, 160, 3), np.uint8))
    np.testing.assert_allclose(boxes, [[0, 0, 160, 120]])
    np.testing.assert_allclose(scores, [FIRE_SCORE], atol=1e-5)
    assert detector.cat_id == 0  # "person", looked up in the checkpoint's class names
    silent = MMDetPersonDetector(DET_CONFIG, models['det_silent'])
    assert len(silent(np.zeros((120, 160, 3), np.uint8))[0]) == 0


def test_tool_end_to_end_real_models(models, tmp_path, capsys):
    tool = load_tool(TOOL)
    video = write_video(tmp_path / 'walk.avi', num_frames=3)
    out = tmp_path / 'pose'
    assert tool.main(tool_args(models, video, out)) == 0
    persons = read_tracked_pose_json(pose_json_path(str(out), 'walk'))
    # The controlled detector sees one person, the whole frame, in every frame.
    assert list(persons) == [1]
    frames, keypoints, scores = persons[1]
    assert list(frames) == [0, 1, 2]
    assert keypoints.shape == (3, 17, 3) and np.isfinite(keypoints).all()
    np.testing.assert_allclose(scores, keypoints[..., 2].mean(-1), atol=1e-3)

    capsys.readouterr()
    out_empty = tmp_path / 'pose_empty'
    assert tool.main(tool_args(models, video, out_empty, 'det_silent')) == 0
    assert json.loads(Path(pose_json_path(str(out_empty), 'walk')).read_text()) == {}
    assert 'no persons found' in capsys.readouterr().out


def test_tool_bad_inputs(models, tmp_path, capsys):
    tool = load_tool(TOOL)
    video = write_video(tmp_path / 'walk.avi', num_frames=2)
    out = tmp_path / 'pose'

    def error_of(args):
        capsys.readouterr()
        code = tool.main(args)
        return code, capsys.readouterr().err

    args = tool_args(models, video, out)
    missing_cfg = args.copy()
    missing_cfg[missing_cfg.index(DET_CONFIG)] = str(tmp_path / 'no_such_det.py')
    code, err = error_of(missing_cfg)
    assert code == 2 and 'detector config not found' in err and 'no_such_det.py' in err

    missing_ckpt = args.copy()
    missing_ckpt[missing_ckpt.index(models['pose'])] = str(tmp_path / 'nothing.pth')
    code, err = error_of(missing_ckpt)
    assert code == 2 and 'pose checkpoint not found' in err and 'nothing.pth' in err

    # An RTMPose-t checkpoint for the RTMPose-s config: names fit, shapes do not.
    wrong = args.copy()
    wrong[wrong.index(POSE_CONFIG)] = POSE_CONFIG_S
    code, err = error_of(wrong)
    assert code == 2 and 'rtmpose_t.pth does not fit' in err and 'shape mismatch' in err

    bad_video = tmp_path / 'broken.mp4'
    bad_video.write_text('nope')
    code, err = error_of(tool_args(models, bad_video, out))
    assert code == 1 and 'cannot open video' in err and 'broken.mp4' in err
    assert not out.joinpath('broken_alphapose_tracked_person.json').exists()


def test_strict_checkpoint_loading(models, recwarn):
    with pytest.raises(CheckpointMismatchError, match=r'1 unexpected keys \(head.unused.weight'):
        MMPoseTopDownEstimator(POSE_CONFIG, models['pose_extra'])
    # Non-strict: loads the fitting parameters, warns about the rest.
    MMPoseTopDownEstimator(POSE_CONFIG, models['pose_extra'], strict=False)
    assert any('head.unused.weight' in str(w.message) for w in recwarn)
    with pytest.raises(CheckpointMismatchError, match='missing keys'):
        MMDetPersonDetector(DET_CONFIG, models['pose'])
    with pytest.raises(ModelFileNotFoundError, match='mmdet::no/such.py'):
        MMDetPersonDetector('mmdet::no/such.py', models['det_fire'])
    with pytest.raises(PoseExtractionError, match='RTMDet, not a top-down pose model'):
        MMPoseTopDownEstimator(DET_CONFIG, None)
    with pytest.raises(PoseExtractionError, match='not an MMDetection detector'):
        MMDetPersonDetector(POSE_CONFIG, None)
    with pytest.raises(PoseExtractionError, match='predicts 21 keypoints'):
        MMPoseTopDownEstimator(HAND_CONFIG, None)


@pytest.mark.slow
def test_tool_subprocess(models, tmp_path):
    frames = write_frames(tmp_path / 'frames' / 'clip01', num_frames=3)
    out = tmp_path / 'pose'
    proc = run_tool(str(REPO / 'tools' / 'data' / 'extract_poses.py'),
                    *tool_args(models, tmp_path / 'frames', out, 'det_fire', '--score-mode',
                               'bbox'), cwd=tmp_path)
    assert '1 clips done' in proc.stdout
    persons = read_tracked_pose_json(pose_json_path(str(out), 'clip01'))
    assert list(persons[1][0]) == [0, 1, 2]
    np.testing.assert_allclose(persons[1][2], FIRE_SCORE, atol=1e-4)  # detection scores


@pytest.mark.slow
def test_throughput_real_video(models, fixtures_dir):
    """Frames/s of detection + pose + tracking on CPU, 10 frames of a 768x576 clip."""
    clip = find_clips(str(fixtures_dir / 'real_video' / 'vtest.avi'))[0]
    extractor = PoseExtractor.from_config(DET_CONFIG, models['det_fire'], POSE_CONFIG,
                                          models['pose'], device='cpu')
    with ClipReader(clip) as reader:
        frames = list(itertools.islice(reader, 10))
    assert frames[0].shape == (576, 768, 3)
    extractor.extract_clip(frames[:1])  # warm-up
    start = time.perf_counter()
    poses = extractor.extract_clip(frames)
    fps = len(frames) / (time.perf_counter() - start)
    print(f'\nRTMDet-tiny + RTMPose-t (random weights, 1 person/frame), 768x576, CPU: '
          f'{fps:.2f} frames/s over {len(frames)} frames, {torch.get_num_threads()} threads')
    assert list(poses) == ["1"] and len(poses["1"]) == 10


def test_tool_missing_pose_config(models, tmp_path, capsys):
    tool = load_tool(TOOL)
    video = write_video(tmp_path / 'walk.avi', num_frames=2)
    args = tool_args(models, video, tmp_path / 'pose')
    args[args.index(POSE_CONFIG)] = str(tmp_path / 'no_such_pose.py')
    capsys.readouterr()
    assert tool.main(args) == 2
    err = capsys.readouterr().err
    assert 'pose config not found' in err and 'no_such_pose.py' in err


class _RunsCode:
    """Unpickling it creates the file ``marker`` (what an untrusted checkpoint could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


def test_tool_untrusted_checkpoint_needs_the_flag(models, tmp_path, capsys):
    """A pose checkpoint that needs full unpickling: refused with the file and the flag named,
    loaded with ``--trust-checkpoint`` (see mgenet_mm.utils.checkpoint_trust)."""
    marker = tmp_path / 'code_ran'
    from mgenet_mm.utils import load_checkpoint_file
    checkpoint = load_checkpoint_file(models['pose'], map_location='cpu')  # no flag needed
    checkpoint['meta']['note'] = _RunsCode(marker)
    untrusted = tmp_path / 'rtmpose_t_untrusted.pth'
    torch.save(checkpoint, untrusted)
    tool = load_tool(TOOL)
    video = write_video(tmp_path / 'walk.avi', num_frames=2)
    args = tool_args(models, video, tmp_path / 'pose')
    args[args.index(models['pose'])] = str(untrusted)
    capsys.readouterr()
    assert tool.main(args) == 2
    err = capsys.readouterr().err
    assert 'UntrustedCheckpointError' in err and str(untrusted) in err
    assert '--trust-checkpoint' in err and not marker.exists()
    assert tool.main(args + ['--trust-checkpoint']) == 0
    assert marker.exists()
