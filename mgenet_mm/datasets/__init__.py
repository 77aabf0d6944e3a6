from .mgenet_window_dataset import MGENetWindowDataset
from .pose_window_dataset import PoseWindowDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['MGENetWindowDataset', 'PoseWindowDataset']
