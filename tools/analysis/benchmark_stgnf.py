"""Benchmark the STG-NF evaluation on a ShanghaiTech-sized synthetic pose set.

Builds tracked-pose JSON files for the 107 real ShanghaiTech test clips (their real lengths,
40,791 frames, from the ground-truth masks), several persons per clip with gaps, then times the
three stages of the evaluation and prints wall time and peak memory (process RSS):

1. loading: parsing the JSON files and cutting the windows (``PoseWindowDataset``);
2. model: the STG-NF flow over every window (``score_pose_windows``, chunks of windows);
3. scoring: frame scores, smoothing and AUCs (``windows_to_frame_scores`` + ``compute_vad_aucs``).

With ``--runner`` the same evaluation also runs through mmengine's ``Runner`` (the
``tools/test.py`` path) and its AUC is compared with the fast path's.

Example:
    python tools/analysis/benchmark_stgnf.py \
        --checkpoint ../shared/fixtures/stgnf_reference/ShanghaiTech_85_9.tar
"""
import argparse
import json
import os
import os.path as osp
import resource
import tempfile
import time

import numpy as np
import torch

import mgenet_mm  # noqa: F401
from mgenet_mm.utils import add_trust_argument, trust_from_args
from mgenet_mm.apis import score_pose_windows
from mgenet_mm.datasets import PoseWindowDataset
from mgenet_mm.evaluation.functional import (compute_vad_aucs, load_shanghaitech_gt,
                                             windows_to_frame_scores)
from mgenet_mm.models.backbones import STGNF

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_GT = osp.join(REPO, '..', 'shared', 'fixtures', 'shanghaitech_gt', 'test_frame_mask')


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_pose_set(gt_dir: str, out_dir: str, persons: int, seed: int) -> dict:
    """Write one tracked-pose JSON per GT clip; returns the GT masks by clip name."""
    rng = np.random.default_rng(seed)
    gt = {f[:-4]: load_shanghaitech_gt(osp.join(gt_dir, f))
          for f in sorted(os.listdir(gt_dir)) if f.endswith('.npy')}
    template = rng.uniform(-40, 40, size=(17, 2))
    for clip, mask in gt.items():
        length = len(mask)
        clip_json = {}
        for person in range(1, persons + 1):
            begin = int(rng.integers(0, max(1, length // 4)))
            end = int(rng.integers(min(length, begin + 3 * length // 4), length + 1))
            frames = np.arange(begin, end)
            frames = frames[rng.random(len(frames)) > 0.01]  # ~1 % dropped detections
            centre = rng.uniform([100, 100], [750, 380]) + np.cumsum(
                rng.normal(0, 2, size=(len(frames), 2)), axis=0)
            scale = rng.uniform(0.6, 1.6)
            xy = centre[:, None] + scale * template[None] + rng.normal(0, 1.5,
                                                                        (len(frames), 17, 2))
            conf = rng.uniform(0.3, 1.0, size=(len(frames), 17, 1))
            keypoints = np.concatenate([xy, conf], axis=2).round(2)  # (n, 17, 3)
            clip_json[str(person)] = {
                f'{f + 1:03d}': {'keypoints': kp.ravel().tolist(), 'scores': 0.9}
                for f, kp in zip(frames.tolist(), keypoints)}
        with open(osp.join(out_dir, f'{clip}_alphapose_tracked_person.json'), 'w') as f:
            json.dump(clip_json, f)
    return gt


def run_with_runner(pose_dir: str, gt_dir: str, checkpoint: str, work_dir: str) -> float:
    """The tools/test.py path on the same set; returns its micro AUC."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'stgnf', 'stgnf_sht.py'))
    cfg.test_dataloader.dataset.update(data_root='', pose_dir=pose_dir)
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_evaluator.update(gt_dir=gt_dir, out_dir=work_dir)
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    return Runner.from_cfg(cfg).test()['vad/micro_auc']


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', help='STG-NF checkpoint (official .tar or our .pth); '
                        'random weights when omitted')
    parser.add_argument('--gt-dir', default=DEFAULT_GT, help='ShanghaiTech test masks')
    parser.add_argument('--persons', type=int, default=3, help='persons per clip')
    parser.add_argument('--batch-size', type=int, default=4096)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--runner', action='store_true',
                        help='also time the same evaluation through mmengine Runner')
    add_trust_argument(parser)
    args = parser.parse_args()
    with trust_from_args(args):
        run(args)


def run(args: argparse.Namespace) -> None:
    torch.set_grad_enabled(False)
    print(f'torch threads: {torch.get_num_threads()}, peak RSS after imports: '
          f'{peak_rss_mb():.0f} MB')

    with tempfile.TemporaryDirectory() as tmp:
        pose_dir = osp.join(tmp, 'pose')
        os.makedirs(pose_dir)
        start = time.perf_counter()
        gt = make_pose_set(args.gt_dir, pose_dir, args.persons, args.seed)
        print(f'generated {len(gt)} clips, {sum(map(len, gt.values()))} frames, '
              f'{args.persons} persons per clip in {time.perf_counter() - start:.1f} s')
        base_rss = peak_rss_mb()

        times = {}
        start = time.perf_counter()
        dataset = PoseWindowDataset(pose_dir, seg_len=24, stride=1, test_mode=True)
        times['loading'] = time.perf_counter() - start

        if args.checkpoint:
            flow = STGNF.from_official_checkpoint(args.checkpoint) if args.checkpoint.endswith(
                '.tar') else STGNF()
            if not args.checkpoint.endswith('.tar'):
                from mmengine.runner import load_checkpoint
                load_checkpoint(flow, args.checkpoint, map_location='cpu',
                                revise_keys=[(r'^backbone\.', '')])
        else:
            flow = STGNF()
            flow.set_actnorm_initialized()
        flow.eval()
        start = time.perf_counter()
        nll = score_pose_windows(flow, dataset, batch_size=args.batch_size)
        times['model'] = time.perf_counter() - start

        start = time.perf_counter()
        names = [d['clip_name'] for d in dataset.data_list]
        person_start = np.array([[d['person_id'], d['start_frame']] for d in dataset.data_list],
                                dtype=np.int64)
        frames = windows_to_frame_scores(-nll.astype(np.float64), person_start,
                                         {n: len(m) for n, m in gt.items()}, 24,
                                         clip_names=names)
        result = compute_vad_aucs(frames, gt)
        times['scoring'] = time.perf_counter() - start
        total = sum(times.values())

        print(f'windows: {len(dataset)} (skips: {dataset.skip_counts})')
        for stage, seconds in times.items():
            print(f'  {stage:<8} {seconds:7.2f} s')
        print(f'  {"total":<8} {total:7.2f} s   ({len(dataset) / total:,.0f} windows/s)')
        print(f'peak RSS: {peak_rss_mb():.0f} MB (after generating the set: {base_rss:.0f} MB)')
        print(f'micro AUC {result["micro_auc"]:.6f}, macro AUC {result["macro_auc"]:.6f} '
              f'(synthetic poses: the AUC only checks that both paths agree)')

        if args.runner:
            start = time.perf_counter()
            auc = run_with_runner(pose_dir, args.gt_dir, args.checkpoint, osp.join(tmp, 'work'))
            print(f'runner path (tools/test.py): {time.perf_counter() - start:.1f} s, '
                  f'micro AUC {auc:.6f}, |difference| {abs(auc - result["micro_auc"]):.2e}')


if __name__ == '__main__':
    main()
