from .pose_window_preprocessor import PoseWindowDataPreprocessor

__all__ = ['PoseWindowDataPreprocessor']
