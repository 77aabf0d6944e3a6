"""PersonTubeBox: the box PersonTubeCrop cuts from the middle frame, from the keypoints alone."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401
from mgenet_mm.datasets.transforms import PersonTubeBox, PersonTubeCrop
from mmaction.registry import TRANSFORMS

init_default_scope('mmaction')


def _window(t: int = 6) -> np.ndarray:
    """(t, 18, 3): a person 20 px wide and 60 px tall walking 3 px per frame to the right."""
    xs, ys = np.linspace(40, 60, 18), np.linspace(20, 80, 18)[::-1]
    frames = [np.stack([xs + 3 * k, ys, np.full(18, 0.9)], axis=1) for k in range(t)]
    return np.stack(frames).astype(np.float32)


def test_box_by_hand_and_equal_to_the_crop() -> None:
    keypoint = _window()
    results = PersonTubeBox(size=32, margin=0.1)(dict(keypoint=keypoint))
    # Union x 40..75, y 20..80: a 60 * 1.2 = 72 px square around (57.5, 50); whole pixels:
    # corner round(57.5 - 36) = 22 (numpy rounds half to even), round(50 - 36) = 14.
    assert results['tube_box'] == (22, 14, 94, 86)
    assert all(type(v) is int for v in results['tube_box'])
    frames = [np.zeros((120, 160, 3), np.uint8) for _ in range(len(keypoint))]
    crop = PersonTubeCrop(size=32, margin=0.1)(dict(imgs=frames, keypoint=keypoint.copy()))
    np.testing.assert_array_equal(results['tube_box'], crop['tube_box'])


def test_fast_person_gets_the_capped_box_of_the_middle_frame() -> None:
    keypoint = _window(t=8)
    keypoint[:, :, 0] += np.arange(8)[:, None] * 30  # 33 px per frame: the cap applies
    frames = [np.zeros((240, 480, 3), np.uint8) for _ in range(8)]
    crop = PersonTubeCrop(size=40)(dict(imgs=frames, keypoint=keypoint.copy()))
    assert len(np.unique(crop['tube_boxes'][:, 0])) > 1  # a sliding tube
    box = TRANSFORMS.build(dict(type='PersonTubeBox', size=40))(dict(keypoint=keypoint))
    np.testing.assert_array_equal(box['tube_box'], crop['tube_boxes'][4])


def test_refuses_normalised_keypoints() -> None:
    normalised = _window()
    normalised[..., :2] = np.random.default_rng(0).normal(size=normalised[..., :2].shape)
    with pytest.raises(ValueError, match='clip c.*look normalised.*before NormalizePoseWindow'):
        PersonTubeBox()(dict(keypoint=normalised, clip_name='c', person_id=1, start_frame=0))
    with pytest.raises(ValueError, match='max_person_ratio'):
        PersonTubeBox(max_person_ratio=0)
    assert 'max_person_ratio=1.5' in repr(PersonTubeBox())
