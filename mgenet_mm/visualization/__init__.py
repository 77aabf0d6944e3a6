"""Pictures of anomaly scores: score curves and histograms (PNG) and the overlay video.

Nothing here is registered or needed for training and evaluation; the tools
(``tools/analysis/plot_scores.py``, ``tools/infer_video.py``) draw with it.
"""
from .curves import KIND_COLOURS, plot_score_curves, plot_score_histogram, plot_video_scores
from .overlay import COCO17_EDGES, OverlayWriter, PersonScoreTimeline

__all__ = [
    'COCO17_EDGES', 'KIND_COLOURS', 'OverlayWriter', 'PersonScoreTimeline', 'plot_score_curves',
    'plot_score_histogram', 'plot_video_scores'
]
