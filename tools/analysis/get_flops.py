"""FLOPs and parameters of a config's model, stage by stage, with mmengine's analysis.

The model is built from the config with random weights (nothing is loaded). One window of the
config's input size goes through the scoring path, and every stage is counted on the tensors the
previous stage produced, with :func:`mmengine.analysis.get_model_complexity_info`:

- STG-NF (``STGNFRecognizer``): the flow on a (1, T, 18, 3) skeleton window;
- MGENet (``MGENetRecognizer``): the guidance flow, the frozen cube embedding (raw tubes, when
  the config has one), the frozen scene encoder (scene images, when it has one), the RGB encoder,
  the LSTA head, the appearance target, each of the two masked passes of S_app, and the BSMM
  read of S_mm (written first from the same random window, as it would be after training).

mmengine counts one multiply-add as one FLOP and leaves out element-wise operators it does not
know (it lists them with ``--show-unsupported``): the numbers are a lower bound of the arithmetic,
comparable between configs, not a measure of time (``tools/analysis/model_summary.py`` times the
model). A stage that cannot be traced is reported as such, and left out of the total.

Example:
    python tools/analysis/get_flops.py configs/mgenet/demo.py
    python tools/analysis/get_flops.py configs/stgnf/stgnf_sht.py --table
"""
import argparse
import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401  registration before configs are built
from mgenet_mm.engine import merge_cfg_options

Stage = Tuple[str, Callable[..., object], Tuple[torch.Tensor, ...], Sequence[torch.nn.Module]]


class _Stage(torch.nn.Module):
    """One stage as a module: its function of tensors, and the modules whose weights it uses
    (registered so that mmengine counts their parameters)."""

    def __init__(self, fn: Callable[..., object], modules: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        self.fn = fn
        self.parts = torch.nn.ModuleList(modules)

    def forward(self, *inputs: torch.Tensor) -> object:
        return self.fn(*inputs)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file path')
    parser.add_argument('--scene-size', type=int, default=None,
                        help='side of the scene image (default: the config\'s scene_size, '
                        'else 224)')
    parser.add_argument('--table', action='store_true',
                        help='also print mmengine\'s per-module table of every stage')
    parser.add_argument('--show-unsupported', action='store_true',
                        help='log the operators mmengine does not count')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


def stgnf_stages(model: torch.nn.Module) -> List[Stage]:
    """The one stage of an STG-NF recognizer: the flow on a skeleton window."""
    pose = torch.randn(1, model.backbone.seg_len, 18, 3)  # (B, T, V, C)
    return [('STG-NF flow (latent z, nll)', lambda p: model.extract_feat(p)[0], (pose, ),
             [model.backbone])]


def mgenet_stages(model: torch.nn.Module, scene_size: int) -> List[Stage]:
    """The scoring path of MGENet, stage by stage, on one random window."""
    t, h, w = model.token_grid
    pose = torch.randn(1, model.guidance.seg_len, 18, 3)  # (B, T, V, C)
    stages: List[Stage] = [('guidance flow f_sk (frozen)', model.guidance_features, (pose, ),
                            [model.guidance])]
    with torch.no_grad():
        if model.cube_embed is not None:
            tube = torch.randn(1, 3, model.guidance.seg_len, 8 * h, 8 * w)  # (B, 3, T, H, W)
            stages.append(('cube embedding (frozen)', model.cube_embed, (tube, ),
                           [model.cube_embed]))
            tokens = model.cube_embed(tube)
        else:
            tokens = torch.randn(1, model.backbone.in_channels, t, h, w)  # cached tokens
        scene_feat = None
        if model.scene_memory is not None:
            if model.scene_encoder is not None:
                scene = torch.randn(1, 3, scene_size, scene_size)
                stages.append(('scene encoder (frozen)', model.scene_encoder, (scene, ),
                               [model.scene_encoder]))
                scene_feat = model.scene_encoder(scene)
            else:
                scene_feat = torch.randn(1, model.scene_memory.dim)  # cached scene features
        e_b = model.backbone(tokens)
        stages.append(('RGB encoder e_b', model.backbone, (tokens, ), [model.backbone]))
        stages.append(('LSTA head f_rgb', lambda e: model.motion_head(e, model.token_grid),
                       (e_b, ), [model.motion_head]))
        if model.with_appearance:
            stages.append(('appearance target f_u', lambda e: model.appearance_target(e)[0],
                           (e_b, ), [model.behaviour_memory, model.appearance_target_head()]))
            # f_m = [predictor](mask head(mask encoder)): appearance_predictor is None or a module
            mask_side = [part for part in (model.mask_encoder, model.mask_head,
                                           model.appearance_predictor) if part is not None]
            pixels = getattr(model, 'mask_input', 'tokens') == 'pixels'
            for index, mask in enumerate(model.test_mask_pair(1, tokens.device)):
                if pixels:  # each masked pass embeds the masked frames again
                    stages.append((f'masked pass {index + 1} of S_app (pixels)',
                                   lambda x, tok, m: model.masked_features(dict(imgs=x), tok, m),
                                   (tube, tokens, mask), [model.cube_embed] + mask_side))
                else:
                    stages.append((f'masked pass {index + 1} of S_app', model._masked_features,
                                   (tokens, mask), mask_side))
        if model.bsmm is not None and scene_feat is not None:
            inputs = dict(pose=pose, tokens=tokens, scene_feat=scene_feat)
            model.write_bsmm(inputs)  # random weights: S_mm needs a written BSMM
            # The behaviour half of the query: W_b of e_b (the paper) or, with
            # bsmm_behaviour='guidance', W_g of the flow's f_sk (computed in its own stage).
            f_sk = model.guidance_features(pose)
            behaviour_memory = getattr(model, 'guidance_memory', None) or model.behaviour_memory
            stages.append(('addressing + BSMM read S_mm',
                           lambda e, f, s: model.bsmm.score(
                               model.bsmm_behaviour_weights(e, f),
                               model.scene_memory.address(s[:, None])),
                           (e_b, f_sk, scene_feat), [behaviour_memory, model.scene_memory,
                                                     model.bsmm]))
    return stages


def count_stages(stages: List[Stage], table: bool = False) -> List[Dict[str, object]]:
    """FLOPs and parameters of every stage; a stage that cannot be traced gets an ``error``."""
    rows = []
    for name, fn, inputs, modules in stages:
        row: Dict[str, object] = dict(stage=name, inputs=[tuple(x.shape) for x in inputs])
        try:
            with torch.no_grad():
                info = get_model_complexity_info(_Stage(fn, modules), inputs=inputs,
                                                 show_table=table, show_arch=False)
        except Exception as error:  # jit tracing refuses some ops; say which stage and why
            row['error'] = f'{type(error).__name__}: {str(error).splitlines()[0][:120]}'
        else:
            row.update(flops=int(info['flops']), params=int(info['params']),
                       table=info['out_table'] if table else '')
        rows.append(row)
    return rows


def _human(value: float) -> str:
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if value >= scale:
            return f'{value / scale:.3f} {unit}'
    return f'{value:.0f}'


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    if not args.show_unsupported:
        # mmengine logs every operator it does not count at WARNING; keep the report readable.
        MMLogger.get_current_instance().setLevel(logging.ERROR)
    from mmaction.registry import MODELS
    model_cfg = cfg.model.copy()
    if isinstance(model_cfg.get('guidance'), dict):
        model_cfg.guidance.init_cfg = None  # random weights: no guidance checkpoint needed
    model = MODELS.build(model_cfg).eval()
    kind = type(model).__name__
    if kind == 'STGNFRecognizer':
        model.backbone.set_actnorm_initialized()
        stages = stgnf_stages(model)
    elif kind == 'MGENetRecognizer':
        model.guidance.set_actnorm_initialized()
        stages = mgenet_stages(model, args.scene_size or int(cfg.get('scene_size', 224)))
    else:
        raise ValueError(f'{args.config}: get_flops knows STGNFRecognizer and MGENetRecognizer, '
                         f'not {kind}')
    rows = count_stages(stages, table=args.table)
    print(f'{args.config}: {kind}, one window, random weights (1 FLOP = 1 multiply-add)')
    print(f'{"stage":<34} {"input shapes":<40} {"FLOPs":>12} {"params":>12}')
    for row in rows:
        shapes = ', '.join(str(s) for s in row['inputs'])
        if 'error' in row:
            print(f'{row["stage"]:<34} {shapes:<40} not traced: {row["error"]}')
            continue
        print(f'{row["stage"]:<34} {shapes:<40} {_human(row["flops"]):>12} '
              f'{_human(row["params"]):>12}')
        if row['table']:
            print(row['table'])
    counted = [row for row in rows if 'error' not in row]
    total = sum(row['flops'] for row in counted)
    print(f'{"total (traced stages)":<75} {_human(total):>12} '
          f'{_human(sum(p.numel() for p in model.parameters())):>12}')
    print('Please be cautious if you use the results in papers: check that every operator of '
          'the model is counted (--show-unsupported).')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
