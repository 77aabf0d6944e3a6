from .collate import PoseWindowDataSample, build_collate_fn, pose_window_collate
from .mgenet_window_dataset import MGENetWindowDataset
from .pose_window_dataset import PoseWindowDataset
from .trajectory_csv import TrajectoryCSVDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'MGENetWindowDataset', 'PoseWindowDataSample', 'PoseWindowDataset', 'TrajectoryCSVDataset',
    'build_collate_fn', 'pose_window_collate'
]
