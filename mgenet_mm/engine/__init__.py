from .config_utils import resolve_dist_backend, set_work_dir
from .hooks import *  # noqa: F401,F403

__all__ = ['resolve_dist_backend', 'set_work_dir']
