from .pose_transforms import NormalizePoseWindow, RandomFlipPoseWindow
from .rgb_transforms import (PackMGENetInputs, PersonTubeCrop, SceneImage,  # noqa: F401
                             WindowFrameIndices)

__all__ = ['NormalizePoseWindow', 'RandomFlipPoseWindow']
