
from .appearance_predictor import AppearancePredictor  # noqa: F401
from .lsta_head import LSTAHead  # noqa: F401
from .projection_head import ProjectionHead  # noqa: F401
