
from .bsmm import BSMM  # noqa: F401
from .masking import BlockMaskGenerator, complementary_masks, tube_mask  # noqa: F401
from .memory_bank import MemoryBank  # noqa: F401
from .score_calibration import ScoreCalibration  # noqa: F401
