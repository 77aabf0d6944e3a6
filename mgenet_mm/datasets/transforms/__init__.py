from .pose_transforms import NormalizePoseWindow, RandomFlipPoseWindow
from .rgb_transforms import (PackMGENetInputs, PersonTubeCrop, SceneImage,  # noqa: F401
                             WindowFrameIndices)
from .feature_cache import LoadCachedFeatures  # noqa: F401

__all__ = ['NormalizePoseWindow', 'RandomFlipPoseWindow']
