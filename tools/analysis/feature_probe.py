"""What the frozen features can tell apart: nearest-neighbour anomaly probes on a feature cache.

Trains nothing. Each test window is scored by its mean distance to the ``k`` nearest training
windows, in three descriptor spaces built from the cache that MGENet trains on:

- ``tokens``: the window's frozen cube tokens, averaged over time (appearance and shape);
- ``tokens+scene``: those, joined with the clip's frozen scene features (behaviour in its scene);
- ``scene``: the scene features alone (which scene the window is in);
- ``token positions (time-max)``: each grid position's token, its maximum over time, scored
  by its distance to the nearest training tokens of any position and window, then averaged
  over the positions (a local object keeps its own token instead of being averaged into the
  window's descriptor).

The window scores go through the evaluation protocol (middle frame, most anomalous person,
fill, smoothing) and per-kind AUCs, like ``tools/test.py``. A probe that separates a kind well
while the trained branch does not points at the model or its training; a probe that cannot
points at the features (e.g. frozen stages with random weights) or the data.

Example:
    python tools/analysis/feature_probe.py work_dirs/demo/features \\
        --gt-dir data/synthetic/gt/test_frame_mask --kind-dir data/synthetic/gt/test_frame_kinds
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from mgenet_mm.datasets.feature_cache import (INDEX, FeatureCacheReader,
                                          WindowIndex)
from mgenet_mm.evaluation.functional.vad_scores import (compute_vad_aucs, kind_aucs,
                                                        load_shanghaitech_gt,
                                                        windows_to_frame_scores)
from mgenet_mm.fileio import atomic_write_bytes


KIND_NAMES = {1: 'motion', 2: 'appearance', 3: 'scene'}


def load_split(cache_dir: str) -> Tuple[np.ndarray, np.ndarray, list, np.ndarray, np.ndarray]:
    """Time-averaged tokens (N, C*h*w), scene features (N, C_s), window identities, the
    manifest and the time-max tokens per grid position (N, h*w, C).
    """
    reader = FeatureCacheReader(cache_dir, verify='size')
    reader.index  # opens and checks the cache
    index = WindowIndex.load(osp.join(cache_dir, INDEX))  # uncompacted: identities by position
    tokens = []
    position_tokens = []
    identities = []
    scenes = []
    for window in range(index.num_windows):
        clip, person, start = index.identity(window)
        grid = np.asarray(reader.tokens(window), dtype=np.float32)  # (C, t, h, w)
        tokens.append(grid.mean(axis=1).reshape(-1))  # (C, h, w) -> (C*h*w,)
        peak = grid.max(axis=1)  # (C, h, w)
        position_tokens.append(peak.reshape(peak.shape[0], -1).T)  # (C, h*w) -> (h*w, C)
        scenes.append(np.asarray(reader.scene_feat(clip), dtype=np.float32)
                      if reader.with_scene else np.zeros(1, np.float32))
        identities.append((clip, int(person), int(start)))
    return (np.stack(tokens), np.stack(scenes), identities, reader.manifest,
            np.stack(position_tokens))


def standardise(train: np.ndarray, test: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), train.std(0) + 1e-6
    return (train - mean) / std, (test - mean) / std


def knn_distance(train: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    """(N_test,) mean Euclidean distance to the k nearest training rows."""
    a, b = torch.from_numpy(test), torch.from_numpy(train)
    out = []
    for start in range(0, len(a), 1024):
        dist = torch.cdist(a[start:start + 1024], b)  # (n, N_train)
        out.append(dist.topk(k, dim=1, largest=False).values.mean(1))
    return torch.cat(out).numpy()


def position_knn_distance(train: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    """(N_test,) mean over a window's positions of each token's k-NN distance to every
    training token (any window, any position).

    Args:
        train (np.ndarray): (N_train, P, C) training tokens.
        test (np.ndarray): (N_test, P, C) test tokens.
        k (int): Neighbours.
    """
    channels = train.shape[-1]
    per_token = knn_distance(train.reshape(-1, channels), test.reshape(-1, channels), k)
    # (N_test * P,) -> (N_test, P), then the mean over positions: (N_test,)
    return per_token.reshape(test.shape[:2]).mean(axis=1)


def evaluate(anomaly: np.ndarray, identities: Sequence[tuple], gt: Dict[str, np.ndarray],
             kinds: Optional[Dict[str, np.ndarray]], seg_len: int) -> Dict[str, float]:
    names = [c for c, _, _ in identities]
    person_start = np.array([[p, s] for _, p, s in identities], dtype=np.int64)
    frames = windows_to_frame_scores(-anomaly, person_start, {c: len(m) for c, m in gt.items()},
                                     seg_len, clip_names=names)
    result = compute_vad_aucs(frames, gt)
    metrics = dict(micro_auc=result['micro_auc'], macro_auc=result['macro_auc'])
    if kinds is not None:
        metrics.update({k: v for k, v in kind_aucs(result['anomaly_scores'], kinds, KIND_NAMES).items()
                        if k.startswith('micro')})
    return metrics


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='Nearest-neighbour anomaly probes on cached '
                                     'frozen features')
    parser.add_argument('cache_root', help='folder with train/ and test/ feature caches')
    parser.add_argument('--gt-dir', required=True, help='per-clip test masks <clip>.npy')
    parser.add_argument('--kind-dir', help='per-frame anomaly kinds <clip>.npy (optional)')
    parser.add_argument('--seg-len', type=int, default=24, help='window length T')
    parser.add_argument('--k', type=int, default=5, help='neighbours')
    parser.add_argument('--scene-weight', type=float, default=1.0,
                        help='weight of the scene part of the joint descriptor')
    parser.add_argument('--out', help='write the table as JSON here')
    args = parser.parse_args(argv)

    train_tokens, train_scene, _, _, train_positions = load_split(
        osp.join(args.cache_root, 'train'))
    test_tokens, test_scene, identities, _, test_positions = load_split(
        osp.join(args.cache_root, 'test'))
    clips = sorted({c for c, _, _ in identities})
    gt = {c: load_shanghaitech_gt(osp.join(args.gt_dir, c + '.npy')) for c in clips}
    kinds = ({c: np.load(osp.join(args.kind_dir, c + '.npy')) for c in clips}
             if args.kind_dir else None)
    print(f'{len(train_tokens)} training and {len(test_tokens)} test windows, token descriptor '
          f'{train_tokens.shape[1]} values, scene {train_scene.shape[1]}')

    tok_train, tok_test = standardise(train_tokens, test_tokens)
    scn_train, scn_test = standardise(train_scene, test_scene)
    # Each part scaled to unit mean squared norm per dimension block, so neither dominates.
    tok_scale, scn_scale = np.sqrt(tok_train.shape[1]), np.sqrt(scn_train.shape[1])
    probes = {
        'tokens': (tok_train, tok_test),
        'tokens+scene': (np.concatenate([tok_train / tok_scale,
                                         args.scene_weight * scn_train / scn_scale], 1),
                         np.concatenate([tok_test / tok_scale,
                                         args.scene_weight * scn_test / scn_scale], 1)),
        'scene': (scn_train, scn_test),
    }
    table = {}
    for name, (train, test) in probes.items():
        anomaly = knn_distance(train.astype(np.float32), test.astype(np.float32), args.k)
        table[name] = evaluate(anomaly, identities, gt, kinds, args.seg_len)
    # Standardised per channel with the statistics of all training tokens.
    channels = train_positions.shape[-1]
    flat_train, flat_test = standardise(train_positions.reshape(-1, channels),
                                        test_positions.reshape(-1, channels))
    anomaly = position_knn_distance(flat_train.reshape(train_positions.shape).astype(np.float32),
                                    flat_test.reshape(test_positions.shape).astype(np.float32),
                                    args.k)
    table['token positions (time-max)'] = evaluate(anomaly, identities, gt, kinds, args.seg_len)
    keys = list(next(iter(table.values())))
    print(f'{"probe":27s}' + ''.join(f'{k.replace("micro_auc", "micro"):>20s}' for k in keys))
    for name, metrics in table.items():
        print(f'{name:27s}' + ''.join(f'{100 * metrics[k]:20.1f}' for k in keys))
    if args.out:
        text = json.dumps(table, indent=2).encode()
        atomic_write_bytes(args.out, lambda f: f.write(text))
    return 0


if __name__ == '__main__':
    sys.exit(main())
