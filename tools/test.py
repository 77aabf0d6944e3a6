"""Test a checkpoint with mmengine's Runner and print the frame-level AUC.

Example:
    python tools/test.py configs/mgenet/sht.py work_dirs/sht/epoch_10.pth --work-dir work_dirs/sht
"""
import argparse
import os

import mgenet_mm  # noqa: F401  shims + registration before configs are built
from mmengine.config import Config, DictAction

from mgenet_mm.models.utils.checkpoint import check_checkpoint_path
from mgenet_mm.utils import add_trust_argument, trust_from_args
from mgenet_mm.utils.process_exit import exit_without_teardown
from mgenet_mm.engine import (NEW_KEY_PREFIX, CheckedRunner, finish_distributed,
                              merge_cfg_options, resolve_dist_backend, set_work_dir)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument('--work-dir', help='the dir to save the evaluation results and logs')
    parser.add_argument('--dump', type=str,
                        help='dump the raw predictions to this pickle file (.pkl)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs, e.g. test_dataloader.batch_size=64; '
        'a key whose top-level name is not in the config is refused, unless it is marked as new '
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
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.work_dir, args.config)
    if args.dump is not None:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--dump must name a .pkl or .pickle file, got {args.dump}')
        dump_metric = dict(type='AtomicDumpResults', out_file_path=args.dump)
        if isinstance(cfg.test_evaluator, (list, tuple)):
            cfg.test_evaluator = [*cfg.test_evaluator, dump_metric]
        else:
            cfg.test_evaluator = [cfg.test_evaluator, dump_metric]
    check_checkpoint_path(args.checkpoint)  # a folder or a typo: said before data is loaded
    cfg.load_from = args.checkpoint
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
        runner.test()
    finish_distributed()


if __name__ == '__main__':
    main()
    # the results are written: skip the CUDA libraries' destructors (about 0.1 GB of RSS)
    exit_without_teardown(0)
