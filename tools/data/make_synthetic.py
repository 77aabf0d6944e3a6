"""Generate the synthetic human-behaviour anomaly benchmark (ShanghaiTech layout).

The benchmark has motion, appearance and scene-related anomalies rendered from articulated
skeletons (see ``mgenet_mm/synthetic/`` and ``docs/benchmark.md``), a test split and a
validation split (same layout and kinds, own seeds: choose hyperparameters there). The same seed
gives byte-identical files.

Examples:
    python tools/data/make_synthetic.py --out data/synthetic
    python tools/data/make_synthetic.py --out /tmp/syn --preset tiny --montage /tmp/syn.png
    python tools/data/make_synthetic.py --out data/synthetic --check
    python tools/data/make_synthetic.py --out data/synthetic --seed 1 --update  # replace seed 0
"""
import argparse
import json
import os.path as osp
import sys
import time
from typing import Optional, Tuple

from mgenet_mm.synthetic import (PRESETS, check_layout, config_dict, generate_benchmark,
                                 make_montage, preset_config, summarize_benchmark)
from mgenet_mm.synthetic.writer import GENERATOR_VERSION


def _pair(text: str, sep_options: str = ',-x') -> Tuple[int, int]:
    """'200' -> (200, 200); '160,240' / '160-240' -> (160, 240)."""
    for sep in sep_options:
        if sep in text:
            a, b = text.split(sep, 1)
            return int(a), int(b)
    return int(text), int(text)


def _size(text: str) -> Tuple[int, int]:
    """'320x240' -> (320, 240)."""
    try:
        w, h = text.lower().split('x')
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT, got {text!r}') from None


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the synthetic anomaly benchmark in the ShanghaiTech layout')
    parser.add_argument('--out', required=True, help='output root (e.g. data/synthetic)')
    parser.add_argument('--preset', default='default', choices=sorted(PRESETS),
                        help='sizes to start from (tiny: a few short clips, for tests)')
    parser.add_argument('--seed', type=int, default=0, help='master seed (default 0)')
    parser.add_argument('--scenes', type=int, help='number of scenes (types cycle plaza, '
                        'street, sports ground, park; >= 3 for scene-related anomalies)')
    parser.add_argument('--train-clips', type=int, help='training videos per scene')
    parser.add_argument('--test-clips', type=int, help='test clips per scene')
    parser.add_argument('--val-clips', type=int,
                        help='validation clips per scene (validation/, gt/val_frame_*)')
    parser.add_argument('--frames', type=_pair,
                        help='frames per clip: N or MIN,MAX (default preset: 160,240)')
    parser.add_argument('--persons', type=_pair, help='persons per clip: N or MIN,MAX')
    parser.add_argument('--size', type=_size, help='frame size WIDTHxHEIGHT (default 320x240)')
    parser.add_argument('--fps', type=int, help='frame rate (default 25)')
    parser.add_argument('--workers', type=int, default=1,
                        help='processes rendering clips in parallel (output is identical)')
    parser.add_argument('--check', action='store_true',
                        help='only validate an existing benchmark under --out and summarise it')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace whatever benchmark is under --out, even an identical one')
    parser.add_argument('--update', action='store_true',
                        help='replace a benchmark of another seed, size or generator version '
                        'under --out, keep an identical valid one (what tools/demo.py uses)')
    parser.add_argument('--montage', help='also write a PNG montage of test frames here')
    parser.add_argument('--quiet', action='store_true', help='no per-clip progress')
    return parser.parse_args(argv)


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    if args.check:
        problems = check_layout(args.out)
        if problems:
            print(f'{args.out}: {len(problems)} problem(s):')
            for problem in problems:
                print(f'  {problem}')
            return 1
        print(f'{args.out}: layout OK')
    else:
        cfg = preset_config(args.preset, seed=args.seed, scenes=args.scenes,
                            train_clips=args.train_clips, test_clips=args.test_clips,
                            val_clips=args.val_clips,
                            frames=args.frames, persons=args.persons, size=args.size,
                            fps=args.fps)
        meta_path = osp.join(args.out, 'meta.json')
        existing = None
        if osp.isfile(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
            existing = (meta.get('version'), meta.get('config'))
        if existing == (GENERATOR_VERSION, config_dict(cfg)) and not args.overwrite and \
                not check_layout(args.out):
            # Same generator, seed and sizes give the same bytes: nothing to redo.
            print(f'{args.out}: already holds this benchmark, layout OK (--overwrite to redo)')
        else:
            start = time.perf_counter()
            try:
                generate_benchmark(cfg, args.out, workers=args.workers,
                                   log=None if args.quiet else print,
                                   overwrite=args.overwrite or args.update)
            except FileExistsError as error:
                print(f'error: {error}', file=sys.stderr)
                return 2
            # generate_benchmark validates the layout and raises when it is broken.
            print(f'generated {args.out} in {time.perf_counter() - start:.1f}s; layout OK')
    print(json.dumps(summarize_benchmark(args.out), indent=1))
    if args.montage:
        import cv2
        cv2.imwrite(args.montage, make_montage(args.out))
        print(f'montage: {args.montage}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
