from .vad_metric import VADAUCMetric

__all__ = ['VADAUCMetric']
