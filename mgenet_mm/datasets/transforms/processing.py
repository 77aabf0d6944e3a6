"""Processing transforms of the RGB side of a window: the person tube and the scene image.

They work on frames decoded by mmaction2's loading transforms (see :mod:`.loading`) and leave
pixel values in 0..255: mean/std normalisation is the data preprocessor's job.
``PersonTubeCrop`` needs the keypoints in pixels, so it comes before ``NormalizePoseWindow``
(:mod:`.pose_transforms`).

The frame rules (:func:`keypoint_tube_boxes`, :func:`scene_frame_indices`, :func:`median_scene`,
:func:`resize_image`) are functions so that :mod:`mgenet_mm.apis` computes the same tube and
scene on a stream as these transforms do offline.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmaction.registry import TRANSFORMS
from .utils import describe_window

__all__ = [
    'PersonTubeCrop', 'SceneImage', 'resize_image', 'crop_with_padding', 'keypoint_tube_box',
    'keypoint_tube_boxes', 'whole_pixel_boxes', 'window_pixel_boxes', 'check_tube_arguments',
    'scene_frame_indices', 'median_scene'
]


def _pair(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    """int or (height, width) -> (height, width) of positive ints."""
    pair = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f'{name} must be a positive int or (height, width), got {size}')
    return pair




def resize_image(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize (h, w, C) to ``size`` = (height, width): area averaging when shrinking (no
    aliasing), bilinear when enlarging."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    shrink = image.shape[0] > height or image.shape[1] > width
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def crop_with_padding(image: np.ndarray, x0: int, y0: int, width: int, height: int,
                      pad_value: int = 0) -> np.ndarray:
    """The (height, width) region of ``image`` whose top-left pixel is (x0, y0); the part of it
    outside the image is filled with ``pad_value``."""
    img_h, img_w = image.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + width <= img_w and y0 + height <= img_h:
        return image[y0:y0 + height, x0:x0 + width]  # inside: a view, no copy
    out = np.full((height, width) + image.shape[2:], pad_value, dtype=image.dtype)
    xa, xb = max(x0, 0), min(x0 + width, img_w)
    ya, yb = max(y0, 0), min(y0 + height, img_h)
    if xa < xb and ya < yb:
        out[ya - y0:yb - y0, xa - x0:xb - x0] = image[ya:yb, xa:xb]
    return out


def _confident_points(points: np.ndarray, score_thr: float) -> np.ndarray:
    """(N, C) keypoints -> bool (N,): finite, and above ``score_thr`` when any of them is."""
    finite = np.isfinite(points[:, :2]).all(axis=1)
    keep = finite & (points[:, 2] > score_thr) if points.shape[1] > 2 else finite
    return keep if keep.any() else finite


def keypoint_tube_box(keypoint: np.ndarray, score_thr: float = 0.2, margin: float = 0.1,
                      aspect: float = 1.0, min_size: float = 16.0) -> np.ndarray:
    """One box for a whole window: the union of its confident keypoints, enlarged.

    The box encloses every keypoint with confidence > ``score_thr`` over all T frames (all
    finite keypoints when none is that confident), is grown to the aspect ratio
    ``aspect`` = width / height around its centre, and then by ``margin`` times its size on each
    side. Its height is at least ``min_size`` pixels.

    Args:
        keypoint (np.ndarray): (T, V, 3) keypoints in pixels, (x, y, confidence).

    Returns:
        np.ndarray: (4,) float64 box (x1, y1, x2, y2), possibly reaching outside the image.
    """
    points = keypoint.reshape(-1, keypoint.shape[-1])  # (T * V, C)
    keep = _confident_points(points, score_thr)
    if not keep.any():
        raise ValueError('no finite keypoint in the window')
    xy = points[keep, :2].astype(np.float64)
    (x1, y1), (x2, y2) = xy.min(axis=0), xy.max(axis=0)
    height = max(y2 - y1, (x2 - x1) / aspect, 1e-6) * (1 + 2 * margin)
    height = max(height, min_size)
    width = height * aspect
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])


def _frame_person_boxes(keypoint: np.ndarray, score_thr: float) -> np.ndarray:
    """(T, V, C) keypoints -> (T, 4) per-frame boxes of the confident keypoints; NaN rows for
    frames without a finite keypoint. The confidence rule is the window's (one threshold for the
    whole window, as :func:`keypoint_tube_box` applies it)."""
    flat = keypoint.reshape(-1, keypoint.shape[-1])  # (T * V, C)
    keep = _confident_points(flat, score_thr).reshape(keypoint.shape[:2])  # (T, V)
    boxes = np.full((len(keypoint), 4), np.nan)
    for t in np.flatnonzero(keep.any(axis=1)):
        xy = keypoint[t, keep[t], :2].astype(np.float64)
        boxes[t] = (*xy.min(axis=0), *xy.max(axis=0))
    return boxes


def keypoint_tube_boxes(keypoint: np.ndarray, score_thr: float = 0.2, margin: float = 0.1,
                        aspect: float = 1.0, min_size: float = 16.0,
                        max_person_ratio: Optional[float] = 1.5) -> np.ndarray:
    """The tube of a window: one box size for all T frames, a per-frame position.

    Starts from :func:`keypoint_tube_box` (the union of the window's keypoints). When
    ``max_person_ratio`` is given, the box height is capped at that many times the person's
    own size: the median over the frames of ``max(h_t, w_t / aspect)``, the height (or the
    aspect-scaled width, for a lying person) of the frame's keypoint box. A box within the cap
    is cut at the same place from every frame (the person moves inside it). A capped box (fast
    motion: a sprinter or rider crosses more than the cap within the window) keeps the union's
    centre as far as it can and slides only as much as needed to keep the frame's keypoint
    box, with ``margin`` times the person's size on each side, inside it: the person still
    moves within the tube and stays at its scale, instead of shrinking to a few pixels in a
    box that spans the whole path. Without the cap (``None``) every frame gets the union box.

    Args:
        keypoint (np.ndarray): (T, V, 3) keypoints in pixels, (x, y, confidence).
        score_thr, margin, aspect, min_size: As for :func:`keypoint_tube_box`.
        max_person_ratio (float, optional): Largest box height over the person's size.

    Returns:
        np.ndarray: (T, 4) float64 boxes (x1, y1, x2, y2), all of one size; frames without a
        keypoint take their position from the nearest frames (linear interpolation).
    """
    union = keypoint_tube_box(keypoint, score_thr, margin, aspect, min_size)
    boxes = np.repeat(union[None], len(keypoint), axis=0)  # (T, 4)
    if max_person_ratio is None:
        return boxes
    if max_person_ratio <= 0:
        raise ValueError(f'max_person_ratio must be > 0, got {max_person_ratio}')
    person = _frame_person_boxes(keypoint, score_thr)
    seen = np.isfinite(person[:, 0])
    extent = np.maximum(person[seen, 3] - person[seen, 1],
                        (person[seen, 2] - person[seen, 0]) / aspect)  # (T_seen,)
    size = float(np.median(extent))
    height = max(min(union[3] - union[1], max_person_ratio * size), min_size)
    if height >= union[3] - union[1]:
        return boxes
    width = height * aspect
    centre = np.array([(union[0] + union[2]) / 2, (union[1] + union[3]) / 2])
    pad = margin * size * np.array([aspect, 1.0])
    half = np.array([width, height]) / 2
    low = person[seen, 2:] + pad - half   # (T_seen, 2): smallest centre keeping the person in
    high = person[seen, :2] - pad + half  # largest such centre
    # A person larger than the box in one axis (rare: a fall across the frame) is centred.
    centres = np.where(low <= high, np.clip(centre, low, high), (low + high) / 2)
    frames = np.arange(len(keypoint))
    cx = np.interp(frames, frames[seen], centres[:, 0])
    cy = np.interp(frames, frames[seen], centres[:, 1])
    return np.stack([cx - half[0], cy - half[1], cx + half[0], cy + half[1]], axis=1)


def whole_pixel_boxes(boxes: np.ndarray) -> np.ndarray:
    """The pixel boxes a tube is cut at: (T, 4) float boxes of one size -> (T, 4) int64
    (x1, y1, x2, y2), end exclusive. The size is rounded once and kept in every frame; each
    box's centre is kept and its corner rounded."""
    width = max(int(round(boxes[0, 2] - boxes[0, 0])), 1)
    height = max(int(round(boxes[0, 3] - boxes[0, 1])), 1)
    x0 = np.round((boxes[:, 0] + boxes[:, 2]) / 2 - width / 2).astype(np.int64)  # (T,)
    y0 = np.round((boxes[:, 1] + boxes[:, 3]) / 2 - height / 2).astype(np.int64)
    return np.stack([x0, y0, x0 + width, y0 + height], axis=1)  # (T, 4)


def check_tube_arguments(margin: float, max_person_ratio: Optional[float]) -> None:
    """The argument checks of :class:`PersonTubeCrop` and :class:`PersonTubeBox`."""
    if margin < 0:
        raise ValueError(f'margin must be >= 0, got {margin}')
    if max_person_ratio is not None and max_person_ratio <= 0:
        raise ValueError(f'max_person_ratio must be > 0 or None, got {max_person_ratio}')


#: Normalised windows (NormalizePoseWindow) are centred on 0 with unit spread; a real person
#: never fits in the 10-pixel corner of a frame.
NORMALISED_LIMIT = 10.0


def window_pixel_boxes(results: Dict, keypoint_key: str, size: Tuple[int, int],
                       score_thr: float, margin: float, min_size: float,
                       max_person_ratio: Optional[float], owner: str) -> np.ndarray:
    """The whole-pixel tube box of every frame of a window, from its raw keypoints.

    The one rule of :class:`PersonTubeCrop` (which cuts these boxes) and :class:`PersonTubeBox`
    (which only reports the middle one): :func:`keypoint_tube_boxes` of the output's aspect
    ratio, rounded by :func:`whole_pixel_boxes`.

    Returns:
        np.ndarray: (T, 4) int64 boxes (x1, y1, x2, y2), end exclusive.

    Raises:
        ValueError: The keypoints look normalised, or no keypoint is confident; the message
            names the window and ``owner``, the transform.
    """
    keypoint = np.asarray(results[keypoint_key])
    if np.nanmax(np.abs(keypoint[..., :2])) < NORMALISED_LIMIT:
        raise ValueError(f'{describe_window(results)}: keypoints look normalised (all within '
                         f'{NORMALISED_LIMIT} of 0); {owner} needs them in pixels: place it '
                         'before NormalizePoseWindow')
    out_h, out_w = size
    try:
        boxes = keypoint_tube_boxes(keypoint, score_thr, margin, out_w / out_h, min_size,
                                    max_person_ratio)  # (T, 4)
    except ValueError as error:
        raise ValueError(f'{describe_window(results)}: {error}') from None
    return whole_pixel_boxes(boxes)


@TRANSFORMS.register_module()
class PersonTubeCrop(BaseTransform):
    """Crop the human-centric tube of a window from its decoded frames.

    The tube (see :func:`keypoint_tube_boxes`) is the union of the window's keypoints with
    confidence > ``score_thr`` over all T frames, with a relative ``margin`` on each side, made
    square (more generally, of the output's aspect ratio), its height capped at
    ``max_person_ratio`` times the person's own size. Within the cap the same box is cut from
    every frame, so the person's motion stays visible inside the tube instead of being cancelled
    by a per-frame re-centring. Beyond it (a sprinter or a rider crossing several body heights in
    one window) the box keeps its size and slides just enough to keep the person inside: the
    person keeps its scale in the tube, so that what it carries or rides stays visible at the
    tube's resolution (without the cap a 24-frame window of a rider spans ~250 px and shrinks a
    scooter deck to a pixel in a 32 px tube). Parts of a box outside the frame are filled with
    ``pad_value``; each crop is resized to ``size`` (area averaging when shrinking).

    The keypoints must be in pixels: place this transform before ``NormalizePoseWindow`` (which
    replaces ``keypoint`` by normalised coordinates), or point ``keypoint_key`` at a raw copy.
    Keypoints all within 10 pixels of the origin (a normalised window, most likely) and a box
    that does not overlap the frame at all are errors.

    Required Keys:
        - imgs: T decoded frames (H, W, 3) uint8 (a list, as mmaction's decoders give them, or
          an array)
        - keypoint (or ``keypoint_key``): (T, V, 3) raw keypoints, (x, y, confidence)

    Modified Keys:
        - imgs: (T, size_h, size_w, 3) uint8 array
        - img_shape: (size_h, size_w)

    Added Keys:
        - tube_box: (4,) int64 (x1, y1, x2, y2) pixel box cut from the window's middle frame
          T // 2, the frame the window's score is given to (end exclusive)
        - tube_boxes: (T, 4) int64 pixel box cut from each frame (all equal within the cap)

    Args:
        size (int | tuple): Output (height, width); an int is square. Default 64.
        margin (float): Added on each side, as a fraction of the keypoint box's size.
            Default 0.1.
        score_thr (float): Keypoints of confidence <= this are ignored (all are used when
            none passes). Default 0.2.
        min_size (float): Smallest box height in pixels, for near-degenerate boxes. Default 16.
        pad_value (int): Fill value outside the frame. Default 0.
        keypoint_key (str): Where the raw keypoints are. Default ``'keypoint'``.
        max_person_ratio (float, optional): Cap of the box height, in multiples of the
            person's median per-frame size; ``None`` for the plain union box of every
            keypoint. Default 1.5.
    """

    def __init__(self,
                 size: Union[int, Tuple[int, int]] = 64,
                 margin: float = 0.1,
                 score_thr: float = 0.2,
                 min_size: float = 16.0,
                 pad_value: int = 0,
                 keypoint_key: str = 'keypoint',
                 max_person_ratio: Optional[float] = 1.5) -> None:
        check_tube_arguments(margin, max_person_ratio)
        self.size = _pair(size, 'size')
        self.margin = margin
        self.score_thr = score_thr
        self.min_size = min_size
        self.pad_value = pad_value
        self.keypoint_key = keypoint_key
        self.max_person_ratio = max_person_ratio

    def transform(self, results: Dict) -> Dict:
        imgs = results['imgs']
        if len(imgs) == 0:
            raise ValueError(f'{describe_window(results)}: no decoded frames to crop')
        img_h, img_w = imgs[0].shape[:2]
        out_h, out_w = self.size
        num_keypoint_frames = len(results[self.keypoint_key])
        if num_keypoint_frames != len(imgs):
            raise ValueError(f'{describe_window(results)}: {len(imgs)} decoded frames but '
                             f'{num_keypoint_frames} frames of keypoints')
        # refuses normalised keypoints rather than cropping garbage
        tube_boxes = window_pixel_boxes(results, self.keypoint_key, self.size, self.score_thr,
                                        self.margin, self.min_size, self.max_person_ratio,
                                        type(self).__name__)  # (T, 4)
        x0, y0 = tube_boxes[:, 0], tube_boxes[:, 1]
        width = int(tube_boxes[0, 2] - tube_boxes[0, 0])
        height = int(tube_boxes[0, 3] - tube_boxes[0, 1])
        if (x0.min() >= img_w or y0.min() >= img_h or x0.max() + width <= 0
                or y0.max() + height <= 0):
            raise ValueError(
                f'{describe_window(results)}: the keypoint box ({x0.min()}, {y0.min()}, '
                f'{x0.max() + width}, {y0.max() + height}) lies outside the {img_w}x{img_h} '
                'frame; PersonTubeCrop needs keypoints in pixels (place it before '
                'NormalizePoseWindow)')
        tube = np.empty((len(imgs), out_h, out_w, 3), dtype=np.uint8)
        for t, frame in enumerate(imgs):
            crop = crop_with_padding(frame, int(x0[t]), int(y0[t]), width, height,
                                     self.pad_value)
            tube[t] = resize_image(crop, self.size)
        results['imgs'] = tube  # (T, H, W, 3)
        results['img_shape'] = self.size
        results['tube_boxes'] = tube_boxes
        results['tube_box'] = tube_boxes[len(tube_boxes) // 2].copy()
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, margin={self.margin}, '
                f'score_thr={self.score_thr}, min_size={self.min_size}, '
                f'pad_value={self.pad_value}, keypoint_key={self.keypoint_key!r}, '
                f'max_person_ratio={self.max_person_ratio})')


def scene_frame_indices(total: int,
                        mode: str = 'median',
                        num_frames: int = 15,
                        frame_index: int = 0,
                        max_frames: Optional[int] = None) -> np.ndarray:
    """Frames a :class:`SceneImage` reads from a clip of ``total`` frames.

    ``'frame'``: frame ``frame_index`` (clamped to the last). ``'median'``: ``num_frames``
    evenly spaced over ``0 .. min(total, max_frames) - 1``, both ends included, duplicates
    removed (short clips give fewer).
    """
    if mode == 'frame':
        return np.array([min(frame_index, total - 1)], dtype=np.int64)
    span = total if max_frames is None else min(total, max_frames)
    return np.unique(np.linspace(0, span - 1, num_frames).round().astype(np.int64))


def median_scene(frames: Sequence[np.ndarray], size: Tuple[int, int]) -> np.ndarray:
    """Per-pixel median of RGB frames, each resized to ``size`` (h, w) first: (h, w, 3) uint8."""
    small = np.stack([resize_image(np.asarray(f), size) for f in frames])  # (N, h, w, 3)
    if len(small) == 1:
        return small[0]
    return np.median(small, axis=0).round().astype(np.uint8)


@TRANSFORMS.register_module()
class SceneImage(BaseTransform):
    """The scene image of a window's clip, for the scene encoder.

    ``mode='median'`` (default): the per-pixel median of ``num_frames`` frames sampled evenly
    over the clip (over its first ``max_frames`` frames when given), i.e. the clip's background
    with the moving people removed (each sampled frame is resized to ``size`` first, which makes
    the median cheap and changes it little).
    ``mode='frame'``: frame ``frame_index`` of the clip (clamped to its last frame).

    The image is computed once per clip and memoised in this transform (an LRU of
    ``cache_size`` clips, each ``size_h * size_w * 3`` bytes; every dataloader worker holds its
    own). Frames are read by mmaction2's transforms, on their own results dict so that the
    window's ``imgs`` are untouched: ``RawFrameDecode`` for frame folders, ``DecordInit`` +
    ``DecordDecode`` (or ``OpenCVInit`` + ``OpenCVDecode`` with ``video_backend='opencv'``)
    for videos.

    Required Keys:
        - filename (videos) or frame_dir, filename_tmpl (frame folders; modality optional)
        - total_frames

    Added Keys:
        - scene: (size_h, size_w, 3) uint8 RGB

    Args:
        mode (str): ``'median'`` or ``'frame'``.
        num_frames (int): Frames of the median. Default 15 (odd: an exact pixel value).
        frame_index (int): The frame of ``mode='frame'``. Default 0.
        size (int | tuple): Output (height, width). Default 224.
        video_backend (str): ``'decord'`` or ``'opencv'``.
        cache_size (int): Clips kept; 0 disables the memo. Default 512.
        max_frames (int, optional): Sample the median from frames ``0 .. max_frames - 1`` only,
            so that the scene is known after the first ``max_frames`` frames of a stream (the
            rule :mod:`mgenet_mm.apis` uses to score one video offline and as it arrives).
            Default None: the whole clip.
    """

    MODES = ('median', 'frame')

    def __init__(self,
                 mode: str = 'median',
                 num_frames: int = 15,
                 frame_index: int = 0,
                 size: Union[int, Tuple[int, int]] = 224,
                 video_backend: str = 'decord',
                 cache_size: int = 512,
                 max_frames: Optional[int] = None) -> None:
        if mode not in self.MODES:
            raise ValueError(f'mode must be one of {self.MODES}, got {mode!r}')
        if (num_frames < 1 or frame_index < 0 or cache_size < 0
                or (max_frames is not None and max_frames < 1)):
            raise ValueError(f'bad SceneImage settings num_frames={num_frames}, '
                             f'frame_index={frame_index}, cache_size={cache_size}, '
                             f'max_frames={max_frames}')
        if video_backend not in ('decord', 'opencv'):
            raise ValueError(f"video_backend must be 'decord' or 'opencv', got {video_backend!r}")
        self.mode = mode
        self.num_frames = num_frames
        self.frame_index = frame_index
        self.size = _pair(size, 'size')
        self.video_backend = video_backend
        self.cache_size = cache_size
        self.max_frames = max_frames
        prefix = 'Decord' if video_backend == 'decord' else 'OpenCV'
        self._video_decoder = [TRANSFORMS.build(dict(type=f'{prefix}Init')),
                               TRANSFORMS.build(dict(type=f'{prefix}Decode'))]
        self._frame_decoder = [TRANSFORMS.build(dict(type='RawFrameDecode'))]
        self._cache: 'OrderedDict[str, np.ndarray]' = OrderedDict()

    def _frame_indices(self, total: int) -> np.ndarray:
        return scene_frame_indices(total, self.mode, self.num_frames, self.frame_index,
                                   self.max_frames)

    def _decode(self, results: Dict, frame_inds: np.ndarray) -> List[np.ndarray]:
        if 'frame_dir' in results:
            sub = dict(frame_dir=results['frame_dir'], filename_tmpl=results['filename_tmpl'],
                       modality=results.get('modality', 'RGB'), frame_inds=frame_inds)
            steps = self._frame_decoder
        elif 'filename' in results:
            sub = dict(filename=results['filename'], frame_inds=frame_inds)
            steps = self._video_decoder
        else:
            raise KeyError(f'{describe_window(results)}: SceneImage needs `filename` (video) or '
                           '`frame_dir` + `filename_tmpl` (frame folder)')
        for step in steps:
            sub = step(sub)
        return sub['imgs']

    def _compute(self, results: Dict) -> np.ndarray:
        frames = self._decode(results, self._frame_indices(int(results['total_frames'])))
        return median_scene(frames, self.size)

    def transform(self, results: Dict) -> Dict:
        key = results.get('frame_dir') or results.get('filename')
        scene = self._cache.get(key) if key is not None else None
        if scene is None:
            scene = self._compute(results)
            if self.cache_size and key is not None:
                self._cache[key] = scene
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        # a copy: later transforms may write into it, the memo must stay intact
        results['scene'] = scene.copy()
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mode={self.mode!r}, num_frames={self.num_frames}, '
                f'frame_index={self.frame_index}, size={self.size}, '
                f'video_backend={self.video_backend!r}, cache_size={self.cache_size}, '
                f'max_frames={self.max_frames})')
