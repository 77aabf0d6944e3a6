"""The transforms of MGENet's pipelines, by role as in mmaction2: loading (frame indices, cached
features), processing (person tube, scene image), pose transforms and formatting (packing)."""
from .formatting import PackMGENetInputs
from .loading import LoadCachedFeatures, WindowFrameIndices
from .pose_transforms import NormalizePoseWindow, RandomFlipPoseWindow
from .person_box import PersonTubeBox
from .processing import PersonTubeCrop, SceneImage

__all__ = [
    'LoadCachedFeatures', 'NormalizePoseWindow', 'PackMGENetInputs', 'PersonTubeBox',
    'PersonTubeCrop', 'RandomFlipPoseWindow', 'SceneImage', 'WindowFrameIndices'
]
