from .atomic_checkpoint_hook import AtomicCheckpointHook, AtomicLocalBackend
from .bsmm_write_hook import BSMMWriteHook
from .gap_whitening_hook import GapWhiteningHook
from .random_state_hook import RandomStateHook
from .score_calibration_hook import ScoreCalibrationHook

__all__ = ['AtomicCheckpointHook', 'AtomicLocalBackend', 'BSMMWriteHook', 'GapWhiteningHook',
           'RandomStateHook', 'ScoreCalibrationHook']
