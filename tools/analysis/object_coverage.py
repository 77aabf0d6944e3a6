"""How much of the person tube the objects of a synthetic benchmark's appearance anomalies cover.

For every window (T frames, every ``--stride`` frames) in which an anomalous person carries or
rides an object, the tube is cut as ``PersonTubeCrop`` cuts it, from the keypoints of the
benchmark's pose files, and the object's pixels (from the renderer's part-label map: the clips
are re-simulated from meta.json, nothing is guessed) are measured at the tube's resolution:
share of the tube, area in tokens, tokens touched and tokens at least half covered (see
``mgenet_mm/synthetic/coverage.py``). Printed per event type (medians over windows), and written
as JSON with ``--out``.

Examples:
    python tools/analysis/object_coverage.py data/synthetic
    python tools/analysis/object_coverage.py data/synthetic --max-person-ratio none --split val
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional

from mgenet_mm.datasets.pose_utils import read_tracked_pose_json
from mgenet_mm.synthetic import APPEARANCE_EVENTS, SyntheticConfig, plan_benchmark
from mgenet_mm.synthetic.coverage import clip_object_coverage, summarize_coverage

SPLIT_DIRS = {'test': 'test', 'val': 'val'}


def _ratio(text: str) -> Optional[float]:
    return None if text.lower() == 'none' else float(text)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data', help='benchmark root written by tools/data/make_synthetic.py')
    parser.add_argument('--split', default='test', choices=sorted(SPLIT_DIRS))
    parser.add_argument('--tube-size', type=int, default=32, help='tube side (demo: 32)')
    parser.add_argument('--patch', type=int, default=8,
                        help='token side in tube pixels (demo: 8, a 4x4 grid)')
    parser.add_argument('--seg-len', type=int, default=24)
    parser.add_argument('--stride', type=int, default=6)
    parser.add_argument('--max-person-ratio', type=_ratio, default=1.5,
                        help="PersonTubeCrop's cap ('none': the union box of all keypoints)")
    parser.add_argument('--out', help='write the per-window rows and the summary here (JSON)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    meta_path = osp.join(args.data, 'meta.json')
    if not osp.isfile(meta_path):
        print(f'error: {meta_path} not found: not a synthetic benchmark root', file=sys.stderr)
        return 2
    with open(meta_path) as f:
        meta = json.load(f)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in meta['config'].items()}
    plan = plan_benchmark(SyntheticConfig(**values))
    clips = [c for c in plan.split(args.split) if c.event in APPEARANCE_EVENTS]
    if not clips:
        print(f'error: no appearance clips in the {args.split} split of {args.data}',
              file=sys.stderr)
        return 2
    rows = []
    for clip in clips:
        pose = osp.join(args.data, 'pose', SPLIT_DIRS[args.split],
                        f'{clip.name}_alphapose_tracked_person.json')
        keypoints = {pid: (frames, values)
                     for pid, (frames, values, _) in read_tracked_pose_json(pose).items()}
        rows += clip_object_coverage(clip, plan.camera, plan.config.fps, keypoints,
                                     args.seg_len, args.stride, args.tube_size, args.patch,
                                     max_person_ratio=args.max_person_ratio)
        print(f'{clip.name} {clip.event}: {sum(r["clip"] == clip.name for r in rows)} windows',
              flush=True)
    summary = summarize_coverage(rows)
    grid = args.tube_size // args.patch
    print(f'\nObject coverage of a {args.tube_size} px tube ({grid}x{grid} tokens of '
          f'{args.patch} px), max_person_ratio={args.max_person_ratio}; medians over windows\n')
    header = ('event', 'windows', 'tube %', 'token area', 'touched', '>=half', 'person px',
              'area>=1 tok')
    print('  '.join(f'{h:>11}' for h in header))
    for event, entry in summary.items():
        print('  '.join(f'{v:>11}' for v in (
            event, entry['windows'], f'{100 * entry["pixel_fraction"]:.1f}',
            f'{entry["token_area"]:.2f}', f'{entry["tokens_touched"]:.0f}',
            f'{entry["tokens_half"]:.0f}', f'{entry["person_px"]:.1f}',
            f'{100 * entry["share_token_area_ge_1"]:.0f} %')))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(options=vars(args), summary=summary, windows=rows), f, indent=1)
        print(f'\nwritten: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
