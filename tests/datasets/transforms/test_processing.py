"""Processing transforms: the person tube and the scene image; decoding and cropping a real clip
through mmaction2's loading transforms."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401
from mgenet_mm.datasets import MGENetWindowDataset
from mgenet_mm.datasets.transforms import PersonTubeCrop, SceneImage
from mgenet_mm.datasets.transforms.processing import keypoint_tube_box, keypoint_tube_boxes
from mmaction.registry import TRANSFORMS

init_default_scope('mmaction')


def _keypoints(x1: float, y1: float, x2: float, y2: float, t: int = 4, conf: float = 0.9,
               joints: int = 18) -> np.ndarray:
    """(t, joints, 3) keypoints spread over the box (x1, y1)-(x2, y2), corners included."""
    xs = np.linspace(x1, x2, joints)
    ys = np.linspace(y1, y2, joints)[::-1]
    window = np.stack([xs, ys, np.full(joints, conf)], axis=1)
    return np.repeat(window[None], t, axis=0).astype(np.float32)


def _textured(t: int, height: int = 120, width: int = 160, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(t)]


def test_tube_box_rule() -> None:
    keypoint = _keypoints(40, 20, 60, 80)  # 20 wide, 60 tall
    keypoint[2, 3] = (150, 110, 0.05)  # a far, unconfident keypoint does not count
    box = keypoint_tube_box(keypoint, score_thr=0.2, margin=0.1)
    # square of side 60 * (1 + 2 * 0.1) = 72 around the centre (50, 50)
    np.testing.assert_allclose(box, [14, 14, 86, 86])
    # 2:1 (width:height) outputs get a 2:1 box: height 60 -> width 120, then the margin
    np.testing.assert_allclose(keypoint_tube_box(keypoint, 0.2, 0.0, aspect=2.0),
                               [-10, 20, 110, 80])
    # nothing confident: every keypoint counts
    unsure = keypoint.copy()
    unsure[..., 2] = 0.01
    # x 40..150, y 20..110: a 110 x 110 square around (95, 65)
    np.testing.assert_allclose(keypoint_tube_box(unsure, 0.2, 0.0), [40, 10, 150, 120])
    # tiny boxes grow to min_size
    point = _keypoints(50, 50, 51, 51)
    assert keypoint_tube_box(point, 0.2, 0.1, min_size=16)[3] - \
        keypoint_tube_box(point, 0.2, 0.1, min_size=16)[1] == pytest.approx(16)


def test_tube_is_one_box_for_every_frame() -> None:
    t = 4
    frames = _textured(t)
    # The person walks right: its keypoint box moves from frame to frame.
    keypoint = np.concatenate([_keypoints(30 + 10 * i, 30, 50 + 10 * i, 90, t=1)
                               for i in range(t)])
    crop = PersonTubeCrop(size=32, margin=0.0)
    results = crop(dict(imgs=list(frames), keypoint=keypoint, clip_name='c'))
    tube = results['imgs']
    assert tube.shape == (t, 32, 32, 3) and tube.dtype == np.uint8
    assert results['img_shape'] == (32, 32)
    # union of the T boxes: x 30..80, y 30..90 -> 60 x 60 around (55, 60)
    x1, y1, x2, y2 = results['tube_box'].tolist()
    assert (x1, y1, x2, y2) == (25, 30, 85, 90)
    for i in range(t):  # every frame cut at that same box
        expected = cv2.resize(frames[i][y1:y2, x1:x2], (32, 32), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(tube[i], expected)
    # ... so a moving block moves inside the tube.
    block = [np.zeros((120, 160, 3), np.uint8) for _ in range(t)]
    for i in range(t):
        block[i][40:80, 30 + 10 * i:50 + 10 * i] = 255
    moving = crop(dict(imgs=block, keypoint=keypoint))['imgs']
    centres = [np.nonzero(moving[i, ..., 0] > 128)[1].mean() for i in range(t)]
    assert np.all(np.diff(centres) > 3)
    assert 'size=(32, 32)' in repr(crop)


def test_fast_person_slides_a_capped_tube() -> None:
    """Beyond max_person_ratio x the person's size the tube keeps its size and slides."""
    t = 8
    # 20 x 60 px person running right 30 px per frame: the union is 230 px wide.
    keypoint = np.concatenate([_keypoints(30 + 30 * i, 30, 50 + 30 * i, 90, t=1)
                               for i in range(t)])
    boxes = keypoint_tube_boxes(keypoint, 0.2, 0.1, max_person_ratio=1.5)
    # side = 1.5 x median size 60 = 90; centre x clipped to [x2 + 6 - 45, x1 - 6 + 45] around
    # the union centre 145 (6 = margin 0.1 x size 60); y stays at the union centre 60
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], 90)
    np.testing.assert_allclose(boxes[:, 3] - boxes[:, 1], 90)
    np.testing.assert_allclose((boxes[:, 0] + boxes[:, 2]) / 2,
                               [69, 99, 129, 145, 145, 161, 191, 221])
    np.testing.assert_allclose((boxes[:, 1] + boxes[:, 3]) / 2, 60)
    # without the cap: the union box in every frame, 230 * 1.2 = 276 px
    plain = keypoint_tube_boxes(keypoint, 0.2, 0.1, max_person_ratio=None)
    np.testing.assert_allclose(plain, np.repeat(keypoint_tube_box(keypoint)[None], t, axis=0))
    assert plain[0, 2] - plain[0, 0] == pytest.approx(276)
    # the transform cuts the sliding boxes: the person (a white block) is whole in every crop,
    # at the same scale, and still moves inside the tube
    frames = [np.zeros((120, 320, 3), np.uint8) for _ in range(t)]
    for i in range(t):
        frames[i][30:90, 30 + 30 * i:50 + 30 * i] = 255
    results = PersonTubeCrop(size=45, margin=0.1)(dict(imgs=frames, keypoint=keypoint))
    assert results['tube_boxes'].shape == (t, 4)
    assert results['tube_box'].tolist() == [100, 15, 190, 105]  # the middle frame's box
    for i in range(t):
        columns = np.nonzero(results['imgs'][i, 22, :, 0] > 128)[0]
        assert len(columns) == 10  # 20 px at scale 1/2, never cut
    centres = [np.nonzero(results['imgs'][i, 22, :, 0] > 128)[0].mean() for i in range(t)]
    assert centres[3] - centres[4] < -10 / 2  # moving inside the tube where the box stays
    with pytest.raises(ValueError, match='max_person_ratio'):
        PersonTubeCrop(max_person_ratio=0)


def test_walking_windows_keep_the_union_box() -> None:
    """Within the cap the tube is exactly the union box, the same in every frame."""
    keypoint = np.concatenate([_keypoints(30 + 5 * i, 30, 50 + 5 * i, 90, t=1)
                               for i in range(6)])
    boxes = keypoint_tube_boxes(keypoint, 0.2, 0.1, max_person_ratio=1.5)
    np.testing.assert_allclose(boxes, np.repeat(keypoint_tube_box(keypoint)[None], 6, axis=0))


def test_tube_at_the_border_is_padded() -> None:
    frames = [np.full((100, 120, 3), 200, np.uint8) for _ in range(2)]
    keypoint = _keypoints(-10, -5, 30, 35, t=2)  # a person half out of the top-left corner
    results = PersonTubeCrop(size=40, margin=0.0, pad_value=7)(
        dict(imgs=frames, keypoint=keypoint))
    x1, y1, x2, y2 = results['tube_box'].tolist()
    assert (x1, y1, x2, y2) == (-10, -5, 30, 35)
    tube = results['imgs']
    # 10 of 40 columns and 5 of 40 rows lie outside: the same share of the 40x40 output
    assert (tube[:, :, :9] == 7).all() and (tube[:, :4] == 7).all()
    assert (tube[:, 6:, 11:] == 200).all()


def test_tube_refuses_normalised_or_outside_keypoints() -> None:
    frames = _textured(2)
    normalised = _keypoints(-0.5, -2.0, 0.6, 1.5, t=2)
    with pytest.raises(ValueError, match='look normalised.*before NormalizePoseWindow'):
        PersonTubeCrop()(dict(imgs=frames, keypoint=normalised, clip_name='c'))
    far = _keypoints(500, 500, 560, 600, t=2)
    with pytest.raises(ValueError, match='lies outside the 160x120 frame'):
        PersonTubeCrop()(dict(imgs=frames, keypoint=far))


def _write_video(path: Path, frames: list, fourcc: str = 'MJPG') -> None:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()


def _walker(count: int = 21, height: int = 48, width: int = 64) -> tuple:
    """Frames of a smooth background crossed by a black block, and the background alone."""
    background = np.zeros((height, width, 3), np.uint8)
    background[..., 1] = np.linspace(60, 220, width, dtype=np.uint8)[None]
    background[..., 2] = 150
    frames = []
    for i in range(count):
        frame = background.copy()
        x = 3 * i
        frame[10:40, x:x + 8] = 0
        frames.append(frame)
    return frames, background


@pytest.mark.parametrize('source', ['video', 'frames'])
def test_scene_median_removes_the_moving_object(tmp_path: Path, source: str) -> None:
    frames, background = _walker()
    if source == 'video':
        _write_video(tmp_path / 'walk.avi', frames)
        results = dict(filename=str(tmp_path / 'walk.avi'), total_frames=len(frames))
    else:
        for i, frame in enumerate(frames):
            cv2.imwrite(str(tmp_path / f'{i:03d}.png'), frame)
        results = dict(frame_dir=str(tmp_path), filename_tmpl='{:03d}.png', modality='RGB',
                       total_frames=len(frames))
    rgb_background = background[..., ::-1]
    median = SceneImage(mode='median', num_frames=9, size=(48, 64))(dict(results))['scene']
    assert median.shape == (48, 64, 3) and median.dtype == np.uint8
    # the block covers any pixel in at most 3 of the 9 sampled frames: the median is background
    assert np.abs(median.astype(int) - rgb_background).max() <= 8
    first = SceneImage(mode='frame', frame_index=0, size=(48, 64))(dict(results))['scene']
    assert first[10:40, 0:8].max() < 30  # frame 0 still shows the block
    resized = SceneImage(mode='median', num_frames=9, size=24)(dict(results))['scene']
    assert resized.shape == (24, 24, 3)


def test_scene_memo_is_a_bounded_lru(tmp_path: Path) -> None:
    frames, _ = _walker(count=6)
    for name in ('a', 'b'):
        _write_video(tmp_path / f'{name}.avi', frames)
    scene = SceneImage(num_frames=3, size=16, cache_size=1, video_backend='opencv')
    a = dict(filename=str(tmp_path / 'a.avi'), total_frames=6)
    first = scene(dict(a))['scene']
    first[:] = 0  # the pipeline may write into its copy ...
    assert scene(dict(a))['scene'].any()  # ... the memo keeps its own
    scene(dict(filename=str(tmp_path / 'b.avi'), total_frames=6))
    assert list(scene._cache) == [str(tmp_path / 'b.avi')]
    assert "mode='median'" in repr(scene) and 'cache_size=1' in repr(scene)
    with pytest.raises(KeyError, match='needs `filename`'):
        scene(dict(total_frames=6))


def test_real_clip_decode_and_crop(tmp_path: Path, fixtures_dir: Path) -> None:
    video_dir = fixtures_dir / 'real_video'  # vtest.avi: 795 frames of 768x576
    t, start = 8, 250  # pedestrians cross the middle of the frame here
    # A hand-written track: a 100x100 keypoint box in the middle of the frame.
    coco17 = _keypoints(334, 238, 434, 338, t=1, joints=17)[0]
    track = {f'{f:04d}': {'keypoints': coco17.ravel().tolist(), 'scores': 0.9}
             for f in range(start, start + t + 1)}
    (tmp_path / 'pose').mkdir()
    (tmp_path / 'pose' / 'vtest_alphapose_tracked_person.json').write_text(
        json.dumps({'1': track}))
    pipeline = [dict(type='WindowFrameIndices'), dict(type='DecordInit'),
                dict(type='DecordDecode'), dict(type='PersonTubeCrop', size=64),
                dict(type='SceneImage', mode='frame', frame_index=start, size=(144, 192)),
                dict(type='NormalizePoseWindow'), dict(type='PackMGENetInputs')]
    dataset = MGENetWindowDataset('pose', layout='own', data_root=str(tmp_path),
                                  video_dir=str(video_dir), seg_len=t, pipeline=pipeline)
    info = dataset.get_data_info(0)
    assert info['total_frames'] == 795 and info['start_frame'] == start
    item = dataset[0]
    tube = item['inputs']['imgs']
    assert tube.shape == (3, t, 64, 64)

    # The same frames read directly with OpenCV, cut at the expected box: (384, 288) +- 60.
    capture = cv2.VideoCapture(str(video_dir / 'vtest.avi'))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    expected = []
    for _ in range(t):
        ok, frame = capture.read()
        assert ok
        expected.append(cv2.resize(frame[228:348, 324:444, ::-1], (64, 64),
                                   interpolation=cv2.INTER_AREA))
    capture.release()
    expected = torch.from_numpy(np.stack(expected)).permute(3, 0, 1, 2).float()  # (3, T, H, W)
    assert info['keypoint'][..., 0].min() == 334 and info['keypoint'][..., 1].max() == 338
    assert item['data_samples'].metainfo['start_frame'] == start
    assert (tube - expected).abs().mean() < 1.0  # decord and OpenCV decode the same frames
    # ... and frame-to-frame change shows (pedestrians walk through the box).
    assert (tube[:, -1] - tube[:, 0]).abs().mean() > 10
    scene = item['inputs']['scene']
    assert scene.shape == (3, 144, 192)

    # mmaction's OpenCV decoders give the same tube.
    opencv = [TRANSFORMS.build(dict(type=name)) for name in
              ('WindowFrameIndices', 'OpenCVInit', 'OpenCVDecode', 'PersonTubeCrop')]
    results = dataset.get_data_info(0)
    for step in opencv:
        results = step(results)
    assert (torch.from_numpy(results['imgs']).permute(3, 0, 1, 2).float() - tube).abs().mean() \
        < 2.0
