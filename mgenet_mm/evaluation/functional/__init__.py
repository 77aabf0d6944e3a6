"""Pure array maths for evaluation (no mmengine state)."""
from .bootstrap import clip_bootstrap_aucs, clip_pair_counts, resample_clips
from .score_mixing import component_ranges, min_max, missing_components, mix_scores
from .vad_scores import (DEFAULT_SIGMAS, compute_vad_aucs, fill_empty_frames,
                         format_shanghaitech_clip_name, kind_aucs, load_shanghaitech_gt,
                         load_ubnormal_gt, padded_clip_auc, parse_shanghaitech_clip_name,
                         score_vad_windows, smooth_scores, ubnormal_clip_name,
                         windows_to_frame_scores)

__all__ = [
    'DEFAULT_SIGMAS', 'clip_bootstrap_aucs', 'clip_pair_counts', 'component_ranges',
    'compute_vad_aucs', 'fill_empty_frames', 'format_shanghaitech_clip_name', 'kind_aucs',
    'load_shanghaitech_gt', 'load_ubnormal_gt', 'min_max', 'missing_components', 'mix_scores',
    'padded_clip_auc', 'parse_shanghaitech_clip_name', 'resample_clips', 'score_vad_windows',
    'smooth_scores', 'ubnormal_clip_name', 'windows_to_frame_scores'
]
