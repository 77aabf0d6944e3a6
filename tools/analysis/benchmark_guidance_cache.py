"""Time MGENet training steps with and without the cache of the frozen flow's f_sk.

Trains the same cached MGENet config twice, one run after the other in this process: with
``model.train_cfg.cache_guidance=True`` (the default) and with it off. For each run and epoch it
prints the median training step (the whole ``run_iter``: data, forward, backward, update), the
windows trained on and the batches the guidance flow ran on, then the ratio of the two runs'
steps epoch by epoch. Epoch 1 fills the cache, so from epoch 2 on a cached step runs only the
trainable parts. Both runs start from the same seed; the losses of the two runs are the same
numbers (tests/models/recognizers/test_mgenet_recognizer.py checks that to the bit).

Example (the demo's cached config, after ``make demo`` built its STG-NF checkpoint and features):
    python tools/analysis/benchmark_guidance_cache.py configs/mgenet/demo_cached.py --epochs 2
"""
import argparse
import os
import os.path as osp
import statistics
import tempfile
import time
from typing import Dict, List

import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='cached MGENet config (e.g. configs/mgenet/demo_cached.py)')
    parser.add_argument('--epochs', type=int, default=2, help='epochs of each run (default 2)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    args = parser.parse_args()
    if not osp.isfile(args.config):
        raise SystemExit(f'config not found: {args.config}')
    if args.epochs < 2 or args.threads < 1:
        raise SystemExit('--epochs must be at least 2 (epoch 1 fills the cache) and --threads '
                         'at least 1')
    return args


class StepTimer(Hook):
    """Records each training step's wall time and windows, by epoch (0-based)."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.steps: Dict[int, List[float]] = {}
        self.windows: Dict[int, int] = {}
        self._began = 0.

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self.windows[runner.epoch] = (self.windows.get(runner.epoch, 0)
                                      + len(data_batch['data_samples']))
        self._began = time.perf_counter()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self.steps.setdefault(runner.epoch, []).append(time.perf_counter() - self._began)


def train_once(args: argparse.Namespace, cache: bool, work_dir: str) -> dict:
    """One training run; returns per-epoch step times, windows and flow batches."""
    from mgenet_mm.engine import CheckedRunner, merge_cfg_options
    cfg = merge_cfg_options(Config.fromfile(args.config), args.cfg_options)
    cfg.merge_from_dict({'model.train_cfg.cache_guidance': cache,
                         'train_cfg.max_epochs': args.epochs,
                         'train_cfg.val_interval': args.epochs + 1,
                         'default_hooks.checkpoint.interval': args.epochs + 1,
                         'randomness.seed': args.seed})
    cfg.work_dir = work_dir
    runner = CheckedRunner.from_cfg(cfg)
    timer = StepTimer()
    runner.register_hook(timer)
    flow_batches: Dict[int, int] = {}

    model = runner.model
    flow = model.guidance.latent_features

    def counted_flow(*flow_args, **flow_kwargs):
        if model.training:  # not the after-training passes (BSMM write, fits)
            flow_batches[runner.epoch] = flow_batches.get(runner.epoch, 0) + 1
        return flow(*flow_args, **flow_kwargs)

    model.guidance.latent_features = counted_flow
    runner.train()
    return dict(steps=timer.steps, flow_batches=flow_batches, windows=timer.windows)


def main() -> None:
    args = parse_args()
    import mgenet_mm  # noqa: F401  registration
    torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for name, cache in (('cached', True), ('uncached', False)):
            results[name] = train_once(args, cache, osp.join(root, name))
    print(f'{osp.basename(args.config)}: {args.epochs} epochs per run, {args.threads} torch '
          f'threads, load average {os.getloadavg()[0]:.2f}')
    print(f'{"epoch":>5} {"run":>9} {"windows":>8} {"flow batches":>13} {"median step":>12}')
    for epoch in sorted(results['cached']['steps']):
        for name in ('cached', 'uncached'):
            run = results[name]
            print(f'{epoch + 1:>5} {name:>9} {run["windows"].get(epoch, 0):>8} '
                  f'{run["flow_batches"].get(epoch, 0):>13} '
                  f'{1000 * statistics.median(run["steps"][epoch]):>10.1f} ms')
        ratio = (statistics.median(results['cached']['steps'][epoch])
                 / statistics.median(results['uncached']['steps'][epoch]))
        print(f'{"":>5} {"cached / uncached":>32} {ratio:>12.3f}')


if __name__ == '__main__':
    main()
