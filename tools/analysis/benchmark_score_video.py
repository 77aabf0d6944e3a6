"""Time offline ``score_video`` against streaming on one video, and check they agree.

Runs, on the same video, poses and model, one after the other in this process:

1. offline, each frame decoded once (``score_video``, the default);
2. offline, frames decoded per window through the config's pipeline
   (``score_video(decode_once=False)``, the evaluation path and the offline mode before);
3. streaming (``StreamingScorer`` fed by ``stream_video``), with the calibration of run 1.

and prints each wall time, the ratio to streaming and the largest frame-score differences (the
offline runs share run 1's calibration).

Example (the demo's model and one of its test videos):
    python tools/analysis/benchmark_score_video.py configs/mgenet/demo.py \\
        work_dirs/demo/mgenet/epoch_10.pth data/synthetic/testing/videos/01_0001.avi \\
        --poses data/synthetic/pose/test/01_0001_alphapose_tracked_person.json
"""
import argparse
import os
import os.path as osp
import time

import numpy as np
import torch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='model config (MGENet or STG-NF)')
    parser.add_argument('checkpoint', help='trained weights')
    parser.add_argument('video', help='video file')
    parser.add_argument('--poses', required=True, help='tracked-person JSON of the video')
    parser.add_argument('--scene-frames', type=int, default=150,
                        help='frames the scene image is taken from (streaming needs a bound)')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    args = parser.parse_args()
    for path in (args.config, args.checkpoint, args.video, args.poses):
        if not osp.isfile(path):
            raise SystemExit(f'file not found: {path}')
    if args.scene_frames < 1 or args.batch_size < 1 or args.threads < 1:
        raise SystemExit('--scene-frames, --batch-size and --threads must be at least 1')
    return args


def main() -> None:
    args = parse_args()
    import mgenet_mm  # noqa: F401  registration
    from mgenet_mm.apis import StreamingScorer, init_model, score_video, stream_video
    torch.set_num_threads(args.threads)
    model = init_model(args.config, args.checkpoint)
    common = dict(poses=args.poses, scene_frames=args.scene_frames, batch_size=args.batch_size,
                  show_progress=False)
    times = {}
    began = time.perf_counter()
    once = score_video(model, args.video, **common)
    times['offline, decoded once'] = time.perf_counter() - began
    began = time.perf_counter()
    per_window = score_video(model, args.video, calibration=once.calibration,
                             decode_once=False, **common)
    times['offline, per window'] = time.perf_counter() - began
    began = time.perf_counter()
    scorer = StreamingScorer(model, once.calibration, scene_frames=args.scene_frames,
                             batch_size=args.batch_size)
    emitted = []
    for step in stream_video(scorer, args.video, poses=args.poses):
        emitted += step.scores
    times['streaming'] = time.perf_counter() - began
    streamed = np.array([score.anomaly for score in emitted])

    load = os.getloadavg()
    print(f'{osp.basename(args.video)}: {once.num_frames} frames, {len(once.windows)} windows; '
          f'{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs, load average '
          f'{load[0]:.2f}')
    for name, seconds in times.items():
        print(f'  {name:<24} {seconds:7.2f} s   {seconds / times["streaming"]:5.2f}x streaming')
    per_window_diff = np.abs(once.frame_scores - per_window.frame_scores).max()
    streaming_diff = np.abs(once.frame_scores - streamed).max()
    print(f'  max |offline once - per window| {per_window_diff:.2e}, '
          f'|offline once - streaming| {streaming_diff:.2e}')


if __name__ == '__main__':
    main()
