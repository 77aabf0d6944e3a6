from .inference import Calibration, VideoScores, init_model, score_video
from .pose_extraction import PoseExtractor, run_pose_extraction
from .pose_scoring import score_pose_windows
from .streaming import FrameScore, StreamingScorer, stream_video
from .tracking import GreedyTracker

__all__ = [
    'Calibration', 'FrameScore', 'GreedyTracker', 'PoseExtractor', 'StreamingScorer',
    'VideoScores', 'init_model', 'run_pose_extraction', 'score_pose_windows', 'score_video',
    'stream_video'
]
