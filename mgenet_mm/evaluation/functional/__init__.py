"""Pure array maths for evaluation (no mmengine state)."""
from .score_mixing import component_ranges, min_max, missing_components, mix_scores
from .vad_scores import (DEFAULT_SIGMAS, compute_vad_aucs, fill_empty_frames,
                         format_shanghaitech_clip_name, kind_aucs, load_shanghaitech_gt,
                         load_ubnormal_gt, padded_clip_auc, parse_shanghaitech_clip_name,
                         score_vad_windows, smooth_scores, ubnormal_clip_name,
                         windows_to_frame_scores)

__all__ = [
    'DEFAULT_SIGMAS', 'component_ranges', 'compute_vad_aucs', 'fill_empty_frames',
    'format_shanghaitech_clip_name', 'kind_aucs', 'load_shanghaitech_gt', 'load_ubnormal_gt',
    'min_max', 'missing_components', 'mix_scores', 'padded_clip_auc',
    'parse_shanghaitech_clip_name', 'score_vad_windows', 'smooth_scores', 'ubnormal_clip_name',
    'windows_to_frame_scores'
]
