from .pose_transforms import NormalizePoseWindow, RandomFlipPoseWindow

__all__ = ['NormalizePoseWindow', 'RandomFlipPoseWindow']
