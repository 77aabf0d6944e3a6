from .stgnf import STGNF  # noqa: F401
from .space_time_vit import SpaceTimeViT  # noqa: F401
