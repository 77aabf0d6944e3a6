"""Train a model from a config with mmengine's Runner (mmaction2 1.x command line).

Example:
    python tools/train.py configs/mgenet/sht.py --work-dir work_dirs/sht
"""
import argparse
import os

import mgenet_mm  # noqa: F401  shims + registration before configs are built
from mmengine.config import Config, DictAction

from mgenet_mm.utils import add_trust_argument, trust_from_args
from mgenet_mm.engine import (NEW_KEY_PREFIX, CheckedRunner, finish_distributed,
                              merge_cfg_options, resolve_dist_backend, set_work_dir)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a recognizer')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest checkpoint in the work dir '
        'when no path is given')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate with the total batch size')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument('--diff-rank-seed', action='store_true',
                        help='set a different seed on each rank')
    parser.add_argument('--deterministic', action='store_true',
                        help='make cudnn/torch deterministic')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs, e.g. train_cfg.max_epochs=2; a key '
        'whose top-level name is not in the config is refused, unless it is marked as new '
        f'with a leading {NEW_KEY_PREFIX} (e.g. {NEW_KEY_PREFIX}my_key=1)')
    parser.add_argument(
        '--allow-partial-checkpoint', action='store_true',
        help='load a checkpoint that fits the model only in part (the other weights keep '
        'their initial values); without it, missing or unexpected keys are an error')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    add_trust_argument(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Fold the command-line options into the config."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.work_dir, args.config)
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(f'--amp needs OptimWrapper or AmpOptimWrapper, got {optim_wrapper}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if cfg.get('randomness', None) is None:
        cfg.randomness = dict(seed=args.seed, diff_rank_seed=args.diff_rank_seed,
                              deterministic=args.deterministic)
    else:
        if args.seed is not None:
            cfg.randomness.seed = args.seed
        if args.diff_rank_seed:
            cfg.randomness.diff_rank_seed = True
        if args.deterministic:
            cfg.randomness.deterministic = True
    if args.allow_partial_checkpoint:
        cfg.allow_partial_checkpoint = True
    # unknown top-level names are refused (a misspelt key would be ignored): '+key=...' adds one
    merge_cfg_options(cfg, args.cfg_options)
    resolve_dist_backend(cfg)
    return cfg


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)
    with trust_from_args(args):
        runner = CheckedRunner.from_cfg(cfg)
        runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
