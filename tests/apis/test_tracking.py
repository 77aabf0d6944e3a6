"""GreedyTracker on synthetic boxes: crossing people, gaps, ids, OKS."""
import numpy as np
import pytest

from mgenet_mm.apis.tracking import (COCO_KEYPOINT_SIGMAS, GreedyTracker, bbox_iou,
                                     keypoint_oks)


def box(x: float, y: float, w: float = 40., h: float = 100.) -> np.ndarray:
    return np.array([x, y, x + w, y + h])


def crossing_boxes(num_frames: int = 12, jitter: float = 0.0, seed: int = 0):
    """Two people walking towards each other along nearly the same line, 10 px per frame.

    A walks right from x = 100, B walks left from x = 205, 10 px lower (a little nearer the
    camera). Between frames 5 and 6 they pass each other: at frame 6, B's new box is closer to
    A's frame-5 box than A's own new box is (5 px against 10 px), so matching against the last
    box swaps them, while matching against the constant-velocity prediction does not.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(num_frames):
        a = box(100 + 10 * t, 50)
        b = box(205 - 10 * t, 60)
        noise = rng.uniform(-jitter, jitter, size=(2, 4))
        frames.append(np.stack([a, b]) + noise)
    return frames


def run(tracker: GreedyTracker, frames) -> np.ndarray:
    return np.stack([tracker.update(t, boxes) for t, boxes in enumerate(frames)])


def test_bbox_iou_values():
    iou = bbox_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10],
                                                         [20, 20, 30, 30], [0, 0, 0, 0]]))
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0, 0.0]])
    assert bbox_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)


def test_keypoint_oks_values():
    rng = np.random.default_rng(0)
    pose = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], axis=1)
    moved = pose.copy()
    moved[:, 0] += 30
    hidden = pose.copy()
    hidden[:, 2] = 0
    oks = keypoint_oks(pose[None], np.stack([pose, moved, hidden]), np.array([100. * 100.]))
    assert oks[0, 0] == pytest.approx(1.0)
    assert 0 < oks[0, 1] < 0.5
    assert oks[0, 2] == 0  # no joint visible in both
    assert len(COCO_KEYPOINT_SIGMAS) == 17


@pytest.mark.parametrize('jitter', [0.0, 1.0])
def test_crossing_keeps_identity_with_motion(jitter):
    frames = crossing_boxes(jitter=jitter)
    ids = run(GreedyTracker(match_thr=0.3, max_missing=2), frames)
    # Column 0 is always person A, column 1 person B.
    assert (ids[:, 0] == 1).all() and (ids[:, 1] == 2).all(), ids


def test_crossing_swaps_without_motion():
    # The same scene matched against last boxes only: the ids swap where they pass each other.
    # This is why the tracker predicts boxes.
    ids = run(GreedyTracker(match_thr=0.3, use_motion=False), crossing_boxes())
    assert (ids[:6] == [1, 2]).all()
    assert (ids[6:] == [2, 1]).all(), ids


def test_crossing_with_oks_keeps_identity():
    # Same crossing with poses and IoU + OKS similarity, detections given in swapped order
    # on odd frames: the ids follow the people, not the detection order.
    rng = np.random.default_rng(1)
    offsets = rng.uniform(0, 1, (2, 17, 2)) * [40, 100]
    tracker = GreedyTracker(oks_weight=0.5)
    for t, boxes in enumerate(crossing_boxes()):
        kpts = np.concatenate([boxes[:, None, :2] + offsets, np.ones((2, 17, 1))], axis=2)
        order = [1, 0] if t % 2 else [0, 1]
        ids = tracker.update(t, boxes[order], kpts[order])
        assert list(ids) == ([2, 1] if t % 2 else [1, 2]), (t, ids)


def test_crossing_with_distinct_poses_and_oks_only():
    # Without the motion model, pose similarity alone also keeps two people with different
    # poses apart where the last-box IoU swaps them (test_crossing_swaps_without_motion).
    rng = np.random.default_rng(2)
    offsets = rng.uniform(0, 1, (2, 17, 2)) * [40, 100]
    tracker = GreedyTracker(use_motion=False, oks_weight=1.0, match_thr=0.2)
    for t, boxes in enumerate(crossing_boxes()):
        kpts = np.concatenate([boxes[:, None, :2] + offsets, np.ones((2, 17, 1))], axis=2)
        assert list(tracker.update(t, boxes, kpts)) == [1, 2], t


def test_short_gap_is_bridged_and_long_gap_gets_new_id():
    # A person walking right at 5 px per frame, undetected in some frames.
    def at(t):
        return box(100 + 5 * t, 50)[None]

    tracker = GreedyTracker(max_missing=2)
    for t in range(4):
        assert tracker.update(t, at(t))[0] == 1
    # Missed at frames 4 and 5 (2 frames = max_missing): still person 1 at frame 6, matched
    # against the box extrapolated to frame 6.
    assert tracker.update(6, at(6))[0] == 1
    # Missed at frames 7, 8, 9 (3 frames > max_missing): the track is closed, a new id.
    assert tracker.update(10, at(10))[0] == 2
    assert list(tracker.live_track_ids) == [2]


def test_empty_frames_count_as_missing():
    tracker = GreedyTracker(max_missing=1)
    assert tracker.update(0, box(0, 0)[None])[0] == 1
    assert tracker.update(1, np.zeros((0, 4))).shape == (0,)
    assert tracker.update(2, box(0, 0)[None])[0] == 1  # one missing frame: bridged
    tracker.update(3, np.zeros((0, 4)))
    tracker.update(4, np.zeros((0, 4)))
    assert tracker.update(5, box(0, 0)[None])[0] == 2  # two missing frames: a new id


def test_ids_are_deterministic_and_new_people_get_new_ids():
    def sequence():
        tracker = GreedyTracker()
        out = [tracker.update(0, np.stack([box(0, 0), box(100, 0), box(200, 0)]))]
        # The middle person leaves, a fourth one appears; the others stay put.
        out.append(tracker.update(1, np.stack([box(300, 0), box(200, 0), box(0, 0)])))
        return out

    first, second = sequence()
    assert list(first) == [1, 2, 3]
    assert list(second) == [4, 3, 1]
    assert [list(ids) for ids in sequence()] == [[1, 2, 3], [4, 3, 1]]


def test_one_detection_two_tracks_and_reset():
    tracker = GreedyTracker()
    tracker.update(0, np.stack([box(0, 0), box(10, 0)]))
    # Both tracks overlap the single detection; the better one (track 2, IoU 1) takes it.
    assert list(tracker.update(1, box(10, 0)[None])) == [2]
    tracker.reset()
    assert list(tracker.update(0, box(0, 0)[None])) == [1]


def test_bad_input():
    tracker = GreedyTracker()
    tracker.update(3, box(0, 0)[None])
    with pytest.raises(ValueError, match='increasing order'):
        tracker.update(3, box(0, 0)[None])
    with pytest.raises(ValueError, match='keypoints'):
        tracker.update(4, box(0, 0)[None], np.zeros((2, 17, 3)))
    with pytest.raises(ValueError, match='max_missing'):
        GreedyTracker(max_missing=-1)
