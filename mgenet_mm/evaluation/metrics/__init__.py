from .dump_results import AtomicDumpResults
from .region_metric import VADRegionMetric
from .vad_metric import VADAUCMetric

__all__ = ['AtomicDumpResults', 'VADAUCMetric', 'VADRegionMetric']
