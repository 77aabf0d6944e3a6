"""The overlay video: per-person score timeline and the writer."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from mgenet_mm.visualization import OverlayWriter, PersonScoreTimeline
from mgenet_mm.visualization.overlay import _colour


def test_timeline_takes_the_window_centred_at_or_before_the_frame() -> None:
    timeline = PersonScoreTimeline(seg_len=4)  # a window starting at s scores frame s + 2
    timeline.add(dict(person_id=1, start_frame=4, anomaly=0.5))
    timeline.add(dict(person_id=1, start_frame=0, anomaly=0.1))  # added out of order
    timeline.add(dict(person_id=2, start_frame=3, anomaly=0.9))
    assert timeline.at(1) == {}
    assert timeline.at(2) == {1: 0.1}
    assert timeline.at(5) == {1: 0.1, 2: 0.9}
    assert timeline.at(6) == {1: 0.5, 2: 0.9}
    assert timeline.at(10) == {}  # the last window lies more than seg_len frames back


def test_colour_scale() -> None:
    assert _colour(0.0, 0.0, 1.0) == (0, 255, 0)  # BGR green
    assert _colour(2.0, 0.0, 1.0) == (0, 0, 255)  # clipped to red
    assert _colour(5.0, 1.0, 1.0) == (0, 255, 0)  # an empty range is all green


def test_writer(tmp_path: Path) -> None:
    path = tmp_path / 'overlay.avi'
    pose = np.concatenate([np.random.default_rng(0).uniform(20, 60, (17, 2)),
                           np.full((17, 1), 0.9)], axis=1)
    with OverlayWriter(str(path), 25, (80, 64), (0.0, 1.0), num_frames=3,
                       strip_height=20) as writer:
        for frame in range(3):
            writer.write(np.zeros((64, 80, 3), np.uint8), {1: {'keypoints': pose.ravel()}},
                         {1: 0.4}, None if frame == 0 else 0.2 * frame)
    assert writer.frames_written == 3 and writer.curve[0] != writer.curve[0]  # NaN first
    capture = cv2.VideoCapture(str(path))
    ok, image = capture.read()
    capture.release()
    assert ok and image.shape == (64 + 20, 80, 3)
    with pytest.raises(OSError, match='cannot write video'):
        OverlayWriter(str(tmp_path / 'missing' / 'x.avi'), 25, (80, 64), (0.0, 1.0))
