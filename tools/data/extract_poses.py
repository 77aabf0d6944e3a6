"""Extract tracked COCO-17 poses from videos or frame folders into tracked-person JSON files.

Person detection with an MMDetection model, top-down poses with an MMPose model and a greedy
frame-to-frame tracker (IoU of constant-velocity predicted boxes, optionally blended with OKS).
One ``<clip>_alphapose_tracked_person.json`` per clip is written into ``--out-dir``, in the layout
the pose datasets read (``docs/data_preparation.md``). A clip whose JSON exists is skipped, so an
interrupted directory run resumes where it stopped.

Examples:
    # A directory of videos and/or frame folders, with local copies of the model-zoo weights
    python tools/data/extract_poses.py data/own/videos --out-dir data/own/pose \\
        --det-checkpoint checkpoints/rtmdet_m_8xb32-300e_coco_20220719_112220-229f527c.pth \\
        --pose-checkpoint \\
        checkpoints/rtmpose-m_simcc-coco_pt-aic-coco_420e-256x192-d8dd5ca4_20230127.pth

    # One frame folder, another detector
    python tools/data/extract_poses.py data/own/frames/clip01 --out-dir data/own/pose \\
        --det-config mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py --det-checkpoint tiny.pth
"""
import argparse
import sys
from typing import List, Optional

import mgenet_mm  # noqa: F401  shims (checkpoint loaders under the trust policy) first
from mgenet_mm.utils import add_trust_argument, trust_from_args
from mgenet_mm.apis.pose_extraction import (
    DEFAULT_DET_CHECKPOINT, DEFAULT_DET_CONFIG, DEFAULT_POSE_CHECKPOINT, DEFAULT_POSE_CONFIG,
    PoseExtractor, run_pose_extraction)
from mgenet_mm.apis.clips import PoseExtractionError


def default_device() -> str:
    import torch
    return 'cuda:0' if torch.cuda.is_available() else 'cpu'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Detect, estimate and track human poses; write one tracked-person JSON '
        'per clip')
    parser.add_argument(
        'input', help='a video file, a folder of frame images, or a directory of videos '
        'and/or frame folders')
    parser.add_argument('--out-dir', required=True, help='where the JSON files are written')
    parser.add_argument(
        '--det-config', default=DEFAULT_DET_CONFIG,
        help="detector config: a path, or 'mmdet::<path>' inside mmdet's shipped configs "
        '(default: %(default)s)')
    parser.add_argument(
        '--det-checkpoint', default=DEFAULT_DET_CHECKPOINT,
        help='detector checkpoint: a path or a URL (a URL needs internet; default: '
        '%(default)s)')
    parser.add_argument(
        '--pose-config', default=DEFAULT_POSE_CONFIG,
        help="top-down COCO-17 pose config: a path, or 'mmpose::<path>' (default: "
        '%(default)s)')
    parser.add_argument(
        '--pose-checkpoint', default=DEFAULT_POSE_CHECKPOINT,
        help='pose checkpoint: a path or a URL (a URL needs internet; default: '
        '%(default)s)')
    parser.add_argument('--det-thr', type=float, default=0.5,
                        help='person detection score threshold (default: %(default)s)')
    parser.add_argument(
        '--nms-thr', type=float, default=0.3,
        help='IoU threshold of the extra NMS over person boxes (default: %(default)s)')
    parser.add_argument(
        '--det-cat-id', type=int, default=None,
        help='class index of people in the detector (default: looked up by the name "person")')
    parser.add_argument('--device', default=None,
                        help='device, e.g. cpu or cuda:0 (default: cuda:0 when available)')
    parser.add_argument(
        '--score-mode', choices=['keypoint', 'bbox'], default='keypoint',
        help='per-frame "scores" written: mean keypoint confidence or detection score '
        '(default: %(default)s)')
    parser.add_argument(
        '--track-thr', type=float, default=0.3,
        help='minimum similarity of a track and a detection to match (default: %(default)s)')
    parser.add_argument(
        '--max-missing', type=int, default=5,
        help='frames a person may go undetected and keep the id; longer gaps get a new id '
        '(default: %(default)s)')
    parser.add_argument(
        '--oks-weight', type=float, default=0.0,
        help='weight of keypoint similarity (OKS) against box IoU in tracking, in [0, 1] '
        '(default: %(default)s)')
    parser.add_argument('--overwrite', action='store_true',
                        help='redo clips whose JSON already exists (default: skip them)')
    parser.add_argument(
        '--non-strict', action='store_true',
        help='load checkpoints whose keys do not all fit their configs (with a warning)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    add_trust_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        with trust_from_args(args):  # --trust-checkpoint: see mgenet_mm.utils.checkpoint_trust
            extractor = PoseExtractor.from_config(
                det_config=args.det_config,
                det_checkpoint=args.det_checkpoint,
                pose_config=args.pose_config,
                pose_checkpoint=args.pose_checkpoint,
                device=args.device or default_device(),
                det_thr=args.det_thr,
                nms_thr=args.nms_thr,
                det_cat_id=args.det_cat_id,
                strict=not args.non_strict,
                tracker=dict(match_thr=args.track_thr, max_missing=args.max_missing,
                             oks_weight=args.oks_weight),
                score_mode=args.score_mode)
        results = run_pose_extraction(extractor, args.input, args.out_dir,
                                      overwrite=args.overwrite,
                                      show_progress=not args.no_progress)
    except (PoseExtractionError, FileNotFoundError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    failed = [r for r in results if r.status == 'failed']
    done = sum(r.status == 'done' for r in results)
    skipped = sum(r.status == 'skipped' for r in results)
    print(f'{done} clips done, {skipped} skipped (already there), {len(failed)} failed')
    for result in failed:
        print(f'error: {result.name}: {result.error}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
