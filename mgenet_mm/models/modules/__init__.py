
from .bsmm import BSMM  # noqa: F401
from .gap_whitening import GapWhitening  # noqa: F401
from .masking import (BlockMaskGenerator, complementary_masks, mask_pixels,  # noqa: F401
                      pixel_tube_mask, tube_mask)
from .memory_bank import MemoryBank  # noqa: F401
from .score_calibration import ScoreCalibration  # noqa: F401
