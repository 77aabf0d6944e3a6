from .pose_scoring import score_pose_windows

__all__ = ['score_pose_windows']
