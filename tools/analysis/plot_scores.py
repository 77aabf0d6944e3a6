"""Plot the frame scores of a tools/test.py run: per-clip curves and the score histogram.

Reads ``vad_frame_scores.npz`` (given, or found in a run's log folder) and the ground truth.

Example:
    python tools/analysis/plot_scores.py work_dirs/stgnf_fixture \
        --gt-dir ../shared/fixtures/stgnf_reference/gt/test_frame_mask --out plots/
"""
import argparse
import glob
import os
import os.path as osp

import numpy as np

from mgenet_mm.evaluation.functional.gt_formats import GT_FORMATS, gt_file
from mgenet_mm.visualization import plot_score_curves, plot_score_histogram


def find_scores(path: str) -> str:
    """The npz itself, or the newest ``*/vad_frame_scores.npz`` under a work dir."""
    if osp.isfile(path):
        return path
    found = sorted(glob.glob(osp.join(path, 'vad_frame_scores.npz')) +
                   glob.glob(osp.join(path, '*', 'vad_frame_scores.npz')), key=osp.getmtime)
    if not found:
        raise FileNotFoundError(f'no vad_frame_scores.npz in {path} or its run folders')
    return found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('scores', help='vad_frame_scores.npz or a --work-dir of tools/test.py')
    parser.add_argument('--gt-dir', required=True)
    parser.add_argument('--gt-format', default='shanghaitech', choices=sorted(GT_FORMATS))
    parser.add_argument('--kind-dir', help='per-frame anomaly kinds (synthetic benchmark)')
    parser.add_argument('--clips', nargs='+', help='clips to draw (default: the first few)')
    parser.add_argument('--max-clips', type=int, default=8)
    parser.add_argument('--out', default='.', help='output folder')
    parser.add_argument('--title', default='')
    args = parser.parse_args()

    scores_path = find_scores(args.scores)
    with np.load(scores_path) as data:
        scores = {name: data[name] for name in data.files}
    gt_format = GT_FORMATS[args.gt_format]
    gt = {}
    for name in scores:
        path = gt_file(gt_format, args.gt_dir, name)
        if not osp.isfile(path):
            raise FileNotFoundError(f'clip {name}: ground truth {path} not found')
        gt[name] = gt_format.loader(path)
        if len(gt[name]) != len(scores[name]):
            raise ValueError(f'clip {name}: {len(scores[name])} scores but {len(gt[name])} '
                             'ground-truth frames')
    kinds = None
    if args.kind_dir:
        kinds = {name: np.load(osp.join(args.kind_dir, name + '.npy')) for name in scores}
    if args.clips:
        clips = args.clips
    else:  # prefer clips that contain anomalies, then the rest
        clips = sorted(scores, key=lambda c: (not gt[c].any(), c))[:args.max_clips]
    os.makedirs(args.out, exist_ok=True)
    curves = osp.join(args.out, 'score_curves.png')
    histogram = osp.join(args.out, 'score_histogram.png')
    plot_score_curves(scores, gt, curves, clips=clips, kinds=kinds,
                      kind_names={1: 'motion', 2: 'appearance', 3: 'scene'})
    plot_score_histogram(scores, gt, histogram, title=args.title)
    print(f'read {scores_path}\nwrote {curves}\nwrote {histogram}')


if __name__ == '__main__':
    main()
