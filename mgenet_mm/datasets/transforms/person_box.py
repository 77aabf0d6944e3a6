"""The person box of a window without its pixels: what RBDC/TBDC place a window's score on.

:class:`~mgenet_mm.datasets.transforms.PersonTubeCrop` adds the box it cuts the tube from
(``tube_box``) to RGB pipelines; pose-only pipelines (STG-NF) and cached pipelines
(``LoadCachedFeatures``) never cut a tube. :class:`PersonTubeBox` computes the same box from the
keypoints alone, with the same rule (:func:`keypoint_tube_boxes`, :func:`whole_pixel_boxes`), so
that :class:`~mgenet_mm.evaluation.VADRegionMetric` gets it from every pipeline.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

from mmcv.transforms import BaseTransform

from mmaction.registry import TRANSFORMS
from .processing import _pair, check_tube_arguments, window_pixel_boxes

__all__ = ['PersonTubeBox']


@TRANSFORMS.register_module()
class PersonTubeBox(BaseTransform):
    """Add the pixel box of a window's person tube in its middle frame, without cropping.

    The box is the one :class:`PersonTubeCrop` with the same arguments cuts from frame T // 2
    (the frame the window's score is given to): the union of the window's confident keypoints
    with a relative ``margin``, of the tube's aspect ratio, its height capped at
    ``max_person_ratio`` times the person's size. Pack it with ``meta_keys=(..., 'tube_box')``.
    The keypoints must be in pixels: place it before ``NormalizePoseWindow``.

    Required Keys:
        - keypoint (or ``keypoint_key``): (T, V, 3) raw keypoints, (x, y, confidence)

    Added Keys:
        - tube_box: (x1, y1, x2, y2) tuple of 4 ints, end exclusive (PersonTubeCrop's values;
          a tuple, so that packing it into the metainfo needs no deep copy)

    Args:
        size (int | tuple): The tube's (height, width), for its aspect ratio. Default 64.
        margin, score_thr, min_size, keypoint_key, max_person_ratio: As for
            :class:`PersonTubeCrop` (defaults 0.1, 0.2, 16, ``'keypoint'``, 1.5).
    """

    def __init__(self,
                 size: Union[int, Tuple[int, int]] = 64,
                 margin: float = 0.1,
                 score_thr: float = 0.2,
                 min_size: float = 16.0,
                 keypoint_key: str = 'keypoint',
                 max_person_ratio: Optional[float] = 1.5) -> None:
        check_tube_arguments(margin, max_person_ratio)
        self.size = _pair(size, 'size')
        self.margin = margin
        self.score_thr = score_thr
        self.min_size = min_size
        self.keypoint_key = keypoint_key
        self.max_person_ratio = max_person_ratio

    def transform(self, results: Dict) -> Dict:
        boxes = window_pixel_boxes(results, self.keypoint_key, self.size, self.score_thr,
                                   self.margin, self.min_size, self.max_person_ratio,
                                   type(self).__name__)  # (T, 4)
        box = boxes[len(boxes) // 2]  # (4,) of the middle frame
        results['tube_box'] = tuple(int(v) for v in box)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, margin={self.margin}, '
                f'score_thr={self.score_thr}, min_size={self.min_size}, '
                f'keypoint_key={self.keypoint_key!r}, '
                f'max_person_ratio={self.max_person_ratio})')
