"""Transforms of skeleton windows."""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmaction.registry import TRANSFORMS
from ..pose_utils import normalize_windows


@TRANSFORMS.register_module()
class NormalizePoseWindow(BaseTransform):
    """STG-NF per-window normalisation.

    Divides x, y by the video resolution, subtracts their mean over frames and joints and
    divides both by the standard deviation of y; the confidence channel is unchanged.

    Required Keys:
        - keypoint: (T, V, C) window, C >= 2.

    Modified Keys:
        - keypoint: float32, normalised.

    Args:
        video_resolution (tuple): (width, height). Default (856, 480) as in STG-NF.
    """

    def __init__(self, video_resolution: Tuple[float, float] = (856., 480.)) -> None:
        self.video_resolution = tuple(video_resolution)

    def transform(self, results: Dict) -> Dict:
        window = results['keypoint'][None]  # (1, T, V, C)
        normalised, degenerate = normalize_windows(window, self.video_resolution)
        if degenerate[0]:
            raise ValueError(
                f'degenerate pose window (no vertical spread) in clip '
                f'{results.get("clip_name", "?")}, person {results.get("person_id", "?")}, '
                f'frame {results.get("start_frame", "?")}; PoseWindowDataset skips these')
        results['keypoint'] = normalised[0]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(video_resolution={self.video_resolution})'


@TRANSFORMS.register_module()
class RandomFlipPoseWindow(BaseTransform):
    """Mirror a normalised window horizontally with probability ``prob``.

    STG-NF trains with a flipped copy of every window. On a mean-centred window the mirror
    image x -> 1 - x becomes x -> -x, so no joint relabelling is involved (the official
    augmentation does not swap left and right joints either).

    Required Keys:
        - keypoint: (T, V, C) normalised window.

    Modified Keys:
        - keypoint

    Added Keys:
        - flip: whether the window was flipped.

    Args:
        prob (float): Flip probability.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    def transform(self, results: Dict) -> Dict:
        flip = bool(np.random.rand() < self.prob)
        if flip:
            keypoint = results['keypoint'].copy()
            keypoint[..., 0] = -keypoint[..., 0]
            results['keypoint'] = keypoint
        results['flip'] = flip
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'
