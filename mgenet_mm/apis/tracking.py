"""Frame-to-frame greedy tracking of detected people (boxes, optionally keypoints).

The tracker gives each detection of a frame the id of a live track or a new one. A track is
matched against where it is expected to be *now*: its last box moved on by its estimated
per-frame velocity (a constant-velocity model), not the box where it was last seen. That is what
keeps two people apart when they cross: just before they overlap, the other person's new box can
be closer to a track's *last* box than its own person's new box is, but it is far from the
track's *predicted* box. Matching is greedy on a similarity (IoU of the predicted box, optionally
blended with the OKS of the shifted last pose) above a threshold; a track that finds no match
survives ``max_missing`` frames (and is then matched against its extrapolated box) before it is
closed, after which the person gets a new id. Ids are 1, 2, 3 ... in order of creation, and ties
are broken by track id and detection order, so a run is reproducible.

Plain numpy; nothing here knows about mmengine or the detector.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

__all__ = ['COCO_KEYPOINT_SIGMAS', 'bbox_iou', 'keypoint_oks', 'Track', 'GreedyTracker']

#: Per-keypoint OKS constants of the COCO-17 keypoints (the COCO keypoint evaluation's values).
COCO_KEYPOINT_SIGMAS = np.array([
    .26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89
], dtype=np.float64) / 10.0


def bbox_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of ``(x1, y1, x2, y2)`` boxes.

    Args:
        boxes_a (np.ndarray): (M, 4) boxes.
        boxes_b (np.ndarray): (N, 4) boxes.

    Returns:
        np.ndarray: (M, N) IoU in [0, 1]; 0 where a union is empty.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])  # (M, N, 2)
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)  # (M, N)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def keypoint_oks(keypoints_a: np.ndarray,
                 keypoints_b: np.ndarray,
                 areas_a: np.ndarray,
                 sigmas: Optional[np.ndarray] = None,
                 kpt_thr: float = 0.3) -> np.ndarray:
    """Pairwise object keypoint similarity (COCO's OKS) between two sets of poses.

    Only joints confident (score > ``kpt_thr``) in both poses count; a pair with no such joint
    has OKS 0. The scale is the area of the first set's poses (their boxes).

    Args:
        keypoints_a (np.ndarray): (M, K, 3) keypoints ``(x, y, score)``.
        keypoints_b (np.ndarray): (N, K, 3) keypoints.
        areas_a (np.ndarray): (M,) areas (pixels squared) of the first set.
        sigmas (np.ndarray, optional): (K,) per-joint constants. Defaults to COCO-17's.
        kpt_thr (float): Joint confidence threshold.

    Returns:
        np.ndarray: (M, N) OKS in [0, 1].
    """
    a = np.asarray(keypoints_a, dtype=np.float64)
    b = np.asarray(keypoints_b, dtype=np.float64)
    if sigmas is None:
        sigmas = COCO_KEYPOINT_SIGMAS
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if a.shape[1:] != (len(sigmas), 3) or b.shape[1:] != (len(sigmas), 3):
        raise ValueError(f'keypoints must be (n, {len(sigmas)}, 3), got {a.shape} and {b.shape}')
    sq_dist = ((a[:, None, :, :2] - b[None, :, :, :2])**2).sum(-1)  # (M, N, K)
    variances = (2 * sigmas)**2  # COCO's 2 * sigma per joint
    scale = np.maximum(np.asarray(areas_a, dtype=np.float64), np.finfo(np.float64).eps)
    similarity = np.exp(-sq_dist / (2 * variances[None, None] * scale[:, None, None]))
    visible = (a[:, None, :, 2] > kpt_thr) & (b[None, :, :, 2] > kpt_thr)  # (M, N, K)
    count = visible.sum(-1)
    total = (similarity * visible).sum(-1)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


@dataclass
class Track:
    """State of one tracked person.

    Attributes:
        track_id (int): The person id (1, 2, 3 ...).
        box (np.ndarray): (4,) last matched box ``(x1, y1, x2, y2)``.
        velocity (np.ndarray): (4,) estimated change of the box per frame.
        keypoints (np.ndarray | None): (K, 3) last matched pose, if poses are given.
        last_frame (int): Frame index of the last match.
        hits (int): Number of matched frames.
    """
    track_id: int
    box: np.ndarray
    velocity: np.ndarray
    keypoints: Optional[np.ndarray]
    last_frame: int
    hits: int = 1

    def predict(self, frame_idx: int, use_motion: bool = True) -> np.ndarray:
        """The box expected at ``frame_idx`` (constant velocity since the last match)."""
        if not use_motion:
            return self.box.copy()
        return self.box + self.velocity * (frame_idx - self.last_frame)

    def predict_keypoints(self, frame_idx: int, use_motion: bool = True) -> Optional[np.ndarray]:
        """The last pose moved by the predicted displacement of the box centre."""
        if self.keypoints is None:
            return None
        keypoints = self.keypoints.copy()
        if use_motion:
            shift = (self.velocity[:2] + self.velocity[2:]) / 2 * (frame_idx - self.last_frame)
            keypoints[:, :2] += shift
        return keypoints


class GreedyTracker:
    """Greedy frame-to-frame tracker with a constant-velocity motion model.

    Call :meth:`update` once per frame, in increasing frame order (frames without detections
    may be skipped or given with no boxes; gaps are measured in frame indices).

    Args:
        match_thr (float): A track and a detection are matched only when their similarity is
            above this. Defaults to 0.3.
        max_missing (int): Frames a track survives without a match. A track last matched at
            frame ``f`` can still be matched at frame ``f + max_missing + 1``; after that it is
            closed and the person gets a new id. Defaults to 2.
        use_motion (bool): Match against the box predicted by the track's velocity rather than
            its last box. Defaults to True.
        momentum (float): Smoothing of the velocity estimate, in [0, 1): the new estimate is
            ``momentum * old + (1 - momentum) * observed``; damps detector jitter. Defaults to
            0.5.
        oks_weight (float): Weight of OKS in the similarity ``(1 - w) * IoU + w * OKS``, used
            when both the track and the detection have keypoints; 0 matches by IoU only.
            Defaults to 0.
        sigmas (np.ndarray, optional): Per-joint OKS constants. Defaults to COCO-17's.
        kpt_thr (float): Joint confidence below which a joint is left out of OKS.
    """

    def __init__(self,
                 match_thr: float = 0.3,
                 max_missing: int = 2,
                 use_motion: bool = True,
                 momentum: float = 0.5,
                 oks_weight: float = 0.0,
                 sigmas: Optional[np.ndarray] = None,
                 kpt_thr: float = 0.3) -> None:
        if max_missing < 0:
            raise ValueError(f'max_missing must be >= 0, got {max_missing}')
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f'momentum must be in [0, 1), got {momentum}')
        if not 0.0 <= oks_weight <= 1.0:
            raise ValueError(f'oks_weight must be in [0, 1], got {oks_weight}')
        self.match_thr = float(match_thr)
        self.max_missing = int(max_missing)
        self.use_motion = bool(use_motion)
        self.momentum = float(momentum)
        self.oks_weight = float(oks_weight)
        self.sigmas = sigmas
        self.kpt_thr = float(kpt_thr)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1 (call between clips)."""
        self.tracks: List[Track] = []
        self.next_id = 1
        self.last_frame: Optional[int] = None

    def similarity(self, frame_idx: int, boxes: np.ndarray,
                   keypoints: Optional[np.ndarray]) -> np.ndarray:
        """(num_tracks, num_detections) similarity of the live tracks to the detections."""
        if not self.tracks or len(boxes) == 0:
            return np.zeros((len(self.tracks), len(boxes)))
        predicted = np.stack([t.predict(frame_idx, self.use_motion) for t in self.tracks])
        sim = bbox_iou(predicted, boxes)
        if self.oks_weight > 0 and keypoints is not None:
            oks = np.zeros_like(sim)
            for row, track in enumerate(self.tracks):
                track_kpts = track.predict_keypoints(frame_idx, self.use_motion)
                if track_kpts is None:
                    # No pose to compare: the IoU alone decides for this track.
                    oks[row] = sim[row]
                    continue
                box = predicted[row]
                area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
                oks[row] = keypoint_oks(track_kpts[None], keypoints, np.array([area]),
                                        self.sigmas, self.kpt_thr)[0]
            sim = (1 - self.oks_weight) * sim + self.oks_weight * oks
        return sim

    def update(self,
               frame_idx: int,
               boxes: np.ndarray,
               keypoints: Optional[np.ndarray] = None) -> np.ndarray:
        """Assign track ids to the detections of one frame.

        Args:
            frame_idx (int): Index of the frame; strictly larger than the previous call's.
            boxes (np.ndarray): (N, 4) detected boxes ``(x1, y1, x2, y2)``, in pixels.
            keypoints (np.ndarray, optional): (N, K, 3) poses ``(x, y, score)`` of the
                detections, used for OKS and kept with the tracks.

        Returns:
            np.ndarray: (N,) int64 track ids, in detection order.
        """
        frame_idx = int(frame_idx)
        if self.last_frame is not None and frame_idx <= self.last_frame:
            raise ValueError(f'frames must be given in increasing order: got frame {frame_idx} '
                             f'after frame {self.last_frame}')
        self.last_frame = frame_idx
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if keypoints is not None:
            keypoints = np.asarray(keypoints, dtype=np.float64)
            if len(keypoints) != len(boxes) or keypoints.ndim != 3 or keypoints.shape[2] != 3:
                raise ValueError(f'keypoints must be ({len(boxes)}, K, 3), '
                                 f'got {keypoints.shape}')

        # Close the tracks that have been missing for more than max_missing frames.
        self.tracks = [
            t for t in self.tracks if frame_idx - t.last_frame - 1 <= self.max_missing
        ]

        sim = self.similarity(frame_idx, boxes, keypoints)
        ids = np.zeros(len(boxes), dtype=np.int64)
        if sim.size:
            rows, cols = np.nonzero(sim > self.match_thr)
            # Best pairs first; equal similarities in track-then-detection order, so that the
            # result does not depend on the sort implementation.
            order = np.lexsort((cols, rows, -sim[rows, cols]))
            track_done = np.zeros(len(self.tracks), dtype=bool)
            for row, col in zip(rows[order], cols[order]):
                if track_done[row] or ids[col]:
                    continue
                track_done[row] = True
                ids[col] = self.tracks[row].track_id
                self._refresh(self.tracks[row], frame_idx, boxes[col],
                              None if keypoints is None else keypoints[col])

        for col in np.flatnonzero(ids == 0):
            ids[col] = self.next_id
            self.tracks.append(
                Track(track_id=self.next_id, box=boxes[col].copy(), velocity=np.zeros(4),
                      keypoints=None if keypoints is None else keypoints[col].copy(),
                      last_frame=frame_idx))
            self.next_id += 1
        return ids

    def _refresh(self, track: Track, frame_idx: int, box: np.ndarray,
                 keypoints: Optional[np.ndarray]) -> None:
        """Move a matched track to its new detection and update its velocity."""
        observed = (box - track.box) / (frame_idx - track.last_frame)
        if track.hits == 1:
            # The first displacement is the only evidence of motion: take it as it is.
            track.velocity = observed
        else:
            track.velocity = self.momentum * track.velocity + (1 - self.momentum) * observed
        track.box = box.copy()
        if keypoints is not None:
            track.keypoints = keypoints.copy()
        track.last_frame = frame_idx
        track.hits += 1

    @property
    def live_track_ids(self) -> Sequence[int]:
        """Ids of the tracks that can still be matched (before the next frame's expiry)."""
        return [t.track_id for t in self.tracks]
