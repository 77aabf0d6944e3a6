"""Pure array maths for evaluation (no mmengine state)."""
from .bootstrap import clip_bootstrap_aucs, clip_pair_counts, resample_clips
from .region_gt import (ClipRegions, load_pixel_mask_regions, load_region_tracks,
                        load_ubnormal_annotation_regions, mask_regions)
from .region_metrics import rbdc_tbdc
from .roc_auc import binary_roc_auc
from .score_mixing import component_ranges, min_max, missing_components, mix_scores
from .vad_scores import (DEFAULT_SIGMAS, compute_vad_aucs, fill_empty_frames,
                         format_shanghaitech_clip_name, kind_aucs, load_shanghaitech_gt,
                         load_ubnormal_gt, padded_clip_auc, parse_shanghaitech_clip_name,
                         score_vad_windows, smooth_scores, ubnormal_clip_name,
                         windows_to_frame_scores)

__all__ = [
    'ClipRegions', 'DEFAULT_SIGMAS', 'binary_roc_auc', 'clip_bootstrap_aucs', 'clip_pair_counts', 'component_ranges',
    'compute_vad_aucs', 'fill_empty_frames', 'format_shanghaitech_clip_name', 'kind_aucs',
    'load_shanghaitech_gt', 'load_ubnormal_gt', 'min_max', 'missing_components', 'mix_scores',
    'load_pixel_mask_regions', 'load_region_tracks', 'load_ubnormal_annotation_regions',
    'mask_regions', 'padded_clip_auc', 'parse_shanghaitech_clip_name', 'rbdc_tbdc',
    'resample_clips', 'score_vad_windows',
    'smooth_scores', 'ubnormal_clip_name', 'windows_to_frame_scores'
]
