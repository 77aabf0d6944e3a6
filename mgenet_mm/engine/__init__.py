from .config_utils import (NEW_KEY_PREFIX, finish_distributed, merge_cfg_options,
                           resolve_dist_backend, set_work_dir)
from .hooks import *  # noqa: F401,F403
from .lazy_visualizer import LazyFigureVisualizer
from .runner import CheckedRunner

__all__ = ['CheckedRunner', 'LazyFigureVisualizer', 'NEW_KEY_PREFIX', 'finish_distributed',
           'merge_cfg_options', 'resolve_dist_backend', 'set_work_dir']
