"""Throughput of MGENet's input side on a real clip: on the fly versus the feature cache.

On the real surveillance clip ``vtest.avi`` (768x576, 795 frames) with a generated tracked-pose
file (``--persons`` people walking across the scene), this times, per window of T frames:

(a) decoding the window's frames and cutting the person tube and scene image (the config's
    on-the-fly train pipeline: ``WindowFrameIndices``, decord, ``PersonTubeCrop``,
    ``SceneImage``, pose normalisation, packing), windows in shuffled order as in training;
(b) the frozen stages on the fly, as the recognizer runs them on every batch: the cube
    embedding (Video Swin stages 1-2) on the tubes, and the scene encoder (ResNet-50) on every
    window's scene image;
(c) reading the same windows from a feature cache written in the extractor's format
    (``LoadCachedFeatures`` + pose normalisation + packing), first with each shard's sha256
    checked on first open, then warm;
(d) unless ``--no-train-step``, one training step of the trainable parts (cached inputs),
    which both ways of training pay.

It prints windows/s, the peak resident memory (``getrusage``), the input-side speed-up
((a) + (b)) / (c), and the resulting ratio of a training epoch on the fly versus from the
cache, ((a) + (b) + (d)) / ((c) + (d)), all on one process (workers would overlap (a) or (c)
with compute on machines with cores to spare). It also reports the window index's memory per
window. Weights are random (the cost does not depend on them).

Example:
    python tools/analysis/benchmark_data.py --windows 64 --batch-size 8
"""
import argparse
import json
import os
import os.path as osp
import resource
import tempfile
import time
from typing import Dict, List, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401
from mmaction.registry import DATASETS, MODELS
from mgenet_mm.datasets.feature_cache import (FeatureCacheWriter,
                                          WindowIndex)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_VIDEO = osp.join(REPO, '..', 'shared', 'fixtures', 'real_video', 'vtest.avi')
COCO_BODY = np.array([  # a standing person in a unit box (x right, y down), COCO-17 order
    [.5, .08], [.55, .06], [.45, .06], [.6, .08], [.4, .08], [.7, .22], [.3, .22], [.78, .4],
    [.22, .4], [.8, .55], [.2, .55], [.62, .55], [.38, .55], [.62, .77], [.38, .77], [.62, .98],
    [.38, .98]])


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_sample(video: str, root: str, persons: int, seed: int) -> str:
    """``root/videos/<clip>.avi`` (a link to ``video``) and its tracked-pose JSON."""
    import cv2
    capture = cv2.VideoCapture(video)
    if not capture.isOpened():
        raise FileNotFoundError(f'cannot open {video}')
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    capture.release()
    clip = osp.splitext(osp.basename(video))[0]
    os.makedirs(osp.join(root, 'videos'))
    os.makedirs(osp.join(root, 'pose'))
    os.symlink(osp.abspath(video), osp.join(root, 'videos', clip + osp.splitext(video)[1]))
    rng = np.random.default_rng(seed)
    tracks = {}
    for person in range(1, persons + 1):
        box_h = rng.uniform(80, 140)
        start = rng.uniform([0, 100], [width - box_h / 2, height - box_h])
        end = rng.uniform([0, 100], [width - box_h / 2, height - box_h])
        track = {}
        for frame in range(frames):
            x, y = start + (end - start) * frame / (frames - 1)
            xy = COCO_BODY * [box_h / 2, box_h] + [x, y] + rng.normal(0, 1.5, (17, 2))
            keypoints = np.concatenate([xy, np.full((17, 1), 0.9)], axis=1)
            track[f'{frame:04d}'] = dict(keypoints=keypoints.round(2).ravel().tolist(),
                                         scores=0.9)
        tracks[str(person)] = track
    with open(osp.join(root, 'pose', f'{clip}_alphapose_tracked_person.json'), 'w') as f:
        json.dump(tracks, f)
    return clip


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def sample_dataset(root: str, seg_len: int, pipeline: List[dict]):
    """The windows of the sample written by :func:`make_sample` under ``root`` (stride 6, as
    in training), through ``pipeline``; also returns the dataset config without pipeline."""
    dataset_cfg = dict(type='MGENetWindowDataset', layout='own', data_root=root,
                       pose_dir='pose', video_dir='videos', seg_len=seg_len, stride=6)
    return DATASETS.build(dict(dataset_cfg, pipeline=pipeline)), dataset_cfg


def load_windows(dataset, order) -> Tuple[float, List[dict]]:
    """Load ``dataset[i]`` for every ``i`` of ``order``: (windows/s, the items)."""
    items: List[dict] = []
    seconds = timed(lambda: items.extend(dataset[int(i)] for i in order))
    return len(order) / seconds, items


def write_feature_cache(cache_dir: str, keys: List, tokens: np.ndarray, scene: np.ndarray,
                        seg_len: int) -> None:
    """A feature cache in the extractor's format holding ``tokens`` (n, C, t, h, w) for the
    windows ``keys`` (in that order) and one scene feature row."""
    index = WindowIndex.from_windows(keys)
    writer = FeatureCacheWriter(cache_dir, shard_size=max(len(keys) // 4, 1))
    writer.open(index, dict(config_checksum='benchmark', weights_checksum='random',
                            seg_len=seg_len), {})
    for shard in writer.pending_shards():
        rows = writer.shard_windows(shard)
        with writer.shard(shard) as out:
            out.write(0, tokens[rows.start:rows.stop])
    writer.write_scene(scene)
    writer.finish(with_scene=True)


def cached_pipeline(cache_dir: str, fly_pipeline: List[dict]) -> List[dict]:
    """The on-the-fly pipeline with decoding, cropping and scene images replaced by the cache."""
    return [dict(type='LoadCachedFeatures', cache_dir=cache_dir)] + [
        step for step in fly_pipeline
        if step['type'] in ('NormalizePoseWindow', 'PackMGENetInputs')]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=osp.join(REPO, 'configs', 'mgenet', 'sht.py'),
                        help='on-the-fly config: its train pipeline and model are timed')
    parser.add_argument('--video', default=DEFAULT_VIDEO)
    parser.add_argument('--persons', type=int, default=4)
    parser.add_argument('--windows', type=int, default=64, help='windows timed per stage')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--no-train-step', action='store_true',
                        help='skip timing the trainable parts')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    init_default_scope('mmaction')
    torch.manual_seed(args.seed)
    print(f'torch threads: {torch.get_num_threads()}, peak RSS after imports: '
          f'{peak_rss_mb():.0f} MB')
    cfg = Config.fromfile(args.config)
    fly_pipeline = cfg.train_dataloader.dataset.pipeline
    seg_len = cfg.train_dataloader.dataset.seg_len
    rates: Dict[str, float] = {}
    rss: Dict[str, float] = {}

    with tempfile.TemporaryDirectory() as root:
        clip = make_sample(args.video, root, args.persons, args.seed)
        dataset, dataset_cfg = sample_dataset(root, seg_len, fly_pipeline)
        order = np.random.default_rng(args.seed).permutation(len(dataset))[:args.windows]
        n = len(order)
        print(f'{clip}: {len(dataset)} windows of T={seg_len} ({args.persons} persons, stride '
              f'6); timing {n} in shuffled order, batches of {args.batch_size}')

        # (a) decoding + tube crop + scene image, the on-the-fly pipeline
        rates['a_decode_crop'], items = load_windows(dataset, order)
        rss['a'] = peak_rss_mb()
        tube_shape = tuple(items[0]['inputs']['imgs'].shape)
        scene_shape = tuple(items[0]['inputs']['scene'].shape)

        # (b) the frozen stages on the fly (random weights: same cost as pretrained ones)
        preprocessor = MODELS.build(cfg.model.data_preprocessor)
        cube_embed = MODELS.build(dict(cfg.model.cube_embed, init_cfg=None)).eval()
        scene_encoder = MODELS.build(dict(cfg.model.scene_encoder, init_cfg=None)).eval()
        batches = [preprocessor(pseudo_collate(items[i:i + args.batch_size]), training=False)
                   for i in range(0, n, args.batch_size)]
        tokens, scenes = [], []
        with torch.no_grad():
            cube_embed(batches[0]['inputs']['imgs'][:1])  # warm-up (allocator, kernels)
            seconds = timed(lambda: tokens.extend(cube_embed(b['inputs']['imgs'])
                                                  for b in batches))
            rates['b_cube_embed'] = n / seconds
            seconds = timed(lambda: scenes.extend(scene_encoder(b['inputs']['scene'])
                                                  for b in batches))
            rates['b_scene_encoder'] = n / seconds
        rss['b'] = peak_rss_mb()
        tokens = torch.cat(tokens).numpy()  # (n, C, t, h, w)
        token_shape = tokens.shape[1:]

        # (c) the same windows from a feature cache in the extractor's format
        cache_dir = osp.join(root, 'cache')
        full_index = WindowIndex.from_windows(dataset.window_keys())
        write_feature_cache(cache_dir, [dataset.window_keys()[i] for i in order], tokens,
                            scenes[0][:1].numpy(), seg_len)
        cached = DATASETS.build(dict(dataset_cfg,
                                     pipeline=cached_pipeline(cache_dir, fly_pipeline)))
        # each shard's sha256 checked on first open
        rates['c_cache_first'], cached_items = load_windows(cached, order)
        rates['c_cache_warm'], _ = load_windows(cached, order)
        rss['c'] = peak_rss_mb()
        np.testing.assert_allclose(cached_items[0]['inputs']['tokens'].numpy(), tokens[0],
                                   rtol=2e-3, atol=2e-3)

        # (d) one training step of the trainable parts, from cached inputs
        if not args.no_train_step:
            model_cfg = dict(cfg.model, cube_embed=None, scene_encoder=None)
            model_cfg['guidance'] = dict(model_cfg['guidance'], init_cfg=None)
            model = MODELS.build(model_cfg)
            # random flow weights: mark ActNorm initialised as a loaded checkpoint would be
            model.guidance.set_actnorm_initialized()
            model.train()
            optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                        lr=1e-4, momentum=0.5)
            batch = model.data_preprocessor(pseudo_collate(cached_items[:args.batch_size]),
                                            training=True)

            def step() -> None:
                losses = model(batch['inputs'], batch['data_samples'], mode='loss')
                optimizer.zero_grad()
                sum(losses.values()).backward()
                optimizer.step()

            step()  # warm-up
            steps = 2
            seconds = timed(lambda: [step() for _ in range(steps)])
            rates['d_train_step'] = steps * len(batch['data_samples']) / seconds
            rss['d'] = peak_rss_mb()

    print(f'tube {tube_shape} (C, T, H, W), scene image {scene_shape}, cube tokens '
          f'{tuple(token_shape)} = {int(np.prod(token_shape)) * 2 / 1024:.0f} KiB per window '
          'in float16')
    labels = dict(a_decode_crop='(a) decode + tube crop + scene image',
                  b_cube_embed='(b) cube embedding (Swin stages 1-2)',
                  b_scene_encoder='(b) scene encoder per window',
                  c_cache_first='(c) cache read, first pass (sha256)',
                  c_cache_warm='(c) cache read, warm',
                  d_train_step='(d) trainable parts, train step')
    for key, rate in rates.items():
        print(f'  {labels[key]:<40} {rate:9.1f} windows/s  {1000 / rate:8.2f} ms/window')
    ms = {key: 1000 / rate for key, rate in rates.items()}
    fly = ms['a_decode_crop'] + ms['b_cube_embed'] + ms['b_scene_encoder']
    cache = ms['c_cache_warm']
    print(f'input side per window: on the fly {fly:.1f} ms, from the cache {cache:.2f} ms '
          f'-> {fly / cache:.0f}x')
    if 'd_train_step' in ms:
        train = ms['d_train_step']
        print(f'training epoch per window: on the fly {fly + train:.1f} ms, from the cache '
              f'{cache + train:.1f} ms -> {(fly + train) / (cache + train):.2f}x '
              f'(trainable parts {train:.1f} ms/window)')
    print('peak RSS (MB) after ' + ', '.join(f'({k}) {v:.0f}' for k, v in rss.items()))
    writing = full_index.nbytes / full_index.num_windows
    full_index.compact()
    print(f'window index: {full_index.nbytes / full_index.num_windows:.0f} bytes per window when '
          f'reading ({writing:.0f} when writing; {full_index.num_windows} windows, '
          f'{len(full_index.clip_names)} clip names), independent of T; features: '
          f'{int(np.prod(token_shape)) * 2} bytes per window on disk, memory-mapped')


if __name__ == '__main__':
    main()
