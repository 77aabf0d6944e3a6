"""How much of a person tube an appearance anomaly's object covers, at the model's resolution.

An appearance anomaly is only an appearance anomaly for the model if its object survives the
tube crop: ``PersonTubeCrop`` cuts a box around the person and shrinks it to a few dozen pixels,
and the cube embedding turns those into a grid of ``patch x patch`` tokens. This module measures,
per window of an anomalous person who carries or rides something, the object's share of the tube
from the renderer's part-label map (exact pixels, not a guess from the drawing code):

* ``pixel_fraction``: the object's share of the tube's area;
* ``token_area``: the object's area in tokens (1.0 = one token's worth of pixels);
* ``tokens_touched``: tokens holding any object pixel (>= 5 % of a token);
* ``tokens_half``: tokens at least half covered by the object;
* ``person_px``: the person's height in tube pixels (its keypoint box, at the window's
  middle frame).

The tube is the model's own (:func:`~mgenet_mm.datasets.transforms.processing.keypoint_tube_boxes`)
and each window is measured at its middle frame, the frame its score is given to.
``tools/analysis/object_coverage.py`` prints these per event type for a generated benchmark.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from ..datasets.transforms.processing import (crop_with_padding, keypoint_tube_boxes,
                                              whole_pixel_boxes)
from .config import Camera
from .plans import ClipPlan
from .renderer import ClipRenderer
from .vocabulary import LABEL_STRIDE, PARTS

#: A token counts as touched from this covered share on (a pixel's anti-aliasing is not an object).
TOUCH_SHARE = 0.05


def tube_coverage(mask: np.ndarray, box: np.ndarray, tube_size: int,
                  patch: int) -> Dict[str, float]:
    """Coverage of a binary object mask inside one tube box, after the resize to the tube.

    Args:
        mask (np.ndarray): (H, W) bool, the object's pixels in the frame.
        box (np.ndarray): (4,) int tube box (x1, y1, x2, y2), end exclusive, square.
        tube_size (int): Side of the tube after the resize (pixels).
        patch (int): Side of a token in tube pixels; must divide ``tube_size``.

    Returns:
        dict: ``pixel_fraction``, ``token_area``, ``tokens_touched``, ``tokens_half``.
    """
    if tube_size % patch:
        raise ValueError(f'patch {patch} does not divide the tube size {tube_size}')
    x1, y1, x2, y2 = (int(v) for v in box)
    crop = crop_with_padding(mask.astype(np.float32), x1, y1, x2 - x1, y2 - y1, 0)
    # Area averaging, as the tube's pixels are resized: each tube pixel holds its covered share.
    small = cv2.resize(crop, (tube_size, tube_size), interpolation=cv2.INTER_AREA)
    grid = tube_size // patch
    # (S, S) -> (grid, patch, grid, patch) -> per-token mean (grid, grid)
    tokens = small.reshape(grid, patch, grid, patch).mean(axis=(1, 3))
    return dict(pixel_fraction=float(small.mean()), token_area=float(small.sum() / patch**2),
                tokens_touched=int((tokens >= TOUCH_SHARE).sum()),
                tokens_half=int((tokens >= 0.5).sum()))


def _windows(valid: np.ndarray, seg_len: int, stride: int) -> Iterator[int]:
    """Starts of the windows whose T frames are all valid."""
    for start in range(0, len(valid) - seg_len + 1, stride):
        if valid[start:start + seg_len].all():
            yield start


def clip_object_coverage(clip: ClipPlan, cam: Camera, fps: int,
                         keypoints: Optional[Dict[int, Tuple[np.ndarray, np.ndarray]]] = None,
                         seg_len: int = 24, stride: int = 6, tube_size: int = 32,
                         patch: int = 8, margin: float = 0.1,
                         max_person_ratio: Optional[float] = 1.5) -> List[Dict]:
    """Object coverage of every window of every object-carrying anomalous person of a clip.

    Args:
        clip: The clip plan (the renderer re-simulates it; no file is read).
        cam: Camera of the benchmark.
        fps: Frame rate.
        keypoints: Person id -> (frames (n,), keypoints (n, 17, 3)) as the pose file holds them
            (the detections the tube is cut from). Default: the true projected keypoints of the
            simulation, confidence 1.
        seg_len, stride: Windows (T frames, every ``stride`` frames) within the event.
        tube_size, patch, margin, max_person_ratio: The tube and the token grid
            (``PersonTubeCrop``'s size, margin and cap; the cube embedding's token side).

    Returns:
        list: One dict per window: ``event``, ``clip``, ``person``, ``start`` and the
        :func:`tube_coverage` figures plus ``person_px``.
    """
    renderer = ClipRenderer(clip, cam, fps)
    labels_at: Dict[int, np.ndarray] = {}
    rows = []
    for slot, (person, track) in enumerate(zip(clip.persons, renderer.tracks), start=1):
        if not person.anomalous or person.attachment is None:
            continue
        n_frames = clip.n_frames
        points = np.full((n_frames, 17, 3), np.nan)
        if keypoints is None:
            points[:, :, :2] = track.image[:, :17]
            points[:, :, 2] = 1.0
            detected = track.on_screen.copy()
        else:
            frames, values = keypoints.get(person.pid, (np.zeros(0, int), np.zeros((0, 17, 3))))
            points[frames] = values
            detected = np.zeros(n_frames, dtype=bool)
            detected[frames] = True
        for start in _windows(detected & track.performing, seg_len, stride):
            window = points[start:start + seg_len]  # (T, 17, 3)
            boxes = keypoint_tube_boxes(window, 0.2, margin, 1.0, 16.0, max_person_ratio)
            middle = start + seg_len // 2
            if middle not in labels_at:
                labels_at[middle] = renderer.render(middle)[1]
            mask = labels_at[middle] == slot * LABEL_STRIDE + PARTS['object']
            # the middle frame's pixel box, as PersonTubeCrop cuts it
            box = whole_pixel_boxes(boxes)[seg_len // 2]
            side = int(box[2] - box[0])
            row = dict(event=person.anomaly, clip=clip.name, person=person.pid, start=start)
            row.update(tube_coverage(mask, box, tube_size, patch))
            xy = window[seg_len // 2, :, :2]
            conf = window[seg_len // 2, :, 2] > 0.2
            height = float(np.ptp(xy[conf, 1])) if conf.any() else float('nan')
            row['person_px'] = height * tube_size / side
            rows.append(row)
    return rows


def summarize_coverage(rows: List[Dict]) -> Dict[str, Dict[str, float]]:
    """Per event type: windows measured, the median of every figure, and the share of windows
    whose object covers at least one token's area (``share_token_area_ge_1``)."""
    summary: Dict[str, Dict[str, float]] = {}
    for event in sorted({r['event'] for r in rows}):
        mine = [r for r in rows if r['event'] == event]
        entry: Dict[str, float] = {'windows': len(mine)}
        for key in ('pixel_fraction', 'token_area', 'tokens_touched', 'tokens_half',
                    'person_px'):
            entry[key] = float(np.nanmedian([r[key] for r in mine]))
        entry['share_token_area_ge_1'] = float(np.mean([r['token_area'] >= 1.0 for r in mine]))
        summary[event] = entry
    return summary
