
from .stgnf import STGNF  # noqa: F401
from .space_time_vit import SpaceTimeViT  # noqa: F401
from .swin_cube_embed import MMActionCubeEmbedding, SwinCubeEmbedding  # noqa: F401
from .scene_encoder import SceneEncoder  # noqa: F401
