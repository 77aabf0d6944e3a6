"""Region- and track-based detection criteria, RBDC and TBDC (Ramachandra & Jones, "Street
Scene: A new dataset and evaluation protocol for video anomaly detection", WACV 2020).

Pure numpy maths on boxes; the readers of the datasets' region ground truth are in
:mod:`.region_gt` and the metric in :class:`~mgenet_mm.evaluation.VADRegionMetric`.

Definitions (as the UBnormal authors report them):

* A **detection** is a box with an anomaly score in one frame (here: a window's score on the
  person's box in the window's middle frame). A **GT region** is a box of an anomalous object
  in one frame; the regions of one anomalous object over time form a **GT track**.
* At a threshold ``t``, the detections whose score is ``>= t`` are kept. A GT region is
  **detected** when a kept detection of its frame overlaps it with IoU ``>= 0.1``. A kept
  detection that overlaps no GT region of its frame with IoU ``>= 0.1`` is a **false positive**.
* **RBDR** (region-based detection rate) = detected GT regions / all GT regions;
  **FPR** = false-positive detections per frame = false positives / frames of the evaluated set.
* **RBDC** is the area under RBDR(FPR) for FPR in [0, 1].
* A GT track is **detected** when at least 10 % of its regions are (``ceil(0.1 n)`` of its ``n``
  regions, at least one). **TBDR** = detected tracks / all tracks; **TBDC** is the area under
  TBDR(FPR) over the same range.

The curve has one point per distinct detection score (every threshold at which something
changes), plus (0, 0) for a threshold above every score. Points are joined by straight lines
(the trapezoidal rule); the curve is cut at FPR = 1, interpolated there when a segment crosses
it, and, when even the lowest threshold stays below FPR = 1, continues flat at its last rate
up to FPR = 1 (no threshold can add detections beyond all of them). Both areas lie in [0, 1].
A set without any detection, or without any GT region, has RBDC = TBDC = 0, with a warning
(never NaN).

Boxes are ``(x1, y1, x2, y2)`` with ``x2 > x1`` and ``y2 > y1`` (pixel boxes end exclusive, so a
box's area is ``(x2 - x1) * (y2 - y1)``). Frames are any integers that identify a frame across the
whole set (e.g. a clip's offset plus the frame index); tracks likewise.
"""
from __future__ import annotations

import warnings
from typing import Dict

import numpy as np

__all__ = [
    'IOU_THRESHOLD', 'TRACK_FRACTION', 'box_iou', 'check_boxes', 'match_detections',
    'track_detection_scores', 'detection_curves', 'area_under_fpr', 'rbdc_tbdc'
]

#: IoU a detection needs with a GT region to detect it (beta of the Street Scene paper).
IOU_THRESHOLD = 0.1
#: Fraction of its regions a GT track needs detected (alpha of the Street Scene paper).
TRACK_FRACTION = 0.1
#: The curves are integrated over FPR in [0, MAX_FPR] (false positives per frame).
MAX_FPR = 1.0


def check_boxes(boxes: np.ndarray, what: str = 'box') -> np.ndarray:
    """(N, 4) finite boxes of positive width and height, as float64.

    Raises:
        ValueError: Wrong shape, a non-finite value, or a box of zero or negative size (the
            message gives the first such box's index and value, prefixed by ``what``).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f'{what}: expected (N, 4) boxes (x1, y1, x2, y2), got shape '
                         f'{boxes.shape}')
    bad = ~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] <= boxes[:, 0]) | (
        boxes[:, 3] <= boxes[:, 1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f'{what} {i} {boxes[i].tolist()} has zero or negative size or is not '
                         f'finite ({int(bad.sum())} such boxes); boxes are (x1, y1, x2, y2) with '
                         'x2 > x1 and y2 > y1')
    return boxes


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of (N, 4) and (M, 4) boxes -> (N, M)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)  # (N, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)  # (M, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)  # (N, M)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def match_detections(det_frames: np.ndarray, det_boxes: np.ndarray, det_scores: np.ndarray,
                     gt_frames: np.ndarray, gt_boxes: np.ndarray,
                     iou_thr: float = IOU_THRESHOLD) -> Dict[str, np.ndarray]:
    """Which detections hit a GT region, and from which threshold on each region is detected.

    Args:
        det_frames, det_boxes, det_scores: (D,) frame ids, (D, 4) boxes, (D,) scores.
        gt_frames, gt_boxes: (R,) frame ids, (R, 4) boxes of the GT regions.
        iou_thr: IoU needed (``>=``).

    Returns:
        dict: ``region_scores`` (R,) the highest score of a detection of the region's frame
        with IoU >= ``iou_thr`` (``-inf`` if none: never detected), i.e. the region is detected
        at every threshold ``t <= region_scores``; ``true_positive`` (D,) bool, the detection
        overlaps some GT region of its frame with IoU >= ``iou_thr``.
    """
    det_frames = np.asarray(det_frames, dtype=np.int64).reshape(-1)
    gt_frames = np.asarray(gt_frames, dtype=np.int64).reshape(-1)
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    region_scores = np.full(len(gt_frames), -np.inf)
    true_positive = np.zeros(len(det_frames), dtype=bool)
    det_order = np.argsort(det_frames, kind='stable')
    gt_order = np.argsort(gt_frames, kind='stable')
    det_sorted, gt_sorted = det_frames[det_order], gt_frames[gt_order]
    common = np.intersect1d(det_sorted, gt_sorted)  # frames with detections and regions
    d_lo, d_hi = (np.searchsorted(det_sorted, common, side=s) for s in ('left', 'right'))
    g_lo, g_hi = (np.searchsorted(gt_sorted, common, side=s) for s in ('left', 'right'))
    for dl, dh, gl, gh in zip(d_lo, d_hi, g_lo, g_hi):
        dets, regions = det_order[dl:dh], gt_order[gl:gh]
        hit = box_iou(det_boxes[dets], gt_boxes[regions]) >= iou_thr  # (n_dets, n_regions)
        true_positive[dets] = hit.any(axis=1)
        region_scores[regions] = np.where(hit, det_scores[dets, None], -np.inf).max(axis=0)
    return dict(region_scores=region_scores, true_positive=true_positive)


def track_detection_scores(region_scores: np.ndarray, gt_tracks: np.ndarray,
                           fraction: float = TRACK_FRACTION) -> np.ndarray:
    """The threshold from which each GT track is detected (at least ``fraction`` of its
    regions detected).

    A track of ``n`` regions needs ``k = max(1, ceil(fraction * n))`` detected regions; it is
    detected at every threshold ``t`` <= its ``k``-th largest region score.

    Args:
        region_scores: (R,) from :func:`match_detections`.
        gt_tracks: (R,) track id of every region.
        fraction: The fraction of regions needed.

    Returns:
        np.ndarray: (K,) one score per distinct track id, in sorted id order (``-inf``: never).
    """
    region_scores = np.asarray(region_scores, dtype=np.float64).reshape(-1)
    _, inverse, counts = np.unique(np.asarray(gt_tracks).reshape(-1), return_inverse=True,
                                   return_counts=True)
    if not len(counts):
        return np.zeros(0)
    # The 1e-9 keeps an exact product (0.1 * 30 = 3.0000000000000004 in floats) from rounding up.
    needed = np.maximum(np.ceil(fraction * counts - 1e-9), 1).astype(np.int64)  # (K,)
    order = np.lexsort((-region_scores, inverse))  # by track, then by descending score
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])  # first region of each track
    return region_scores[order[starts + needed - 1]]


def _count_at_least(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold, how many values are >= it."""
    values = np.sort(values)
    return len(values) - np.searchsorted(values, thresholds, side='left')


def detection_curves(det_scores: np.ndarray, true_positive: np.ndarray,
                     region_scores: np.ndarray, track_scores: np.ndarray,
                     num_frames: int) -> Dict[str, np.ndarray]:
    """FPR, RBDR and TBDR at every distinct detection score, plus (0, 0) at ``+inf``.

    Returns:
        dict: ``thresholds`` (P,) descending, from ``+inf``; ``fpr``, ``rbdr``, ``tbdr`` (P,),
        all non-decreasing. Rates of a set without regions (tracks) are 0.
    """
    if num_frames <= 0:
        raise ValueError(f'num_frames must be > 0, got {num_frames}')
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    thresholds = np.concatenate([[np.inf], np.unique(det_scores)[::-1]])  # (P,)
    false_pos = _count_at_least(det_scores[~np.asarray(true_positive, dtype=bool)], thresholds)
    regions = _count_at_least(np.asarray(region_scores), thresholds)
    tracks = _count_at_least(np.asarray(track_scores), thresholds)
    return dict(thresholds=thresholds, fpr=false_pos / num_frames,
                rbdr=regions / max(len(region_scores), 1),
                tbdr=tracks / max(len(track_scores), 1))


def area_under_fpr(fpr: np.ndarray, rate: np.ndarray, max_fpr: float = MAX_FPR) -> float:
    """Area under a detection-rate curve for FPR in [0, ``max_fpr``] (trapezoids).

    Args:
        fpr: (P,) non-decreasing false positives per frame, starting at 0.
        rate: (P,) the detection rate at each point.
        max_fpr: Upper end of the range.

    Returns:
        float: The area; the curve is interpolated at ``max_fpr`` where a segment crosses it and
        continues flat at its last rate when it ends before.
    """
    fpr = np.asarray(fpr, dtype=np.float64).reshape(-1)
    rate = np.asarray(rate, dtype=np.float64).reshape(-1)
    if len(fpr) == 0 or fpr[0] != 0 or np.any(np.diff(fpr) < 0):
        raise ValueError('fpr must be non-decreasing and start at 0')
    inside = int(np.searchsorted(fpr, max_fpr, side='right'))  # points with fpr <= max_fpr
    xs, ys = fpr[:inside], rate[:inside]
    if inside < len(fpr):
        x0, x1, y0, y1 = fpr[inside - 1], fpr[inside], rate[inside - 1], rate[inside]
        end = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
    else:
        end = ys[-1]
    xs, ys = np.append(xs, max_fpr), np.append(ys, end)
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))


def rbdc_tbdc(det_frames: np.ndarray, det_boxes: np.ndarray, det_scores: np.ndarray,
              gt_frames: np.ndarray, gt_boxes: np.ndarray, gt_tracks: np.ndarray,
              num_frames: int, iou_thr: float = IOU_THRESHOLD,
              track_fraction: float = TRACK_FRACTION) -> Dict[str, float]:
    """RBDC and TBDC of a set of detections (see the module docstring for the definitions).

    Args:
        det_frames: (D,) frame id of each detection.
        det_boxes: (D, 4) detection boxes (x1, y1, x2, y2).
        det_scores: (D,) anomaly scores, higher = more anomalous; finite.
        gt_frames: (R,) frame id of each GT region.
        gt_boxes: (R, 4) GT region boxes.
        gt_tracks: (R,) track id of each GT region.
        num_frames: Frames of the evaluated set (the FPR's denominator), including those
            without any detection or region.
        iou_thr: IoU a detection needs with a region (default 0.1).
        track_fraction: Fraction of its regions a track needs detected (default 0.1).

    Returns:
        dict: ``rbdc``, ``tbdc`` and the counts ``num_detections``, ``num_true_detections``,
        ``num_regions``, ``num_tracks``.

    Raises:
        ValueError: Mismatched lengths, a non-finite score, a box of zero or negative size.
    """
    det_boxes = check_boxes(det_boxes, 'detection box')
    gt_boxes = check_boxes(gt_boxes, 'GT region box')
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    det_frames = np.asarray(det_frames, dtype=np.int64).reshape(-1)
    gt_frames = np.asarray(gt_frames, dtype=np.int64).reshape(-1)
    gt_tracks = np.asarray(gt_tracks).reshape(-1)
    if not len(det_frames) == len(det_boxes) == len(det_scores):
        raise ValueError(f'detections: {len(det_frames)} frames, {len(det_boxes)} boxes and '
                         f'{len(det_scores)} scores')
    if not len(gt_frames) == len(gt_boxes) == len(gt_tracks):
        raise ValueError(f'GT regions: {len(gt_frames)} frames, {len(gt_boxes)} boxes and '
                         f'{len(gt_tracks)} track ids')
    if not np.isfinite(det_scores).all():
        raise ValueError(f'{int((~np.isfinite(det_scores)).sum())} detection scores are not '
                         'finite')
    counts = dict(num_detections=len(det_scores), num_regions=len(gt_frames),
                  num_tracks=len(np.unique(gt_tracks)))
    if not len(det_scores) or not len(gt_frames):
        lacking = 'detection' if not len(det_scores) else 'GT region'
        warnings.warn(f'RBDC/TBDC of a set without any {lacking} is 0', RuntimeWarning,
                      stacklevel=2)
        return dict(rbdc=0.0, tbdc=0.0, num_true_detections=0, **counts)
    matched = match_detections(det_frames, det_boxes, det_scores, gt_frames, gt_boxes, iou_thr)
    tracks = track_detection_scores(matched['region_scores'], gt_tracks, track_fraction)
    curves = detection_curves(det_scores, matched['true_positive'], matched['region_scores'],
                              tracks, num_frames)
    return dict(rbdc=area_under_fpr(curves['fpr'], curves['rbdr']),
                tbdc=area_under_fpr(curves['fpr'], curves['tbdr']),
                num_true_detections=int(matched['true_positive'].sum()), **counts)
