"""Run MGENet's after-training passes again on a trained checkpoint, without training.

After the last epoch, training runs three passes over the normal training windows, each storing
its result in the checkpoint: the BSMM write (``BSMMWriteHook``), the gap whitening of level 1
(``GapWhiteningHook``) and the calibrated fusion (``ScoreCalibrationHook``). None of them changes
a trained weight, so a checkpoint trained under one setting of these parts can be given another
(e.g. ``model.motion_whitening`` switched on, another BSMM ``score_mode``) by running the passes
again with the new config. The passes run in training's order, over the config's training
loader with the sampler at training's last epoch (``--seed`` as given to ``tools/train.py``), so
a checkpoint refitted under its own config gets its own BSMM back.

Every weight of the config's model must be in the checkpoint, except the parts of the passes
that run (they are refitted from scratch); anything else that does not fit is an error.

Example:
    python tools/misc/refit_final_passes.py configs/mgenet/demo_cached.py \\
        work_dirs/demo/mgenet/epoch_10.pth --out work_dirs/demo/mgenet/refit.pth --seed 0
"""
import argparse
import copy
import os.path as osp
import sys
from typing import List, Optional, Sequence

import mgenet_mm  # noqa: F401  shims + registration before configs are built
import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmaction.registry import MODELS
from mgenet_mm.engine import merge_cfg_options
from mgenet_mm.engine.hooks import BSMMWriteHook, GapWhiteningHook, ScoreCalibrationHook
from mgenet_mm.fileio import atomic_write_bytes
from mgenet_mm.models.utils.checkpoint import load_state_dict_checked, strip_wrapper_prefix
from mgenet_mm.utils import add_trust_argument, load_checkpoint_file, trust_from_args

#: The passes in training's order (their hooks' priorities).
PASSES = (BSMMWriteHook, GapWhiteningHook, ScoreCalibrationHook)


class RefitError(RuntimeError):
    """A config and checkpoint that cannot be refitted (named in the message)."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run MGENet's after-training passes (BSMM "
                                     'write, gap whitening, score calibration) again on a '
                                     'trained checkpoint')
    parser.add_argument('config', help='config of the model to refit (the new settings)')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--out', required=True, help='where to write the refitted checkpoint')
    parser.add_argument('--seed', type=int, default=0,
                        help='the seed training ran with (orders the BSMM write as training did)')
    parser.add_argument('--passes', nargs='+', choices=[p.part for p in PASSES],
                        help='only these passes (default: every pass the model has a part for); '
                        'the parts of the others must be in the checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    add_trust_argument(parser)
    args = parser.parse_args(argv)
    if osp.abspath(args.out) == osp.abspath(args.checkpoint):
        parser.error('--out must differ from the checkpoint (the original is kept)')
    return args


def refit(args: argparse.Namespace) -> List[str]:
    """Load, run the passes and save; returns the parts refitted."""
    if not osp.isfile(args.config):
        raise RefitError(f'config not found: {args.config}')
    if not osp.isfile(args.checkpoint):
        raise RefitError(f'checkpoint not found: {args.checkpoint}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        merge_cfg_options(cfg, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = MODELS.build(cfg.model)
    passes = [hook for hook in PASSES if getattr(model, hook.part, None) is not None and
              (args.passes is None or hook.part in args.passes)]
    if not passes:
        raise RefitError(f'the model of {args.config} has none of the parts '
                         f'{[p.part for p in PASSES] if args.passes is None else args.passes}')
    checkpoint = load_checkpoint_file(args.checkpoint)
    state_dict = checkpoint.get('state_dict') if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise RefitError(f'checkpoint {args.checkpoint} holds no state_dict')
    state_dict = strip_wrapper_prefix(state_dict)
    # The refitted parts start empty; a checkpoint of another setting may not fit them at all.
    refitted = [hook.part for hook in passes]
    state_dict = {k: v for k, v in state_dict.items()
                  if not any(k.startswith(part + '.') for part in refitted)}
    load_state_dict_checked(model, state_dict,
                            optional=[rf'^{part}\.' for part in refitted],
                            source=f'checkpoint {args.checkpoint}',
                            target=f'the model of {args.config}', error=RefitError)
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    dataloader = Runner.build_dataloader(loader_cfg, seed=args.seed)
    last_epoch = int(cfg.train_cfg.get('max_epochs', 1)) - 1
    if hasattr(dataloader.sampler, 'set_epoch'):
        dataloader.sampler.set_epoch(last_epoch)  # as DistSamplerSeedHook left it
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.to(device)
    for hook in passes:
        print_log(f'refit: {hook.part}', logger='current')
        hook().run(model, dataloader)
    checkpoint['state_dict'] = {k: v.cpu() for k, v in model.state_dict().items()}
    meta = dict(checkpoint.get('meta') or {})
    meta['refit'] = dict(source=osp.abspath(args.checkpoint), config=args.config,
                         passes=refitted, seed=args.seed)
    checkpoint['meta'] = meta
    atomic_write_bytes(args.out, lambda f: torch.save(checkpoint, f))
    print_log(f'refitted {", ".join(refitted)} of {args.checkpoint} -> {args.out}',
              logger='current')
    return refitted


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    with trust_from_args(args):
        try:
            refit(args)
        except RefitError as error:
            print(f'error: {error}', file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
