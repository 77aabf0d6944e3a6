"""The clips a user gives: a video file, a folder of frame images, or a folder of either, and
reading their frames; with the errors that pose extraction and video scoring raise for them.

Both :mod:`~mgenet_mm.apis.pose_extraction` (``tools/data/extract_poses.py``) and
:mod:`~mgenet_mm.apis.inference` (``score_video``) read clips through :func:`find_clips` and
:class:`ClipReader`, so a clip that one accepts the other accepts too.
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional

import numpy as np

__all__ = [
    'VIDEO_EXTENSIONS', 'IMAGE_EXTENSIONS', 'PoseExtractionError', 'ModelFileNotFoundError',
    'CheckpointMismatchError', 'ClipReadError', 'Clip', 'ClipReader', 'find_clips'
]

VIDEO_EXTENSIONS = ('.avi', '.mp4', '.mov', '.mkv', '.webm', '.mpg', '.mpeg', '.m4v', '.wmv',
                    '.flv', '.ts')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class PoseExtractionError(Exception):
    """A problem with the inputs of pose extraction (models or clips), with a message naming
    the offending file."""


class ModelFileNotFoundError(PoseExtractionError, FileNotFoundError):
    """A config or checkpoint that does not exist."""


class CheckpointMismatchError(PoseExtractionError, ValueError):
    """A checkpoint whose parameters do not fit the model built from its config."""


class ClipReadError(PoseExtractionError, OSError):
    """A video that cannot be opened or decoded, or an unreadable frame image."""


@dataclass
class Clip:
    """One clip to process: a video file or a folder of frame images."""
    name: str
    path: str
    kind: str  # 'video' or 'frames'


def _frame_images(folder: str) -> List[str]:
    """Image files of a frame folder, in frame order (numerically when names are numbers)."""
    names = [n for n in os.listdir(folder)
             if n.lower().endswith(IMAGE_EXTENSIONS) and osp.isfile(osp.join(folder, n))]
    stems = [osp.splitext(n)[0] for n in names]
    if names and all(stem.isdigit() for stem in stems):
        # '10.jpg' after '9.jpg' even without zero padding
        names = [n for _, n in sorted(zip((int(s) for s in stems), names))]
    else:
        names.sort()
    return [osp.join(folder, n) for n in names]


def find_clips(input_path: str) -> List[Clip]:
    """The clips of an input: a video file, a frame folder, or a directory of videos and/or
    frame folders (non-recursive; other files are ignored).

    Raises:
        FileNotFoundError: The input does not exist.
        PoseExtractionError: A directory without clips, or two clips with the same name.
    """
    input_path = osp.normpath(input_path)
    if osp.isfile(input_path):
        # Any file is tried as a video; OpenCV decides whether it can be read.
        return [Clip(osp.splitext(osp.basename(input_path))[0], input_path, 'video')]
    if not osp.isdir(input_path):
        raise FileNotFoundError(f'input not found: {input_path}')
    if _frame_images(input_path):
        return [Clip(osp.basename(osp.abspath(input_path)), input_path, 'frames')]
    clips = []
    for name in sorted(os.listdir(input_path)):
        path = osp.join(input_path, name)
        if osp.isfile(path) and name.lower().endswith(VIDEO_EXTENSIONS):
            clips.append(Clip(osp.splitext(name)[0], path, 'video'))
        elif osp.isdir(path) and _frame_images(path):
            clips.append(Clip(name, path, 'frames'))
    if not clips:
        raise PoseExtractionError(f'no videos ({", ".join(VIDEO_EXTENSIONS)}) or frame folders '
                                  f'found in {input_path}')
    seen: Dict[str, str] = {}
    for clip in clips:
        if clip.name in seen:
            raise PoseExtractionError(f'two clips named {clip.name!r} in {input_path}: '
                                      f'{seen[clip.name]} and {clip.path}')
        seen[clip.name] = clip.path
    return clips


class ClipReader:
    """Frames of a clip, BGR uint8, opened eagerly so that an unreadable video fails at once.

    Args:
        clip (Clip): The clip.

    Raises:
        ClipReadError: A video OpenCV cannot open.
    """

    def __init__(self, clip: Clip) -> None:
        import cv2
        self.clip = clip
        self._capture = None
        if clip.kind == 'frames':
            self._files = _frame_images(clip.path)
            self.num_frames: Optional[int] = len(self._files)
        else:
            capture = cv2.VideoCapture(clip.path)
            if not capture.isOpened():
                capture.release()
                raise ClipReadError(f'cannot open video {clip.path}')
            self._capture = capture
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            self.num_frames = count if count > 0 else None  # containers may not say

    def __iter__(self) -> Iterator[np.ndarray]:
        import cv2
        if self._capture is None:
            for path in self._files:
                img = cv2.imread(path, cv2.IMREAD_COLOR)
                if img is None:
                    raise ClipReadError(f'cannot read frame image {path}')
                yield img
            return
        read = 0
        while True:
            ok, img = self._capture.read()
            if not ok:
                break
            read += 1
            yield img
        if read == 0:
            raise ClipReadError(f'no frame could be decoded from video {self.clip.path}')

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self) -> 'ClipReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
