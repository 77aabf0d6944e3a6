"""Write what the model sees of a few windows, after the dataset's pipeline, as PNG images.

For each chosen window of a config's split, one image per input the pipeline produced:

- ``<name>_pose.png``: the T skeleton frames of the window, left to right and top to bottom, each
  drawn on its own cell, scaled to fit the window's extent (after ``NormalizePoseWindow`` the
  coordinates are centred and in units of the window's y spread); joints with confidence 0 (not
  detected) are left out;
- ``<name>_tube.png``: the T frames of the person tube (``PersonTubeCrop``) in the same grid,
  each pixel enlarged ``--zoom`` times;
- ``<name>_scene.png``: the scene image (``SceneImage``), enlarged the same way;

with ``<name>`` = ``<index>_<clip>_p<person>_f<start frame>``. Cached features (``tokens``,
``scene_feat``) are not images and are only reported by their shape.

Example:
    python tools/visualizations/browse_dataset.py configs/mgenet/demo.py --split test \\
        --indices 0 100 --output-dir work_dirs/browse
    python tools/visualizations/browse_dataset.py configs/stgnf/stgnf_demo.py --split train \\
        --num-windows 4 --output-dir work_dirs/browse_stgnf
"""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401  registration before the dataset is built
from mgenet_mm.engine import merge_cfg_options
from mgenet_mm.models.utils.graph import OPENPOSE18_BONES
from mgenet_mm.visualization import COCO17_EDGES

CELL = 96  # pixels per skeleton cell
BONE_COLOUR = (40, 200, 40)  # BGR
JOINT_COLOUR = (30, 30, 230)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file path')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='test',
                        help='whose <split>_dataloader.dataset to browse (default test)')
    parser.add_argument('--indices', type=int, nargs='+', default=None,
                        help='window indices (default: --num-windows spread over the split)')
    parser.add_argument('--num-windows', type=int, default=3,
                        help='how many windows, evenly spaced, when --indices is not given')
    parser.add_argument('--output-dir', required=True, help='where the PNG files are written')
    parser.add_argument('--columns', type=int, default=8, help='frames per row of a grid')
    parser.add_argument('--zoom', type=int, default=3,
                        help='integer enlargement of tube and scene pixels (nearest neighbour)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs, e.g. '
                        'test_dataloader.dataset.data_root=data/synthetic')
    return parser.parse_args(argv)


def cell_transform(points: np.ndarray, cell: int = CELL,
                   margin: int = 6) -> Tuple[np.ndarray, float, np.ndarray]:
    """``(low, scale, offset)`` mapping (..., 2) points into a ``cell`` x ``cell`` square as
    ``(p - low) * scale + offset``: their bounding box, scaled by one factor (the aspect ratio
    kept) so that its longer side spans ``cell - 2 * margin`` pixels, centred in the cell."""
    flat = points.reshape(-1, 2)
    low, high = flat.min(axis=0), flat.max(axis=0)
    scale = (cell - 2 * margin) / max(float((high - low).max()), 1e-9)
    offset = (cell - (high - low) * scale) / 2
    return low, scale, offset


def fit_to_cell(points: np.ndarray, cell: int = CELL, margin: int = 6) -> np.ndarray:
    """(..., 2) points mapped into a ``cell`` x ``cell`` square (see :func:`cell_transform`)."""
    low, scale, offset = cell_transform(points, cell, margin)
    return (points - low) * scale + offset


def _grid(frames: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Frames of one size, row by row, on a grid (missing cells black)."""
    rows = -(-len(frames) // columns)
    height, width = frames[0].shape[:2]
    grid = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
    for index, frame in enumerate(frames):
        row, column = divmod(index, columns)
        grid[row * height:(row + 1) * height, column * width:(column + 1) * width] = frame
    return grid


def draw_pose_window(window: np.ndarray, columns: int = 8) -> np.ndarray:
    """A (T, V, C) window (V = 18 OpenPose or 17 COCO joints) as a grid of skeleton cells."""
    joints = window.shape[1]
    bones = OPENPOSE18_BONES if joints == 18 else COCO17_EDGES
    visible = window[..., 2] > 0 if window.shape[-1] > 2 else np.ones(window.shape[:2], bool)
    xy = window[..., :2].astype(np.float64)
    if not visible.any():
        visible = np.ones_like(visible)
    # One transform for the whole window, fitted to its visible joints: motion stays visible.
    low, scale, offset = cell_transform(xy[visible])
    mapped = (xy - low) * scale + offset  # (T, V, 2) cell pixels
    cells = []
    for frame, points in enumerate(mapped):
        cell = np.full((CELL, CELL, 3), 255, dtype=np.uint8)
        for a, b in bones:
            if visible[frame, a] and visible[frame, b]:
                cv2.line(cell, tuple(int(round(v)) for v in points[a]),
                         tuple(int(round(v)) for v in points[b]), BONE_COLOUR, 2, cv2.LINE_AA)
        for joint in np.flatnonzero(visible[frame]):
            cv2.circle(cell, tuple(int(round(v)) for v in points[joint]), 2, JOINT_COLOUR, -1)
        cv2.putText(cell, str(frame), (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        cells.append(cell)
    return _grid(cells, columns)


def _to_bgr(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in 0..255 (float or int) -> uint8 BGR for cv2.imwrite."""
    return np.ascontiguousarray(np.clip(np.round(image), 0, 255).astype(np.uint8)[..., ::-1])


def _zoom(image: np.ndarray, zoom: int) -> np.ndarray:
    return image if zoom == 1 else np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)


def window_images(item: Dict, columns: int = 8,
                  zoom: int = 1) -> Tuple[Dict[str, np.ndarray], Dict]:
    """The images of one dataset item and its identity (clip, person, start frame).

    Accepts a packed item (``inputs`` and ``data_samples``, as ``PackMGENetInputs`` and
    ``PackActionInputs`` give) or a raw one (``keypoint``, when the test pipeline is empty and the
    dataloader's collate function normalises batches).
    """
    images: Dict[str, np.ndarray] = {}
    if 'inputs' in item:
        inputs = item['inputs']
        meta = item['data_samples'].metainfo
        if not isinstance(inputs, dict):
            inputs = dict(pose=inputs)
        inputs = {key: np.asarray(value) for key, value in inputs.items()}
    else:
        inputs = dict(pose=np.asarray(item['keypoint']))
        meta = item
    if 'pose' in inputs:
        images['pose'] = draw_pose_window(inputs['pose'], columns)
    if 'imgs' in inputs:
        tube = inputs['imgs'].transpose(1, 2, 3, 0)  # (3, T, H, W) -> (T, H, W, 3)
        images['tube'] = _grid([_zoom(_to_bgr(frame), zoom) for frame in tube], columns)
    if 'scene' in inputs:
        scene = inputs['scene'].transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
        images['scene'] = _zoom(_to_bgr(scene), zoom)
    identity = dict(clip=meta.get('clip_name', '?'), person=meta.get('person_id', '?'),
                    start=meta.get('start_frame', '?'),
                    shapes={key: tuple(value.shape) for key, value in inputs.items()})
    return images, identity


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    from mmaction.registry import DATASETS
    loader = cfg.get(f'{args.split}_dataloader')
    if loader is None:
        raise ValueError(f'{args.config} has no {args.split}_dataloader')
    dataset = DATASETS.build(loader.dataset)
    if len(dataset) == 0:
        raise ValueError(f'{args.config}: the {args.split} split has no windows')
    if args.indices is None:
        count = max(1, min(args.num_windows, len(dataset)))
        indices = np.linspace(0, len(dataset) - 1, count).round().astype(int).tolist()
    else:
        indices = args.indices
    bad = [i for i in indices if not 0 <= i < len(dataset)]
    if bad:
        raise ValueError(f'--indices {bad} outside the {len(dataset)} windows of the '
                         f'{args.split} split')
    if args.zoom < 1 or args.columns < 1:
        raise ValueError(f'--zoom and --columns must be positive, got {args.zoom}, '
                         f'{args.columns}')
    os.makedirs(args.output_dir, exist_ok=True)
    for index in indices:
        images, who = window_images(dataset[index], args.columns, args.zoom)
        name = f'{index:06d}_{who["clip"]}_p{who["person"]}_f{who["start"]}'
        written = []
        for kind, image in images.items():
            path = osp.join(args.output_dir, f'{name}_{kind}.png')
            if not cv2.imwrite(path, image):
                raise RuntimeError(f'could not write {path}')
            written.append(osp.basename(path))
        print(f'window {index}: clip {who["clip"]}, person {who["person"]}, frame {who["start"]}; '
              f'inputs {who["shapes"]} -> {", ".join(written) or "no image"}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
