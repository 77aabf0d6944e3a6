"""Frame-level ground-truth files as the datasets' authors publish them, and where they lie.

:class:`VADAUCMetric` reads one mask per evaluated clip from ``gt_dir``. A *GT format* says how a
clip name maps to its file under ``gt_dir``, which files in ``gt_dir`` are masks (and of which
clip), and how a file is read into a (num_frames,) ``uint8`` mask with 1 = abnormal:

- ``'shanghaitech'``: ``<clip>.npy``, 1 = abnormal (ShanghaiTech ``test_frame_mask``, also the
  ``test_frame_mask`` folders of the MoCoDAD distributions of HR-Avenue, HR-ShanghaiTech and
  UBnormal);
- ``'ubnormal'``: ``<clip>_tracks.txt``, numpy arrays with 1 = NORMAL (the STG-NF distribution);
- ``'avenue'``: CUHK Avenue's ``ground_truth_demo/testing_label_mask/<n>_label.mat`` (Lu, Shi &
  Jia, ICCV 2013): MATLAB files whose ``volLabel`` variable is a 1 x F cell array of per-frame
  pixel masks; a frame is abnormal when any of its pixels is. File numbers are not zero-padded
  (``1_label.mat``) while the videos are (``testing_videos/01.avi``): clip ``'01'`` reads
  ``1_label.mat``;
- ``'shanghaitech_by_camera'``: ``<camera>/<camera>_<video>.npy``, 1 = abnormal: the
  ``frame_level_masks`` folder of MPED-RNN (Morais et al., CVPR 2019) and TrajREC (Stergiou et
  al., WACV 2024) for HR-ShanghaiTech and HR-Avenue, one sub-folder per camera; clip
  ``'01_0014'`` reads ``01/01_0014.npy``.

Typical use::

    fmt = GT_FORMATS['avenue']
    names = list_gt_clips(fmt, 'data/Avenue/ground_truth_demo/testing_label_mask')
    mask = fmt.loader(gt_file(fmt, gt_dir, names[0]))
"""
from __future__ import annotations

import os
import os.path as osp
import re
from typing import Callable, Dict, List, NamedTuple, Optional

import numpy as np
from scipy.io import loadmat
from scipy.io.matlab import MatReadError

from .vad_scores import load_shanghaitech_gt, load_ubnormal_gt

__all__ = [
    'GTFormat', 'GT_FORMATS', 'load_avenue_gt', 'avenue_clip_name', 'gt_file', 'list_gt_clips'
]

_AVENUE_FILE = re.compile(r'^(\d+)_label\.mat$')
_CAMERA_CLIP = re.compile(r'^(\d+)_(\d+)$')


class GTFormat(NamedTuple):
    """How one dataset's frame-level GT files are named and read.

    Attributes:
        suffix: File-name ending of a mask file (for messages and listings).
        loader: Path -> (num_frames,) ``uint8`` mask, 1 = abnormal; raises ``ValueError`` naming
            the file on a malformed one.
        file_of: Clip name -> path of its mask relative to ``gt_dir``.
        clip_of: Path relative to ``gt_dir`` -> clip name, or None when the file is no mask.
        nested: Whether masks lie one folder below ``gt_dir`` (listing walks one level down).
    """
    suffix: str
    loader: Callable[[str], np.ndarray]
    file_of: Callable[[str], str]
    clip_of: Callable[[str], Optional[str]]
    nested: bool = False


def _strip_suffix(suffix: str) -> Callable[[str], Optional[str]]:
    def clip_of(relative: str) -> Optional[str]:
        return relative[:-len(suffix)] if relative.endswith(suffix) else None
    return clip_of


def avenue_clip_name(file_name: str) -> Optional[str]:
    """``'7_label.mat'`` -> ``'07'`` (the name of ``testing_videos/07.avi``); None otherwise."""
    match = _AVENUE_FILE.match(osp.basename(file_name))
    return None if match is None else f'{int(match.group(1)):02d}'


def _avenue_file(clip: str) -> str:
    if not clip.isdigit():
        raise ValueError(f"CUHK Avenue clip names are the video numbers ('01' .. '21', as "
                         f"testing_videos/01.avi), got {clip!r}")
    return f'{int(clip)}_label.mat'


def _camera_file(clip: str) -> str:
    match = _CAMERA_CLIP.match(clip)
    if match is None:
        raise ValueError(f"clip {clip!r}: masks by camera need clip names <camera>_<video>, "
                         "e.g. '01_0014' (read from <gt_dir>/01/01_0014.npy)")
    return osp.join(match.group(1), clip + '.npy')


def _camera_clip(relative: str) -> Optional[str]:
    folder, name = osp.split(relative)
    if not name.endswith('.npy') or _CAMERA_CLIP.match(name[:-4]) is None:
        return None
    # 01/01_0014.npy: a mask filed under another camera's folder is not taken for that camera.
    return name[:-4] if name.split('_')[0] == folder else None


def load_avenue_gt(path: str) -> np.ndarray:
    """Read a CUHK Avenue ``<n>_label.mat`` into a per-frame mask, 1 = abnormal.

    The file holds ``volLabel``, a 1 x F MATLAB cell array whose i-th cell is frame i's pixel
    mask (360 x 640 in the published files, non-zero = abnormal pixel). A frame is abnormal
    when any of its pixels is: the frame-level GT that the Avenue frame AUCs are computed from.

    Args:
        path: The ``.mat`` file.

    Returns:
        ``uint8`` array of shape (F,), 1 = abnormal.

    Raises:
        ValueError: If scipy cannot read the file, it has no ``volLabel``, or a cell is not a
            2-D mask (the message names the file and the frame).
    """
    try:
        content = loadmat(path)
    except FileNotFoundError:
        raise
    except (MatReadError, ValueError, NotImplementedError, OSError, TypeError) as err:
        # NotImplementedError: MATLAB v7.3 (HDF5) files, which the published GT is not.
        raise ValueError(f'{path}: not a MATLAB .mat file scipy.io.loadmat can read ({err}); '
                         'expected CUHK Avenue ground_truth_demo/testing_label_mask/'
                         '<n>_label.mat') from err
    if 'volLabel' not in content:
        found = sorted(k for k in content if not k.startswith('__'))
        raise ValueError(f'{path}: no volLabel variable (found {found}); expected CUHK Avenue '
                         'testing_label_mask/<n>_label.mat, a cell array of frame masks')
    cells = np.asarray(content['volLabel'])
    if cells.dtype != object or cells.size == 0:
        raise ValueError(f'{path}: volLabel must be a non-empty cell array of frame masks, got '
                         f'a {cells.dtype} array of shape {cells.shape}')
    cells = cells.reshape(-1)  # (1, F) cell array -> (F,) objects
    mask = np.zeros(len(cells), dtype=np.uint8)
    for frame, cell in enumerate(cells):
        pixels = np.asarray(cell)
        if pixels.ndim != 2 or pixels.size == 0 or not np.issubdtype(pixels.dtype, np.number):
            raise ValueError(f'{path}: frame {frame} of volLabel is not a 2-D numeric mask '
                             f'(dtype {pixels.dtype}, shape {pixels.shape})')
        mask[frame] = bool(np.any(pixels != 0))
    return mask


#: The GT formats :class:`~mgenet_mm.evaluation.VADAUCMetric` accepts as ``gt_format``.
GT_FORMATS: Dict[str, GTFormat] = {
    'shanghaitech': GTFormat('.npy', load_shanghaitech_gt, lambda clip: clip + '.npy',
                             _strip_suffix('.npy')),
    'ubnormal': GTFormat('_tracks.txt', load_ubnormal_gt, lambda clip: clip + '_tracks.txt',
                         _strip_suffix('_tracks.txt')),
    'avenue': GTFormat('_label.mat', load_avenue_gt, _avenue_file, avenue_clip_name),
    'shanghaitech_by_camera': GTFormat('.npy', load_shanghaitech_gt, _camera_file, _camera_clip,
                                       nested=True),
}


def gt_file(fmt: GTFormat, gt_dir: str, clip: str) -> str:
    """Path of ``clip``'s mask file under ``gt_dir`` in format ``fmt``."""
    return osp.join(gt_dir, fmt.file_of(clip))


def list_gt_clips(fmt: GTFormat, gt_dir: str) -> List[str]:
    """Sorted names of the clips whose masks lie in ``gt_dir`` (one level down if nested).

    Raises:
        ValueError: If two files map to the same clip name (e.g. ``1_label.mat`` and
            ``01_label.mat``), naming both.
    """
    relatives = []
    for name in sorted(os.listdir(gt_dir)):
        if fmt.nested and osp.isdir(osp.join(gt_dir, name)):
            relatives.extend(osp.join(name, inner)
                             for inner in sorted(os.listdir(osp.join(gt_dir, name))))
        elif not fmt.nested:
            relatives.append(name)
    clips: Dict[str, str] = {}
    for relative in relatives:
        clip = fmt.clip_of(relative)
        if clip is None:
            continue
        if clip in clips:
            raise ValueError(f'{gt_dir}: {clips[clip]} and {relative} are both the mask of clip '
                             f'{clip!r}; keep one')
        clips[clip] = relative
    return sorted(clips)
