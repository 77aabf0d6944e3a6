"""Region ground truth for RBDC/TBDC (:mod:`.region_metrics`), read as the datasets publish it.

Three layouts, each read into a :class:`ClipRegions` (one row per GT region: frame, box, track):

* **Region tracks** (``<clip>.txt``): what UBnormal's ``scripts/create_tracks_for_tbdc_rbdc.py``
  writes and the RBDC/TBDC evaluation reads: comma-separated integer rows
  ``track_id,frame,x_min,y_min,x_max,y_max``, one per region (a track has one row per frame),
  ``x_max = x_min + width`` (end exclusive), frames 0-based. An empty file is a clip without
  regions. The synthetic benchmark writes its regions in this layout
  (``gt/test_region_tracks/<clip>.txt``, :func:`format_region_tracks`).
* **UBnormal annotations** (``Scene<s>/<video>_annotations/``, as the dataset ships): a list of
  anomalous objects ``<video>_tracks.txt`` of text rows ``object_id,start_frame,end_frame``
  (``<video>_new_tracks.txt`` replaces it where present, as in the official script), and one
  object-id map per frame, ``<video>_<frame:04d>_gt.png`` (0 = background). Each row is one
  track; its region in a frame is the bounding box of the largest 8-connected component of
  the object's pixels (the official script's largest contour). Not to be confused with the
  ``<video>_tracks.txt`` of STG-NF's distribution, which are frame-level numpy arrays: such a
  file is refused, naming it.
* **ShanghaiTech pixel masks** (``test_pixel_mask/<clip>.npy``, an (F, H, W) array, non-zero =
  abnormal): the regions of a frame are the 8-connected components of its mask; regions of
  consecutive frames that share a pixel belong to one track (the tracks are the connected
  components of the mask in space and time, :func:`mask_regions`).
"""
from __future__ import annotations

import os
import os.path as osp
from pathlib import Path
from typing import List, NamedTuple, Optional, Union

import cv2
import numpy as np
from scipy import ndimage

from .region_metrics import check_boxes

__all__ = [
    'ClipRegions', 'empty_regions', 'format_region_tracks', 'load_region_tracks',
    'read_ubnormal_object_tracks', 'ubnormal_annotation_dir', 'load_ubnormal_annotation_regions',
    'mask_regions', 'load_pixel_mask_regions'
]

PathLike = Union[str, Path]
_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity in a frame
_NPY_MAGIC = b'\x93NUMPY'


class ClipRegions(NamedTuple):
    """The GT regions of one clip (R rows)."""

    frames: np.ndarray  # (R,) int64, 0-based frame index
    boxes: np.ndarray   # (R, 4) float64 (x1, y1, x2, y2), end exclusive
    tracks: np.ndarray  # (R,) int64 track id


def empty_regions() -> ClipRegions:
    """A clip without regions."""
    return ClipRegions(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0, np.int64))


def _check_regions(regions: ClipRegions, path: PathLike,
                   num_frames: Optional[int]) -> ClipRegions:
    """Sizes, frame range and (track, frame) uniqueness, errors naming ``path``."""
    boxes = check_boxes(regions.boxes, f'{path}: region')
    frames, tracks = regions.frames, regions.tracks
    if len(frames) and frames.min() < 0:
        raise ValueError(f'{path}: negative frame index {int(frames.min())}')
    if num_frames is not None and len(frames) and frames.max() >= num_frames:
        raise ValueError(f'{path}: a region in frame {int(frames.max())}, but the clip has '
                         f'{num_frames} frames (its ground-truth mask): the region file does '
                         'not belong to this clip or is of another frame rate')
    pairs = np.stack([tracks, frames], axis=1)  # (R, 2)
    unique, counts = np.unique(pairs, axis=0, return_counts=True)
    if (counts > 1).any():
        track, frame = unique[np.flatnonzero(counts > 1)[0]]
        raise ValueError(f'{path}: track {int(track)} has two regions in frame {int(frame)} '
                         '(a track id repeated: each track has at most one region per frame)')
    return ClipRegions(frames, boxes, tracks)


def format_region_tracks(regions: ClipRegions) -> bytes:
    """The region-tracks text of a clip (see the module docstring); boxes must be integers."""
    rows = [f'{int(t)},{int(f)},{",".join(str(int(v)) for v in box)}\n'
            for t, f, box in zip(regions.tracks, regions.frames, regions.boxes)]
    return ''.join(rows).encode()


def _read_int_rows(path: PathLike, columns: int, layout: str) -> np.ndarray:
    """Comma-separated integer rows of a text file -> (N, columns) int64, errors naming it."""
    with open(path, 'rb') as f:
        data = f.read()
    if data.startswith(_NPY_MAGIC):
        raise ValueError(f'{path}: a numpy array, not a text list of {layout}; STG-NF\'s UBnormal '
                         'distribution uses the name <video>_tracks.txt for frame-level masks: '
                         'region ground truth comes from UBnormal\'s own annotations')
    rows: List[List[int]] = []
    for number, line in enumerate(data.decode('utf-8', errors='replace').splitlines(), 1):
        if not line.strip():
            continue
        fields = line.replace(' ', '').split(',')
        try:
            values = [float(v) for v in fields]
        except ValueError:
            values = []
        if len(values) != columns or not all(np.isfinite(v) and v == int(v) for v in values):
            raise ValueError(f'{path}, line {number}: expected {columns} comma-separated '
                             f'integers ({layout}), got {line.strip()[:80]!r}')
        rows.append([int(v) for v in values])
    return np.array(rows, dtype=np.int64).reshape(-1, columns)


def load_region_tracks(path: PathLike, num_frames: Optional[int] = None) -> ClipRegions:
    """Read a region-tracks file (``track_id,frame,x_min,y_min,x_max,y_max`` rows).

    Args:
        path: The ``<clip>.txt`` file.
        num_frames: The clip's frame count; a region at or beyond it is an error.

    Raises:
        ValueError: A malformed row, a box of zero or negative size, a region outside the clip,
            a track with two regions in one frame (messages name the file).
    """
    rows = _read_int_rows(path, 6, 'track_id,frame,x_min,y_min,x_max,y_max')
    regions = ClipRegions(rows[:, 1], rows[:, 2:].astype(np.float64), rows[:, 0])
    return _check_regions(regions, path, num_frames)


def read_ubnormal_object_tracks(path: PathLike) -> np.ndarray:
    """UBnormal's list of anomalous objects, ``object_id,start_frame,end_frame`` rows.

    An object listed twice with overlapping frame ranges is an error; listed twice with
    disjoint ranges it makes two tracks, as in the official script.

    Returns:
        np.ndarray: (K, 3) int64 rows in file order.
    """
    rows = _read_int_rows(path, 3, 'object_id,start_frame,end_frame')
    for object_id, start, end in rows:
        if start < 0 or end < start:
            raise ValueError(f'{path}: object {object_id} has frame range {start}..{end}')
    for object_id in np.unique(rows[:, 0]):
        spans = rows[rows[:, 0] == object_id][:, 1:]
        spans = spans[np.argsort(spans[:, 0])]
        if (spans[1:, 0] <= spans[:-1, 1]).any():
            raise ValueError(f'{path}: object {object_id} is listed twice with overlapping '
                             'frame ranges (a track id repeated)')
    return rows


def ubnormal_annotation_dir(root: PathLike, video: str) -> str:
    """``<root>/Scene<s>/<video>_annotations`` of a UBnormal video
    (``abnormal_scene_<s>_scenario_<n>...``)."""
    parts = video.split('_')
    if len(parts) < 3 or parts[1] != 'scene':
        raise ValueError(f'{video!r} is not a UBnormal video name '
                         '({normal,abnormal}_scene_<s>_scenario_<n>...)')
    return osp.join(str(root), f'Scene{parts[2]}', f'{video}_annotations')


def _largest_component_box(mask: np.ndarray) -> Optional[np.ndarray]:
    """(x1, y1, x2, y2) of the 8-connected component with the largest bounding box."""
    labels, count = ndimage.label(mask, structure=_EIGHT)
    if not count:
        return None
    best, best_area = None, -1
    for rows, cols in ndimage.find_objects(labels):
        area = (rows.stop - rows.start) * (cols.stop - cols.start)
        if area > best_area:
            best, best_area = (cols.start, rows.start, cols.stop, rows.stop), area
    return np.array(best, dtype=np.float64)


def load_ubnormal_annotation_regions(annotation_dir: PathLike, video: str,
                                     num_frames: Optional[int] = None) -> ClipRegions:
    """Regions of a UBnormal video from its annotation folder (object list + id maps).

    Tracks are numbered 0.. in order of object id, as the official script numbers them.

    Args:
        annotation_dir: ``Scene<s>/<video>_annotations`` (:func:`ubnormal_annotation_dir`).
        video: The video name.
        num_frames: The clip's frame count: the number of id maps must equal it.

    Returns:
        ClipRegions: Empty for a video without an object list (UBnormal's normal videos).

    Raises:
        FileNotFoundError: The folder, or an id map of a listed frame, is missing.
        ValueError: Bad object list (see :func:`read_ubnormal_object_tracks`), as many id maps
            as the clip has frames, an unreadable map, an object absent from its map.
    """
    folder = str(annotation_dir)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'UBnormal annotation folder {folder} not found')
    maps = [n for n in os.listdir(folder) if n.startswith(video + '_') and n.endswith('_gt.png')]
    if num_frames is not None and len(maps) != num_frames:
        raise ValueError(f'{folder}: {len(maps)} id maps ({video}_NNNN_gt.png), but the clip has '
                         f'{num_frames} frames (its ground-truth mask)')
    path = osp.join(folder, f'{video}_new_tracks.txt')
    if not osp.isfile(path):
        path = osp.join(folder, f'{video}_tracks.txt')
    if not osp.isfile(path):
        return empty_regions()
    objects = read_ubnormal_object_tracks(path)
    order = np.argsort(objects[:, 0], kind='stable')
    frames, boxes, tracks = [], [], []
    for track, (object_id, start, end) in enumerate(objects[order]):
        for frame in range(start, end + 1):
            if num_frames is not None and frame >= num_frames:
                raise ValueError(f'{path}: object {object_id} runs to frame {end}, but the clip '
                                 f'has {num_frames} frames')
            map_path = osp.join(folder, '%s_%04d_gt.png' % (video, frame))
            if not osp.isfile(map_path):
                raise FileNotFoundError(f'{path}: the id map of frame {frame}, {map_path}, '
                                        'is missing')
            ids = cv2.imread(map_path, cv2.IMREAD_GRAYSCALE)
            if ids is None:
                raise ValueError(f'{map_path}: not a readable image')
            box = _largest_component_box(ids == object_id)
            if box is None:
                raise ValueError(f'{map_path}: object {object_id}, listed in {path} for frames '
                                 f'{start}..{end}, does not appear in it')
            frames.append(frame)
            boxes.append(box)
            tracks.append(track)
    regions = ClipRegions(np.array(frames, np.int64), np.array(boxes).reshape(-1, 4),
                          np.array(tracks, np.int64))
    return _check_regions(regions, path, num_frames)


def mask_regions(masks: np.ndarray) -> ClipRegions:
    """Regions and tracks of an (F, H, W) pixel mask (non-zero = abnormal).

    A frame's regions are the 8-connected components of its mask, each a box (x1, y1, x2, y2)
    end exclusive. Two regions of consecutive frames that share a pixel position are linked;
    a track is a connected set of linked regions (numbered 0.. in order of first appearance).
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f'expected an (F, H, W) pixel mask, got shape {masks.shape}')
    frames, boxes, links = [], [], []
    previous, first = None, 0  # the last frame's labels and the index of its first region
    for t, frame in enumerate(masks):
        labels, count = ndimage.label(frame != 0, structure=_EIGHT)
        for rows, cols in ndimage.find_objects(labels):
            frames.append(t)
            boxes.append((cols.start, rows.start, cols.stop, rows.stop))
        if previous is not None and count:
            both = (previous > 0) & (labels > 0)
            pairs = np.unique(np.stack([previous[both], labels[both]], axis=1), axis=0)
            links += [(first + a - 1, len(frames) - count + b - 1) for a, b in pairs]
        previous, first = labels, len(frames) - count
    # Union-find over the links: the root of each region is its track's first region.
    parent = list(range(len(frames)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in links:
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(len(frames))], dtype=np.int64)
    _, tracks = np.unique(roots, return_inverse=True)  # roots ascend with first appearance
    return ClipRegions(np.array(frames, np.int64), np.array(boxes, np.float64).reshape(-1, 4),
                       tracks.astype(np.int64).reshape(-1))


def load_pixel_mask_regions(path: PathLike, num_frames: Optional[int] = None) -> ClipRegions:
    """Regions of a ShanghaiTech ``test_pixel_mask/<clip>.npy`` (see :func:`mask_regions`).

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: Not an (F, H, W) numpy array, or F differs from ``num_frames``.
    """
    try:
        masks = np.load(path, allow_pickle=False, mmap_mode='r')
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f'{path}: not a numpy .npy pixel mask ({err})') from err
    if masks.ndim != 3:
        raise ValueError(f'{path}: expected an (F, H, W) pixel mask, got shape {masks.shape}')
    if num_frames is not None and len(masks) != num_frames:
        raise ValueError(f'{path}: {len(masks)} frames, but the clip has {num_frames} (its '
                         'ground-truth mask)')
    return mask_regions(masks)
