"""An overlay video of one video's scores (the score curve PNG is in :mod:`.curves`).

The overlay draws every tracked skeleton coloured by the anomaly score of its window (green =
the least anomalous window of the video, red = the most), the frame's final score as a number,
and the running score curve in a strip under the frame.
"""
from __future__ import annotations

import bisect
import os.path as osp
from typing import Dict, List, Mapping, Optional, Tuple

import cv2
import numpy as np

__all__ = ['PersonScoreTimeline', 'OverlayWriter', 'COCO17_EDGES']

#: Limbs of the COCO-17 skeleton (joint index pairs).
COCO17_EDGES = ((0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
                (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16))


class PersonScoreTimeline:
    """Per person, the anomaly of the window that scores each frame.

    A frame takes the window centred on it, else the last window centred before it within
    ``seg_len`` frames (what a live view knows at that frame). Windows may be added as they
    are scored, in any order.

    Args:
        seg_len (int): Window length T (a window scores frame start + T // 2).
    """

    def __init__(self, seg_len: int) -> None:
        self.seg_len = seg_len
        self._centres: Dict[int, List[int]] = {}
        self._values: Dict[int, List[float]] = {}

    def add(self, window: Mapping) -> None:
        """Add a window dict with ``person_id``, ``start_frame`` and ``anomaly``."""
        person = int(window['person_id'])
        centre = int(window['start_frame']) + self.seg_len // 2
        centres = self._centres.setdefault(person, [])
        values = self._values.setdefault(person, [])
        index = bisect.bisect_right(centres, centre)
        centres.insert(index, centre)
        values.insert(index, float(window['anomaly']))

    def at(self, frame: int) -> Dict[int, float]:
        """Person id -> anomaly at ``frame`` (persons without a window there are left out)."""
        out = {}
        for person, centres in self._centres.items():
            index = bisect.bisect_right(centres, frame) - 1
            if index >= 0 and frame - centres[index] < self.seg_len:
                out[person] = self._values[person][index]
        return out


def _colour(value: float, low: float, high: float) -> Tuple[int, int, int]:
    """Green (low) to red (high), BGR."""
    t = 0.0 if high <= low else float(np.clip((value - low) / (high - low), 0.0, 1.0))
    return (0, int(round(255 * (1 - t))), int(round(255 * t)))


class OverlayWriter:
    """Write frames with skeletons coloured by score and the running score curve.

    Args:
        path (str): Output video (``.mp4`` is written with the ``mp4v`` codec, anything else
            with ``MJPG``).
        fps (float): Frame rate.
        frame_size (tuple): (width, height) of the input frames.
        score_range (tuple): (low, high) of the colour scale and the curve.
        num_frames (int, optional): Length of the curve's time axis (default: grows).
        strip_height (int): Height of the curve strip under the frame.
    """

    def __init__(self, path: str, fps: float, frame_size: Tuple[int, int],
                 score_range: Tuple[float, float], num_frames: Optional[int] = None,
                 strip_height: int = 60) -> None:
        width, height = int(frame_size[0]), int(frame_size[1])
        codec = 'mp4v' if osp.splitext(path)[1].lower() == '.mp4' else 'MJPG'
        self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), float(fps or 25.0),
                                      (width, height + strip_height))
        if not self.writer.isOpened():
            raise OSError(f'cannot write video {path} with codec {codec}')
        self.path = path
        self.size = (width, height)
        self.low, self.high = float(score_range[0]), float(score_range[1])
        self.num_frames = num_frames
        self.strip_height = strip_height
        self.curve: List[float] = []
        self.frames_written = 0

    def write(self, image: np.ndarray, persons: Mapping[int, Mapping],
              person_scores: Mapping[int, float], frame_score: Optional[float]) -> None:
        """Draw one frame.

        Args:
            image: (H, W, 3) BGR frame.
            persons: Track id -> JSON pose entry (``keypoints`` [x, y, c] * 17) of this frame.
            person_scores: Track id -> anomaly of its current window (missing/NaN: grey).
            frame_score: The frame's final score (None: not known yet).
        """
        canvas = np.ascontiguousarray(image.copy())
        for person_id, entry in persons.items():
            pose = np.asarray(entry['keypoints'] if isinstance(entry, Mapping) else entry,
                              dtype=np.float32).reshape(17, 3)
            score = person_scores.get(int(person_id), np.nan)
            colour = (160, 160, 160) if not np.isfinite(score) else _colour(score, self.low,
                                                                             self.high)
            visible = (pose[:, 2] > 0.2) & np.isfinite(pose[:, :2]).all(axis=1)
            if not visible.any():
                continue
            for a, b in COCO17_EDGES:
                if visible[a] and visible[b]:
                    cv2.line(canvas, tuple(int(v) for v in pose[a, :2]),
                             tuple(int(v) for v in pose[b, :2]), colour, 2, cv2.LINE_AA)
            for x, y in pose[visible, :2]:
                cv2.circle(canvas, (int(x), int(y)), 3, colour, -1, cv2.LINE_AA)
            if np.isfinite(score):
                x, y = pose[visible, :2].min(axis=0)
                cv2.putText(canvas, f'{score:.2f}', (int(x), max(int(y) - 6, 12)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
        self.curve.append(np.nan if frame_score is None else float(frame_score))
        strip = np.full((self.strip_height, self.size[0], 3), 255, dtype=np.uint8)
        self._draw_curve(strip)
        label = 'score: ...' if frame_score is None else f'score {frame_score:.3f}'
        cv2.putText(canvas, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2,
                    cv2.LINE_AA)
        self.writer.write(np.concatenate([canvas, strip], axis=0))
        self.frames_written += 1

    def _draw_curve(self, strip: np.ndarray) -> None:
        length = max(self.num_frames or 0, len(self.curve), 2)
        width, height = strip.shape[1], strip.shape[0]
        values = np.asarray(self.curve, dtype=np.float64)
        span = self.high - self.low if self.high > self.low else 1.0
        xs = (np.arange(len(values)) * (width - 1) / (length - 1)).astype(np.int32)
        ys = (height - 4 - np.clip((values - self.low) / span, 0, 1) * (height - 8))
        finite = np.isfinite(ys)
        points = np.stack([xs[finite], ys[finite].astype(np.int32)], axis=1)
        if len(points) > 1:
            cv2.polylines(strip, [points.reshape(-1, 1, 2)], False, (180, 80, 20), 1, cv2.LINE_AA)
        cv2.line(strip, (int(xs[-1]), 0), (int(xs[-1]), height - 1), (0, 0, 200), 1)

    def close(self) -> None:
        self.writer.release()

    def __enter__(self) -> 'OverlayWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
