from .config_utils import finish_distributed, resolve_dist_backend, set_work_dir
from .hooks import *  # noqa: F401,F403

__all__ = ['finish_distributed', 'resolve_dist_backend', 'set_work_dir']
