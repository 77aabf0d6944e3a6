"""The pose-noise model: true keypoints turned into what a tracked pose estimator reports.

Pixel noise that grows with the person's size and with occlusion, confidences by visibility
class, dropped detections and short track losses, as AlphaPose-style tracking gives them.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from .plans import PersonPlan
from .vocabulary import VISIBLE


class PoseObserver:
    """Turns true keypoints into AlphaPose-like detections: noise, confidences, dropped frames."""

    def __init__(self, person: PersonPlan, width: int, height: int):
        self.rng = np.random.default_rng([person.seed, 3])
        self.quality = self.rng.uniform(0.72, 0.9)
        self.gap = 0
        self.width, self.height = width, height
        self.frames: Dict[int, Dict] = {}

    def observe(self, t: int, kp: np.ndarray, visibility: np.ndarray, height_px: float) -> None:
        """Record (or drop) the detection of frame t.

        Args:
            t: Frame.
            kp: (17, 2) true keypoints in pixels.
            visibility: (17,) classes from :meth:`ClipRenderer.joint_visibility`.
            height_px: The person's standing height in pixels at its depth.
        """
        rng = self.rng
        # Draw every random number every frame, so dropped frames do not shift the stream.
        u_drop, u_gap, gap_len = rng.random(), rng.random(), int(rng.integers(3, 8))
        noise = rng.normal(0, 1, size=(17, 2))
        c_vis = rng.normal(0, 0.05, size=17)
        c_self = rng.uniform(0.25, 0.5, size=17)
        c_occ = rng.uniform(0.05, 0.35, size=17)
        c_out = rng.uniform(0.02, 0.15, size=17)
        occ_extra = rng.uniform(0, 2.0)
        score_gain = rng.uniform(0.95, 1.06)
        self.quality = float(np.clip(self.quality + rng.normal(0, 0.01), 0.65, 0.93))
        if self.gap > 0:
            self.gap -= 1
            return
        if u_gap < 0.005:  # a short track loss, as trackers have
            self.gap = gap_len - 1
            return
        visible = visibility == VISIBLE
        if u_drop < 0.02 or (visible.sum() < 5 and u_drop < 0.7):
            return
        # Pixel noise of 1-2 px for visible joints (more for larger people), inferred joints are
        # placed much less precisely.
        sigma_vis = float(np.clip(0.6 + height_px / 90.0, 0.8, 2.2))
        sigma = np.choose(visibility, (sigma_vis, 1.8 * sigma_vis, 2.5 * sigma_vis + occ_extra,
                                       2.5 * sigma_vis))
        xy = kp + noise * sigma[:, None]
        c_visible = np.clip(self.quality + c_vis - (0.05 if height_px < 60 else 0.0)
                            - np.where(np.arange(17) < 5, 0.04, 0.0), 0.52, 0.99)
        conf = np.choose(visibility, (c_visible, c_self, c_occ, c_out))
        xy[:, 0] = np.clip(xy[:, 0], 0, self.width - 1)
        xy[:, 1] = np.clip(xy[:, 1], 0, self.height - 1)
        # (17, 3) x, y, confidence -> (51,), the flat AlphaPose 'keypoints' list
        values = np.concatenate([xy, conf[:, None]], axis=1).ravel()
        self.frames[t] = {'keypoints': [round(float(v), 3) for v in values],
                          'scores': round(float(conf.mean() * score_gain), 4)}
