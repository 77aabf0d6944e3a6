"""Level diagnostics of a trained MGENet: how its memories address, how spread its features are.

Runs the forward of a checkpoint's levels on random windows of a split and reports (maths in
:mod:`mgenet_mm.models.utils.addressing_stats`):

- level 1: R^2 of the RGB student's f_rgb for the flow's f_sk over the windows (0: it predicts
  no more than their mean), the mean norms of both, the eigenvalue range of the covariance of
  the gap f_sk - f_rgb over the frames (a wide range is what ``motion_whitening`` corrects), and
  whether S_mo is whitened;

- behaviour memory W_b (eq. 7, one row per token) and scene memory W_s (one row per window):
  mean max weight against the uniform 1/N, entropy / log N, item usage (items that are the
  argmax of at least one row, and the share of rows of the most chosen item), and the mean
  cosine between the flattened weights of different windows;
- the BSMM read (eq. 10) C_b and C_s over its filled items: the same statistics;
- f_u (teacher) and f_m (mask encoder, under each of the two complementary test masks): the mean
  cosine between different windows (their spread) and the mean cosine of f_u with f_m of the
  same window; for f_u also the mean per-dimension standard deviation of the unit f_u across
  windows against its value 1/sqrt(D) for evenly spread directions (a collapsed target: 0),
  and the head that gives f_u (``appearance_head_sharing``);
- each anomaly component (mo, app, mm) the model attaches to the windows: min, median, max, IQR;
- with ``imgs`` inputs and a ``cube_embed`` (not from a feature cache), the mask leak: the cube
  tokens of the clips masked in pixels by each test mask against the unmasked clip's tokens, at
  the visible and at the masked positions (mean relative change ||x_m - x|| / ||x|| and mean
  cosine). A visible change above 0 is content of the masked blocks that the frozen stage mixes
  into visible tokens, which ``mask_input='tokens'`` leaves in and ``'pixels'`` removes.

The tensors are computed by :func:`level_tensors`, which calls the model's own parts in the
order ``MGENetRecognizer.anomaly_components`` does (tests check that they reproduce its S_app
and S_mm); the components themselves are the model's. W_s and C_s repeat within a clip (one
scene feature per clip), so their window cosine counts same-clip pairs as 1.

Example:
    python tools/analysis/level_diagnostics.py configs/mgenet/demo_cached.py \\
        work_dirs/demo/mgenet/epoch_10.pth --split test --out work_dirs/demo/levels.json
"""
import argparse
import copy
import json
import os.path as osp
import sys
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mgenet_mm  # noqa: F401  shims + registration before configs are built
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.registry import FUNCTIONS, init_default_scope
from torch import Tensor

from mmaction.registry import DATASETS, MODELS, TRANSFORMS
from mgenet_mm.apis.inference import InferenceError, init_model
from mgenet_mm.datasets.feature_cache import FeatureCacheError
from mgenet_mm.engine import merge_cfg_options
from mgenet_mm.fileio import atomic_write_bytes
from mgenet_mm.models.modules.masking import mask_pixels
from mgenet_mm.models.recognizers import MGENetRecognizer
from mgenet_mm.models.utils.addressing_stats import (addressing_stats, explained_variance,
                                                     frame_covariance_eigenvalues,
                                                     mean_dimension_std,
                                                     mean_paired_cosine, mean_pairwise_cosine,
                                                     summary_stats)
from mgenet_mm.models.utils.checkpoint import strip_wrapper_prefix
from mgenet_mm.utils import (UntrustedCheckpointError, add_trust_argument,
                             load_checkpoint_file, trust_from_args)

SPLITS = ('test', 'val', 'train')
#: The addressing weights reported, in table order, with their label.
ADDRESSING = (('w_b', 'W_b behaviour mem. (eq. 7)'), ('w_g', 'W_g guidance mem. (f_sk)'),
              ('w_s', 'W_s scene memory (eq. 7)'),
              ('c_b', 'C_b BSMM read (eq. 10)'), ('c_s', 'C_s BSMM read (eq. 10)'))


class DiagnosticsError(ValueError):
    """A config, checkpoint or cache the diagnostics cannot run on, with the reason."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Addressing and feature statistics of the '
                                     'MGENet levels on random windows of a split')
    parser.add_argument('config', help='an MGENet config (e.g. configs/mgenet/demo_cached.py)')
    parser.add_argument('checkpoint', help='an MGENet checkpoint (after the BSMM write pass)')
    parser.add_argument('--split', choices=SPLITS, default='test',
                        help="the windows of the config's <split>_dataloader")
    parser.add_argument('--max-windows', type=int, default=256,
                        help='random windows to diagnose (0: all; all their weights are held '
                        'in memory)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the window draw')
    parser.add_argument('--batch-size', type=int, default=32, help='windows per forward pass')
    parser.add_argument('--device', default=None, help='default: cuda when available, else cpu')
    parser.add_argument('--out', help='write the statistics as JSON here')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs, as tools/test.py takes them')
    add_trust_argument(parser)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- loading
def check_config(cfg: Config, config_path: str) -> None:
    """Refuse configs whose model has no levels 2 and 3 (e.g. an STG-NF config)."""
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model_type = cfg.get('model', {}).get('type')
    model_class = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    if not (isinstance(model_class, type) and issubclass(model_class, MGENetRecognizer)):
        raise DiagnosticsError(
            f'{config_path} builds model type {model_type}, not an MGENetRecognizer: it has no '
            'behaviour memory, appearance level or BSMM to diagnose; pass an MGENet config '
            '(e.g. configs/mgenet/demo_cached.py)')


def describe_foreign_checkpoint(checkpoint: str) -> Optional[str]:
    """Why ``checkpoint`` is not an MGENet checkpoint, when it can be told (else None)."""
    try:
        state = load_checkpoint_file(checkpoint, map_location='cpu')
    except (OSError, RuntimeError, UntrustedCheckpointError):
        return None
    state_dict = state.get('state_dict', state) if isinstance(state, dict) else {}
    keys = list(strip_wrapper_prefix(state_dict))
    saved_cfg = str(state.get('meta', {}).get('cfg', '')) if isinstance(state, dict) else ''
    if keys and not any(k.startswith('behaviour_memory.') for k in keys) and (
            all(k.startswith('backbone.') for k in keys) or 'STGNFRecognizer' in saved_cfg):
        return (f'{checkpoint} is an STG-NF checkpoint (only the flow\'s backbone.* weights, no '
                'behaviour memory): the level diagnostics need a trained MGENet checkpoint; an '
                'STG-NF checkpoint is the guidance network, set it with '
                '--cfg-options model.guidance.init_cfg.checkpoint=...')
    return None


def load_model(config: str, checkpoint: str, device: str,
               cfg_options: Optional[dict]) -> MGENetRecognizer:
    """The config's MGENet with the checkpoint's weights, in eval mode (the trust policy of
    :func:`mgenet_mm.apis.init_model` applies)."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg = merge_cfg_options(cfg, cfg_options)
    check_config(cfg, config)
    try:
        return init_model(cfg, checkpoint, device=device)
    except InferenceError as error:
        reason = describe_foreign_checkpoint(checkpoint)
        if reason is not None:
            raise DiagnosticsError(reason) from None
        raise DiagnosticsError(str(error)) from None


def _unwrap_dataset(dataset_cfg: dict) -> dict:
    """The innermost dataset config of wrappers such as RepeatDataset (windows once each)."""
    while 'pipeline' not in dataset_cfg and isinstance(dataset_cfg.get('dataset'), dict):
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def split_loader_cfg(cfg: Config, split: str) -> dict:
    """The ``<split>_dataloader`` config, with its cache checked to exist before any parsing."""
    loader_cfg = cfg.get(f'{split}_dataloader')
    if not loader_cfg:
        raise DiagnosticsError(f'{cfg.filename} has no {split}_dataloader')
    dataset_cfg = _unwrap_dataset(loader_cfg['dataset'])
    for step in dataset_cfg.get('pipeline', []):
        if isinstance(step, dict) and step.get('type') == 'LoadCachedFeatures':
            try:
                # the transform's own reader: also refuses a cache of another extractor config
                TRANSFORMS.build(copy.deepcopy(step)).reader.manifest
            except FeatureCacheError as error:
                raise DiagnosticsError(
                    f'{error}\n(the {split} split of {cfg.filename} reads its features '
                    f'there: python tools/data/extract_features.py {cfg.filename} --split '
                    f'{split})') from None
    return loader_cfg


def sample_windows(num_windows: int, max_windows: int, seed: int) -> np.ndarray:
    """Sorted indices of ``max_windows`` windows drawn without replacement (all when 0 or
    when there are fewer)."""
    if max_windows <= 0 or max_windows >= num_windows:
        return np.arange(num_windows)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_windows, size=max_windows, replace=False))


def _collate_fn(loader_cfg: dict):
    collate_cfg = dict(loader_cfg.get('collate_fn', dict(type='pseudo_collate')))
    collate_type = collate_cfg.pop('type')
    if isinstance(collate_type, str):
        collate_type = FUNCTIONS.get(collate_type)
    return partial(collate_type, **collate_cfg)


# ----------------------------------------------------------------------------- forward
def token_change(unmasked: Tensor, masked: Tensor, positions: Tensor) -> Tuple[Tensor, Tensor]:
    """How much the tokens at ``positions`` moved, per window.

    Args:
        unmasked (Tensor): Tokens of the clips (B, C, t, h, w).
        masked (Tensor): Tokens of the masked clips, the same shape.
        positions (Tensor): (B, t*h*w) bool, the tokens to compare (at least one per window).

    Returns:
        tuple[Tensor, Tensor]: (B,) the mean over those tokens of ||masked - unmasked|| /
        ||unmasked||, and (B,) their mean cosine.
    """
    # (B, C, t, h, w) -> (B, P, C)
    before, after = (x.flatten(2).transpose(1, 2) for x in (unmasked, masked))
    change = (torch.linalg.vector_norm(after - before, dim=2) /
              torch.linalg.vector_norm(before, dim=2).clamp_min(1e-12))  # (B, P)
    cosine = F.cosine_similarity(after, before, dim=2)  # (B, P)
    weight = positions.to(change.dtype)
    count = weight.sum(dim=1)
    return (change * weight).sum(dim=1) / count, (cosine * weight).sum(dim=1) / count


def mask_leak(model: MGENetRecognizer, imgs: Tensor) -> Dict[str, Tensor]:
    """The mask leak of the frozen cube embedding under the test mask pair.

    Returns:
        dict[str, Tensor]: ``leak_visible_change``, ``leak_visible_cosine``,
        ``leak_masked_change``, ``leak_masked_cosine``, each (B,), the mean of
        :func:`token_change` over the two complementary test masks.
    """
    unmasked = model.cube_embed(imgs)  # (B, C_in, t, h, w)
    out: Dict[str, Tensor] = {}
    for mask in model.test_mask_pair(imgs.shape[0], imgs.device):
        masked = model.cube_embed(mask_pixels(imgs, mask, model.token_grid))
        for name, positions in (('visible', ~mask), ('masked', mask)):
            change, cosine = token_change(unmasked, masked, positions)
            for key, value in ((f'leak_{name}_change', change), (f'leak_{name}_cosine', cosine)):
                out[key] = out.get(key, 0) + value / 2
    return out


@torch.no_grad()
def level_tensors(model: MGENetRecognizer, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The level-2/3 tensors of a batch, computed as ``anomaly_components`` computes them.

    Returns:
        dict[str, Tensor]: ``f_rgb``, ``f_sk`` (B, T, C_mo) of level 1; ``w_b`` (B, P, N_b); with ``bsmm_behaviour='guidance'`` ``w_g``
        (B, T, N_g), the behaviour half the BSMM reads; with a scene memory ``w_s`` (B, 1, N_s); with
        level 2 ``f_u`` and ``f_m1``, ``f_m2`` (f_m under the test mask ``mask1`` and its
        complement ``mask2``, each (B, P) bool, shaped as f_u); once the BSMM is written
        ``c_b``, ``c_s`` (B, N_filled), its matching weights over the filled items only (empty
        ones take no part in its softmax).
    """
    tokens = model._tokens(inputs)  # (B, C_in, t, h, w)
    e_b = model.backbone(tokens)  # (B, P, C_b)
    level1 = dict(f_rgb=model.motion_head(e_b, model.token_grid),  # (B, T, C_mo)
                  f_sk=model.guidance_features(inputs['pose']))  # (B, T, C_mo)
    if model.with_appearance:
        f_u, w_b = model.appearance_target(e_b)
        # The test mask pair of anomaly_components
        mask, complement = model.test_mask_pair(tokens.shape[0], tokens.device)  # (B, P) each
        out = dict(w_b=w_b, f_u=f_u, mask1=mask, mask2=complement,
                   f_m1=model.masked_features(inputs, tokens, mask),
                   f_m2=model.masked_features(inputs, tokens, complement))
        if model.cube_embed is not None and 'imgs' in inputs:
            out.update(mask_leak(model, inputs['imgs']))
    else:
        out = dict(w_b=model.behaviour_memory.address(e_b))
    if model.scene_memory is not None:
        w_s = model.scene_memory.address(model._scene(inputs)[:, None])  # (B, 1, N_s)
        out['w_s'] = w_s
        if model.bsmm is not None and model.bsmm.is_written:
            f_sk = (model.guidance_features(inputs['pose'])
                    if model.guidance_memory is not None else None)
            w_behaviour = model.bsmm_behaviour_weights(e_b, f_sk, out['w_b'])
            if model.guidance_memory is not None:
                out['w_g'] = w_behaviour
            c_b, c_s = model.bsmm.matching_weights(w_behaviour, w_s)  # (B, N_r) each
            filled = model.bsmm.filled
            out['c_b'], out['c_s'] = c_b[:, filled], c_s[:, filled]
    out.update(level1)
    return out


def collect(model: MGENetRecognizer, dataset: Any, indices: Sequence[int], collate,
            batch_size: int) -> Dict[str, Tensor]:
    """:func:`level_tensors` and the anomaly components (``S_<name>``) of the chosen windows,
    concatenated over batches, on the CPU."""
    parts: Dict[str, List[Tensor]] = {}
    for start in range(0, len(indices), batch_size):
        batch = collate([dataset[int(i)] for i in indices[start:start + batch_size]])
        inputs = model.data_preprocessor(batch, False)['inputs']
        tensors = level_tensors(model, inputs)
        tensors.update({f'S_{name}': value
                        for name, value in model.anomaly_components(inputs).items()})
        for name, value in tensors.items():
            parts.setdefault(name, []).append(value.float().cpu())
    return {name: torch.cat(values) for name, values in parts.items()}


# ----------------------------------------------------------------------------- report
def _temperature(module: Any) -> Optional[float]:
    value = getattr(module, 'temperature', None)
    return None if value is None else float(value)


def diagnostics(model: MGENetRecognizer, tensors: Dict[str, Tensor]) -> Dict[str, Any]:
    """The statistics of :func:`collect`'s tensors, as a JSON-ready dict."""
    owners = dict(w_b=model.behaviour_memory, w_g=model.guidance_memory,
                  w_s=model.scene_memory, c_b=model.bsmm, c_s=model.bsmm)
    addressing = {}
    for key, _ in ADDRESSING:
        if key in tensors:
            addressing[key] = dict(addressing_stats(tensors[key]),
                                   temperature=_temperature(owners[key]))
    features = {}
    if 'f_u' in tensors:
        f_u, passes = tensors['f_u'], (tensors['f_m1'], tensors['f_m2'])
        # f_m: the mean over the two complementary test masks
        features = dict(
            f_u_window_cosine=mean_pairwise_cosine(f_u),
            f_u_dim_std=mean_dimension_std(f_u),
            f_u_dim_std_spread=float(f_u[0].numel()) ** -0.5,
            f_m_window_cosine=sum(mean_pairwise_cosine(f_m) for f_m in passes) / 2,
            f_u_f_m_cosine=sum(mean_paired_cosine(f_u, f_m) for f_m in passes) / 2,
            feature_shape=list(f_u.shape[1:]),
            head_sharing=getattr(model, 'appearance_head_sharing', 'separate'),
            mask_input=getattr(model, 'mask_input', 'tokens'))
        if 'leak_visible_change' in tensors:
            features['mask_leak'] = {key[5:]: float(tensors[key].mean()) for key in tensors
                                     if key.startswith('leak_')}
    f_sk, f_rgb = tensors['f_sk'], tensors['f_rgb']
    gap = f_sk - f_rgb  # (B, T, C_mo)
    eigenvalues = frame_covariance_eigenvalues(gap)
    level1 = dict(f_rgb_r2=explained_variance(f_sk, f_rgb),
                  f_sk_norm=float(f_sk.double().flatten(1).norm(dim=1).mean()),
                  f_rgb_norm=float(f_rgb.double().flatten(1).norm(dim=1).mean()),
                  gap_eigenvalue_min=float(eigenvalues[0]),
                  gap_eigenvalue_max=float(eigenvalues[-1]),
                  whitened=bool(model.motion_whitening is not None and
                                model.motion_whitening.is_fitted))
    components = {name[2:]: summary_stats(value) for name, value in tensors.items()
                  if name.startswith('S_')}
    notes = []
    if not model.with_appearance:
        notes.append('no level 2 in this config (no mask_encoder): f_u / f_m not reported')
    if model.scene_memory is None:
        notes.append('no scene memory in this config: W_s, C_b, C_s not reported')
    elif model.bsmm is None:
        notes.append('no BSMM in this config: C_b, C_s and S_mm not reported')
    elif not model.bsmm.is_written:
        notes.append('the BSMM of this checkpoint is not written yet (checkpoint from before '
                     'the write pass): C_b, C_s and S_mm not reported')
    return dict(addressing=addressing, level1=level1, features=features, components=components,
                notes=notes)


def format_report(report: Dict[str, Any]) -> str:
    """The human-readable table of a :func:`diagnostics` report (with its header fields)."""
    lines = [f'{report["config"]}  {report["checkpoint"]}',
             f'split {report["split"]}: {report["num_windows"]} of {report["num_available"]} '
             f'windows (seed {report["seed"]}), {report["num_clips"]} clips', '']
    head = (f'{"addressing":28s}{"items":>6s}{"temp":>7s}{"uniform":>9s}{"max w":>9s}'
            f'{"entropy":>9s}{"usage":>7s}{"top":>7s}{"win cos":>9s}')
    lines += [head, '-' * len(head)]
    labels = dict(ADDRESSING)
    for key, stats in report['addressing'].items():
        temperature = '-' if stats['temperature'] is None else f'{stats["temperature"]:g}'
        lines.append(f'{labels[key]:28s}{stats["num_items"]:6d}{temperature:>7s}'
                     f'{stats["uniform_weight"]:9.4f}{stats["mean_max_weight"]:9.4f}'
                     f'{stats["normalised_entropy"]:9.4f}{stats["item_usage"]:7.2f}'
                     f'{stats["top_item_share"]:7.2f}{stats["window_cosine"]:9.4f}')
    lines += ['', 'max w: mean largest weight of a row (W_b: a token, else a window); entropy: '
              'over log N;', 'usage: items that are the argmax of a row; top: share of rows on '
              'the most chosen item;', 'win cos: mean cosine between the weights of different '
              'windows']
    level1 = report['level1']
    lines += ['', f'level 1: R^2 of f_rgb for f_sk {level1["f_rgb_r2"]:.4f}; mean |f_sk| '
              f'{level1["f_sk_norm"]:.4g}, |f_rgb| {level1["f_rgb_norm"]:.4g}',
              f'  covariance of the gap f_sk - f_rgb per frame: eigenvalues '
              f'{level1["gap_eigenvalue_min"]:.3g} to {level1["gap_eigenvalue_max"]:.3g}; S_mo '
              + ('whitened (motion_whitening fitted)' if level1['whitened'] else 'by eq. 13')]
    features = report['features']
    if features:
        rows = (('f_u spread: mean cos between windows', 'f_u_window_cosine'),
                ('f_u spread: mean std per dim (unit f_u)', 'f_u_dim_std'),
                ('  the same for evenly spread f_u', 'f_u_dim_std_spread'),
                ('f_m spread: mean cos between windows', 'f_m_window_cosine'),
                ('cos(f_u, f_m) of a window, both masks', 'f_u_f_m_cosine'))
        lines += ['', f'appearance features, {tuple(features["feature_shape"])} per window, '
                  f'f_u from the {features["head_sharing"]} head']
        lines += [f'  {label:40s}{features[key]:9.4f}' for label, key in rows]
        leak = features.get('mask_leak')
        if leak:
            lines += ['', f'mask leak of cube_embed (test masks in pixels; mask_input '
                      f'{features["mask_input"]!r}): token change, cosine']
            lines += [f'  {where:40s}{leak[where + "_change"]:9.4f}{leak[where + "_cosine"]:9.4f}'
                      for where in ('visible', 'masked')]
    if report['components']:
        head = f'{"component":12s}{"min":>12s}{"median":>12s}{"max":>12s}{"IQR":>12s}'
        lines += ['', head, '-' * len(head)]
        for name, stats in report['components'].items():
            lines.append(f'{"S_" + name:12s}' + ''.join(
                f'{stats[k]:12.5g}' for k in ('min', 'median', 'max', 'iqr')))
    lines += [''] + [f'note: {note}' for note in report['notes']]
    return '\n'.join(lines).rstrip() + '\n'


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Load, sample, forward and summarise; returns the report."""
    if args.max_windows == 1:
        raise DiagnosticsError('--max-windows must be 0 (all) or at least 2: the window '
                               'cosines compare pairs of windows')
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = load_model(args.config, args.checkpoint, device, args.cfg_options)
    loader_cfg = split_loader_cfg(model.cfg, args.split)
    dataset = DATASETS.build(copy.deepcopy(_unwrap_dataset(loader_cfg['dataset'])))
    indices = sample_windows(len(dataset), args.max_windows, args.seed)
    if len(indices) < 2:
        raise DiagnosticsError(f'the {args.split} split has {len(indices)} window(s); the '
                               'diagnostics compare pairs of windows')
    tensors = collect(model, dataset, indices, _collate_fn(loader_cfg), args.batch_size)
    infos = [dataset.get_data_info(int(i)) for i in indices]
    report = dict(config=args.config, checkpoint=args.checkpoint, split=args.split,
                  num_windows=len(indices), num_available=len(dataset), seed=args.seed,
                  num_clips=len({info['clip_name'] for info in infos}))
    report.update(diagnostics(model, tensors))
    report['windows'] = [[info['clip_name'], int(info['person_id']), int(info['start_frame'])]
                         for info in infos]
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        with trust_from_args(args):
            report = run(args)
    except (DiagnosticsError, FeatureCacheError, FileNotFoundError,
            UntrustedCheckpointError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(format_report(report), end='')
    if args.out:
        text = json.dumps(report, indent=2).encode()
        atomic_write_bytes(args.out, lambda f: f.write(text))
    return 0


if __name__ == '__main__':
    sys.exit(main())
