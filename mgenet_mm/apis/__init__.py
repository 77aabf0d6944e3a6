from .pose_extraction import PoseExtractor, run_pose_extraction
from .pose_scoring import score_pose_windows
from .tracking import GreedyTracker

__all__ = ['GreedyTracker', 'PoseExtractor', 'run_pose_extraction', 'score_pose_windows']
