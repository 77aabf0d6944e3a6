"""Run MGENet's frozen feature stages once over a split and store their outputs on disk.

For every window of the split, the frozen cube embedding F_B (``model.cube_embed``) turns the
person tube into (C, t, h, w) cube tokens; for every clip, the frozen scene encoder F_S
(``model.scene_encoder``) turns the scene image into a (C_s,) vector. Both are stored as float16
in a feature cache (layout, crash safety and checksums: ``mgenet_mm/datasets/feature_cache/``)
that ``LoadCachedFeatures`` reads during training and testing.

The tubes and scene images come from the split's own dataloader pipeline, packed and normalised
exactly as the model would receive them (the config's pack transform, then the model's data
preprocessor), so cached tokens equal what ``cube_embed`` computes on the fly.

Which config. Either an on-the-fly config (e.g. ``configs/mgenet/sht.py``; the cache goes to
``--out/<split>``, default ``work_dirs/features/<config name>/<split>``), or a config whose
pipelines read the cache (e.g. ``configs/mgenet/sht_cached.py``): its ``LoadCachedFeatures``
entries name the cache folder, the model config and the on-the-fly pipeline to extract with.

Restarting. A killed run resumes where it stopped: finished shards are kept (a restart checks
their headers and sizes), the partial one is redone. A cache built with another extractor config,
other weights, other windows or from other inputs (a pose file whose content changed, a video or
frame folder that changed: the manifest fingerprints them) is refused, naming what changed;
``--rebuild`` discards it, and also checks every shard's sha256 and rewrites the corrupt ones.
``--verify`` only checks (weights, index, inputs, every file's sha256) and lists what is wrong.
One extraction at a time per cache folder (a lock).

Random augmentations of tubes or scene images in the pipeline would be frozen into the cache as
one draw per window; the tool warns about ``Random*`` transforms that can change them.

Frozen parts without a ``Pretrained`` checkpoint are initialised randomly from ``--seed``: the
cache then matches a model only if that model gets the same weights (save them to a checkpoint
and point ``init_cfg`` at it).

Examples:
    python tools/data/extract_features.py configs/mgenet/sht_cached.py --split both
    python tools/data/extract_features.py configs/mgenet/sht.py --split train --out feats/sht
    python tools/data/extract_features.py configs/mgenet/sht_cached.py --split test --verify
"""
import argparse
import copy
import logging
import os.path as osp
import sys
import time
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mgenet_mm  # noqa: F401  shims + registration before configs are built
import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import FUNCTIONS, init_default_scope
from tqdm import tqdm

from mmaction.registry import DATASETS, MODELS
from mgenet_mm.utils import add_trust_argument, trust_from_args
from mgenet_mm.datasets.feature_cache import (
    FEATURE_NEUTRAL_TRANSFORMS, INDEX, FeatureCacheError, FeatureCacheWriter, WindowIndex,
    cache_checksum, extractor_config, transform_type, weights_checksum)
from mgenet_mm.datasets.feature_cache.checksums import (changed_inputs, check_recorded_files,
                                                       input_records, inputs_checksum,
                                                       stale_message)
from mgenet_mm.datasets.feature_cache.layout import read_manifest, write_manifest
from mgenet_mm.engine import NEW_KEY_PREFIX, merge_cfg_options
from mgenet_mm.models.frozen_parts import build_frozen_parts, random_frozen_parts
from mgenet_mm.preprocessing import DEFAULT_PREPROCESSOR

SPLITS = ('train', 'test', 'val')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Cache the frozen cube and scene features')
    parser.add_argument('config', help='an MGENet config (on the fly, or reading the cache)')
    parser.add_argument('--split', choices=SPLITS + ('both', ), default='both',
                        help='which dataloader to extract: train, test, val (e.g. of a '
                        'validation config) or both (train and test)')
    parser.add_argument('--out', help='cache root; each split goes to OUT/<split> (default: '
                        'the cache_dir of the config\'s LoadCachedFeatures, else '
                        'work_dirs/features/<config name>/<split>)')
    parser.add_argument('--batch-size', type=int, default=16, help='windows per forward pass')
    parser.add_argument('--num-workers', type=int, default=None,
                        help='dataloader workers (default: the config\'s)')
    parser.add_argument('--shard-size', type=int, default=1024, help='windows per shard file')
    parser.add_argument('--device', default=None, help='default: cuda when available, else cpu')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of frozen parts that have no Pretrained checkpoint')
    parser.add_argument('--rebuild', action='store_true',
                        help='discard a cache built differently, verify every shard and '
                        'rewrite the corrupt ones')
    parser.add_argument('--verify', action='store_true',
                        help='check weights, index and every file\'s sha256, list the bad ones '
                        '(exit 1 when any); with --rebuild, then rewrite them')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs; a key whose top-level '
                        'name is not in the config is refused unless marked as new with a '
                        f'leading {NEW_KEY_PREFIX}')
    add_trust_argument(parser)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- config
def _unwrap_dataset(dataset_cfg: dict) -> dict:
    """The innermost dataset config of wrappers such as RepeatDataset."""
    while 'pipeline' not in dataset_cfg and isinstance(dataset_cfg.get('dataset'), dict):
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def split_plan(cfg: Config, split: str, out: Optional[str]) -> Dict[str, Any]:
    """Dataset config, on-the-fly pipeline, model config and cache folder of one split."""
    loader_cfg = cfg.get(f'{split}_dataloader')
    if not loader_cfg:
        raise ValueError(f'{cfg.filename} has no {split}_dataloader')
    dataset_cfg = copy.deepcopy(_unwrap_dataset(loader_cfg['dataset']))
    pipeline = list(dataset_cfg.get('pipeline', []))
    readers = [t for t in pipeline if isinstance(t, dict) and t.get('type') == 'LoadCachedFeatures']
    config_name = osp.splitext(osp.basename(cfg.filename or 'config'))[0]
    if readers:
        reader = readers[0]
        if reader.get('pipeline_cfg') is None:
            raise ValueError(f'the {split} pipeline of {cfg.filename} reads a feature cache but '
                             'its LoadCachedFeatures has no pipeline_cfg (the on-the-fly '
                             'pipeline to extract with); give it, or pass the on-the-fly config')
        pipeline = list(reader['pipeline_cfg'])
        model_cfg = reader.get('model_cfg') or cfg.model
        default_dir = reader['cache_dir']
    else:
        model_cfg = cfg.model
        default_dir = osp.join('work_dirs', 'features', config_name, split)
    dataset_cfg['pipeline'] = pipeline
    return dict(
        dataset_cfg=dataset_cfg, pipeline=pipeline, model_cfg=model_cfg,
        cache_dir=osp.join(out, split) if out else default_dir,
        num_workers=loader_cfg.get('num_workers', 0),
        collate_cfg=copy.deepcopy(loader_cfg.get('collate_fn', dict(type='pseudo_collate'))))


def build_collate(collate_cfg: dict):
    collate_cfg = dict(collate_cfg)
    collate_type = collate_cfg.pop('type')
    if isinstance(collate_type, str):
        collate_type = FUNCTIONS.get(collate_type)
    return partial(collate_type, **collate_cfg)


# ----------------------------------------------------------------------------- model side
class FrozenExtractor:
    """The model's data preprocessor, cube embedding and scene encoder, with loaded weights.

    Built from the model config without the rest of the recognizer (the guidance flow and the
    trainable parts are neither built nor loaded).
    """

    def __init__(self, model_cfg: dict, device: str, seed: int) -> None:
        random_parts = random_frozen_parts(model_cfg)
        if random_parts:
            print_log(f'{random_parts} have no Pretrained checkpoint: random weights from seed '
                      f'{seed}; the cache matches a model only if it gets the same weights',
                      logger='current', level=logging.WARNING)
        self.device = torch.device(device)
        self.preprocessor = MODELS.build(
            copy.deepcopy(model_cfg.get('data_preprocessor') or DEFAULT_PREPROCESSOR)).to(
                self.device)
        self.modules: Dict[str, Optional[torch.nn.Module]] = build_frozen_parts(model_cfg, seed)
        for module in self.modules.values():
            if module is not None:
                module.to(self.device)
        if self.modules['cube_embed'] is None:
            raise ValueError('the model config has no cube_embed: there is nothing to cache')
        self.weights_checksum = weights_checksum(self.modules)

    @property
    def with_scene(self) -> bool:
        return self.modules['scene_encoder'] is not None

    @torch.no_grad()
    def __call__(self, data: dict, key: str) -> torch.Tensor:
        """Preprocess a collated batch like the model does, then run one frozen part.

        Args:
            data (dict): A collated batch (``inputs`` and ``data_samples``).
            key (str): ``'imgs'`` (cube tokens) or ``'scene'`` (scene features).

        Returns:
            Tensor: (B, C, t, h, w) tokens or (B, C_s) scene features, on the CPU.
        """
        data = self.preprocessor(data, training=False)
        inputs = data['inputs']
        if not isinstance(inputs, dict) or key not in inputs:
            found = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise KeyError(f'the pipeline packs no `{key}` input (found {found}); extract with '
                           'the on-the-fly pipeline (decoding, tube crop, scene image)')
        module = self.modules['cube_embed' if key == 'imgs' else 'scene_encoder']
        return module(inputs[key]).float().cpu()


# ----------------------------------------------------------------------------- data side
class _Windows(torch.utils.data.Dataset):
    """``dataset.prepare_data`` by position: no silent re-fetch of another window on None."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> dict:
        data = self.dataset.prepare_data(idx)
        if data is None:
            info = self.dataset.get_data_info(idx)
            raise RuntimeError(f'the pipeline dropped window {idx} (clip '
                               f'{info.get("clip_name")}, person {info.get("person_id")}, start '
                               f'{info.get("start_frame")}); a cache needs every window')
        return data


def _check_identity(data: dict, index: WindowIndex, windows: Sequence[int]) -> None:
    """Cross-check packed samples against the index when they carry their identity."""
    for sample, window in zip(data['data_samples'], windows):
        meta = getattr(sample, 'metainfo', {})
        if 'clip_name' in meta and 'start_frame' in meta and 'person_id' in meta:
            got = (str(meta['clip_name']), int(meta['person_id']), int(meta['start_frame']))
            if got != index.identity(window):
                raise RuntimeError(f'dataloader returned {got} for window {window}, expected '
                                   f'{index.identity(window)}')


def _loader(dataset: Any, batches: List[List[int]], plan: dict,
            num_workers: Optional[int]) -> torch.utils.data.DataLoader:
    workers = plan['num_workers'] if num_workers is None else num_workers
    return torch.utils.data.DataLoader(_Windows(dataset), batch_sampler=batches,
                                       num_workers=workers,
                                       collate_fn=build_collate(plan['collate_cfg']))


def _chunks(positions: Sequence[int], size: int) -> List[List[int]]:
    positions = [int(p) for p in positions]
    return [positions[i:i + size] for i in range(0, len(positions), size)]


def index_of(dataset: Any) -> WindowIndex:
    """The dataset's windows, without running ``get_data_info`` per window when possible."""
    if hasattr(dataset, 'window_keys'):  # MGENetWindowDataset
        return WindowIndex.from_windows(dataset.window_keys())
    data_list = getattr(dataset, 'data_list', None)
    if (not getattr(dataset, 'serialize_data', True) and data_list
            and all(k in data_list[0] for k in ('clip_name', 'person_id', 'start_frame'))):
        return WindowIndex.from_windows(
            (d['clip_name'], d['person_id'], d['start_frame']) for d in data_list)
    return WindowIndex.from_dataset(dataset)


def dataset_inputs(dataset: Any) -> Tuple[List[str], List[str]]:
    """The pose files and the frame sources (videos or frame folders) a dataset reads.

    Read from an initialised :class:`~mgenet_mm.datasets.MGENetWindowDataset` (its clips'
    ``filename`` / ``frame_dir`` and its pose files); other datasets give what they have.
    """
    poses = sorted(getattr(dataset, '_pose_paths', {}).values())
    frames = sorted({info.get('filename') or info.get('frame_dir')
                     for info in getattr(dataset, 'clip_infos', [])} - {None})
    if not poses or not frames:
        print_log(f'{type(dataset).__name__} does not say which pose files or frame sources it '
                  'reads: the cache cannot notice when they change', logger='current',
                  level=logging.WARNING)
    return poses, frames


# ----------------------------------------------------------------------------- per split
def verify_split(plan: dict, index: WindowIndex, checksum: str, weights: str,
                 inputs: Optional[dict] = None) -> List[str]:
    """Everything wrong with the split's cache, as readable lines (empty: all good).

    Args:
        plan (dict): :func:`split_plan`.
        index (WindowIndex): The dataset's windows now.
        checksum (str): The config checksum now.
        weights (str): The weights checksum now.
        inputs (dict, optional): ``input_records`` of the pose files and frame sources the
            dataset reads now; None skips the input check.
    """
    cache_dir = plan['cache_dir']
    try:
        manifest = read_manifest(cache_dir)
    except FeatureCacheError as error:
        return [str(error)]
    if manifest is None:
        return [f'no feature cache at {cache_dir}; build it with tools/data/extract_features.py']
    problems = []
    if not manifest.get('complete'):
        problems.append(f'incomplete: {len(manifest["shards"])} shards written (the extraction '
                        'was interrupted; rerun without --verify to finish it)')
    identity = manifest['identity']
    expected = dict(config_checksum=checksum, weights_checksum=weights,
                    index_sha256=index.content_sha256(), num_windows=index.num_windows)
    if inputs is not None:
        expected['inputs_sha256'] = inputs_checksum(inputs)
    for key, value in expected.items():
        if identity.get(key) != value:
            problems.append(f'{key}: cache {identity.get(key)}, config {value}')
    if inputs is not None:
        for path, why in changed_inputs(manifest.get('inputs') or {}, list(inputs['poses']),
                                        list(inputs['frames'])).items():
            problems.append(f'stale input {path}: {why}')
    index_path = osp.join(cache_dir, INDEX)
    try:
        on_disk = WindowIndex.load(index_path).content_sha256()
    except Exception as error:  # noqa: BLE001  any unreadable index is corruption
        on_disk = f'unreadable ({error})'
    if on_disk != identity.get('index_sha256'):
        problems.append(f'bad file {index_path}: does not match its manifest')
    for name, problem in check_recorded_files(cache_dir, manifest, full=True).items():
        problems.append(f'bad file {osp.join(cache_dir, name)}: {problem}')
    return problems


def refuse_stale_inputs(cache_dir: str, inputs: dict) -> None:
    """Before a (resumed) extraction: refuse a cache whose inputs changed, naming them.

    The writer would refuse it too (its identity holds ``inputs_sha256``) but could not say
    which file changed.

    Raises:
        FeatureCacheError: The existing cache was built from other inputs.
    """
    manifest = read_manifest(cache_dir)
    if manifest is None or not manifest.get('inputs'):
        return
    changes = changed_inputs(manifest['inputs'], list(inputs['poses']), list(inputs['frames']))
    if changes:
        raise FeatureCacheError(stale_message(cache_dir, changes) + ' (or rerun with --rebuild '
                                'to discard it)')


def extract_split(cfg: Config, split: str, args: argparse.Namespace) -> int:
    """Create, resume, verify or repair the cache of one split; returns an exit status."""
    plan = split_plan(cfg, split, args.out)
    cache_dir = plan['cache_dir']
    random_steps = [transform_type(t) for t in plan['pipeline']
                    if transform_type(t).startswith('Random')
                    and transform_type(t) not in FEATURE_NEUTRAL_TRANSFORMS]
    if random_steps:
        print_log(f'[{split}] {random_steps} draw at random: the cache keeps one draw per window',
                  logger='current', level=logging.WARNING)
    checksum = cache_checksum(plan['model_cfg'], plan['pipeline'])
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    extractor = FrozenExtractor(plan['model_cfg'], device, args.seed)

    dataset = DATASETS.build(plan['dataset_cfg'])
    dataset.full_init()
    index = index_of(dataset)
    inputs = input_records(*dataset_inputs(dataset))  # hashes every pose file once
    per_window = index.nbytes / max(index.num_windows, 1)
    print_log(f'[{split}] {index.num_windows} windows of {len(index.clip_names)} clips -> '
              f'{cache_dir} (config checksum {checksum[:12]}, weights '
              f'{extractor.weights_checksum[:12]}, index {per_window:.0f} bytes/window)',
              logger='current')

    if args.verify:
        problems = verify_split(plan, index, checksum, extractor.weights_checksum, inputs)
        # a report, printed plainly so that it can be read and grepped
        for line in problems:
            print(f'[{split}] {line}')
        if not problems:
            print(f'[{split}] {cache_dir}: weights, index and every file match the manifest')
        if not args.rebuild:
            return 1 if problems else 0

    if not args.rebuild:
        refuse_stale_inputs(cache_dir, inputs)
    writer = FeatureCacheWriter(cache_dir, shard_size=args.shard_size)
    try:
        identity = dict(config_checksum=checksum, weights_checksum=extractor.weights_checksum,
                        seg_len=int(getattr(dataset, 'seg_len', 0)), split=split,
                        inputs_sha256=inputs_checksum(inputs))
        extractor_cfg = extractor_config(plan['model_cfg'], plan['pipeline'])
        discarded = writer.open(index, identity, extractor_cfg, rebuild=args.rebuild)
        if writer.manifest.get('inputs') != inputs:
            # the fingerprints the reader checks (mtimes may move while the content stays)
            writer.manifest['inputs'] = inputs
            write_manifest(cache_dir, writer.manifest)
        if discarded:
            print_log(f'[{split}] discarded a cache built differently: {discarded}',
                      logger='current', level=logging.WARNING)
        problems = writer.check_files(full=args.rebuild)
        if problems and not args.rebuild:
            raise FeatureCacheError(
                f'corrupt files in {cache_dir}: ' +
                '; '.join(f'{name} ({why})' for name, why in problems.items()) +
                '; rerun with --rebuild to rewrite them')
        if problems:
            print_log(f'[{split}] rewriting {sorted(problems)}', logger='current',
                      level=logging.WARNING)
            writer.discard(problems)

        if extractor.with_scene and writer.scene_pending:
            _extract_scene(writer, dataset, index, extractor, plan, args)
        pending = writer.pending_shards()
        if pending:
            _extract_tokens(writer, dataset, index, extractor, plan, args, pending, split)
        else:
            print_log(f'[{split}] every shard is already extracted', logger='current')
        writer.finish(with_scene=extractor.with_scene)
    finally:
        writer.close()
    print_log(f'[{split}] feature cache complete: {cache_dir}', logger='current')
    return 0


def _extract_scene(writer: FeatureCacheWriter, dataset: Any, index: WindowIndex,
                   extractor: FrozenExtractor, plan: dict, args: argparse.Namespace) -> None:
    """One scene vector per clip, from the clip's first window (the scene is per clip)."""
    first = index.first_window_of_clips()
    batches = _chunks(first, args.batch_size)
    feats = []
    bar = tqdm(total=len(first), unit='clip', desc='scene features', dynamic_ncols=True)
    for windows, data in zip(batches, _loader(dataset, batches, plan, args.num_workers)):
        _check_identity(data, index, windows)
        feats.append(extractor(data, 'scene'))  # (B, C_s)
        bar.update(len(windows))
    bar.close()
    writer.write_scene(torch.cat(feats).numpy())


def _extract_tokens(writer: FeatureCacheWriter, dataset: Any, index: WindowIndex,
                    extractor: FrozenExtractor, plan: dict, args: argparse.Namespace,
                    pending: List[int], split: str) -> None:
    """Fill the pending shards; each is committed (renamed, recorded) as soon as it is full."""
    # Batches never straddle two shards, so each batch lands in one shard at a known offset.
    batches: List[List[int]] = []
    places: List[Tuple[int, int, bool]] = []  # (shard, offset, last batch of the shard)
    for shard in pending:
        chunks = _chunks(writer.shard_windows(shard), args.batch_size)
        offset = 0
        for i, chunk in enumerate(chunks):
            batches.append(chunk)
            places.append((shard, offset, i == len(chunks) - 1))
            offset += len(chunk)
    total = sum(len(b) for b in batches)
    print_log(f'[{split}] {len(pending)} of {writer.num_shards} shards to extract '
              f'({total} windows)', logger='current')
    bar = tqdm(total=total, unit='win', desc=f'{split} cube tokens', dynamic_ncols=True)
    started = time.perf_counter()
    shard_writer = None
    try:
        for (shard, offset, last), windows, data in zip(
                places, batches, _loader(dataset, batches, plan, args.num_workers)):
            _check_identity(data, index, windows)
            if shard_writer is None:
                shard_writer = writer.shard(shard)
            shard_writer.write(offset, extractor(data, 'imgs'))  # (B, C, t, h, w)
            bar.update(len(windows))
            if last:
                shard_writer.commit()
                shard_writer = None
    except BaseException:
        if shard_writer is not None:
            shard_writer.abort()
        raise
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    print_log(f'[{split}] {total} windows in {elapsed:.1f} s ({total / max(elapsed, 1e-9):.1f} '
              'windows/s)', logger='current')


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)  # a misspelt top-level key is refused
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    splits = ('train', 'test') if args.split == 'both' else (args.split, )
    status = 0
    with trust_from_args(args):
        for split in splits:
            status = max(status, extract_split(cfg, split, args))
    return status


if __name__ == '__main__':
    sys.exit(main())
