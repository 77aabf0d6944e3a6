"""Parameter counts per component and CPU forward/backward time of an MGENet config.

The weights are random (nothing is downloaded); timings use one window, or ``--batch`` windows,
with cube tokens as the feature cache would give them and, with ``--on-the-fly``, raw tubes
through the frozen Swin stage as well.

Example:
    python tools/analysis/model_summary.py configs/mgenet/sht.py --repeat 5
"""
import argparse
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample


def count(module: torch.nn.Module) -> str:
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return f'{total / 1e6:8.3f} M  ({trainable / 1e6:.3f} M trainable)'


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--on-the-fly', action='store_true',
                        help='also time raw tubes through the frozen cube embedding')
    args = parser.parse_args()
    init_default_scope('mmaction')
    cfg = Config.fromfile(args.config)
    model = MODELS.build(cfg.model)
    model.guidance.set_actnorm_initialized()
    print(f'{args.config}: torch {torch.__version__}, {torch.get_num_threads()} threads')
    for name, child in model.named_children():
        if any(True for _ in child.parameters()):
            print(f'  {name:<18} {count(child)}')
    for name in ('behaviour_memory', 'guidance_memory', 'scene_memory', 'bsmm'):
        part = getattr(model, name, None)
        if part is not None:
            print(f'  {name:<18} {sum(b.numel() for b in part.buffers()) / 1e6:8.3f} M '
                  'buffer values (updated without gradient)')
    print(f'  {"total":<18} {count(model)}')

    batch, (t, h, w) = args.batch, model.token_grid
    seg_len = model.guidance.seg_len
    inputs = dict(pose=torch.randn(batch, seg_len, 18, 3),
                  tokens=torch.randn(batch, model.backbone.in_channels, t, h, w))
    if model.scene_memory is not None:
        inputs['scene_feat'] = torch.randn(batch, model.scene_memory.dim)
    samples = [ActionDataSample() for _ in range(batch)]

    def train_step() -> None:
        model.train()
        losses = model(dict(inputs), samples, mode='loss')
        model.zero_grad()
        sum(losses.values()).backward()

    def predict() -> None:
        model.eval()
        model(dict(inputs), samples, mode='predict')

    print(f'train forward+backward, {batch} window(s), cached tokens: '
          f'{timed(train_step, args.repeat) * 1e3:.0f} ms')
    if model.bsmm is not None:
        model.write_bsmm(dict(inputs))
    print(f'predict (S_mo, S_app with two masks, S_mm), {batch} window(s): '
          f'{timed(predict, args.repeat) * 1e3:.0f} ms')
    if args.on_the_fly and model.cube_embed is not None:
        clip = torch.randn(batch, 3, seg_len, 8 * h, 8 * w)
        with torch.no_grad():
            seconds = timed(lambda: model.cube_embed(clip), args.repeat)
        print(f'frozen cube embedding of {batch} tube(s) {tuple(clip.shape[1:])}: '
              f'{seconds * 1e3:.0f} ms')


if __name__ == '__main__':
    main()
