from .dump_results import AtomicDumpResults
from .vad_metric import VADAUCMetric

__all__ = ['AtomicDumpResults', 'VADAUCMetric']
