"""Score a video with a trained model: per-frame anomaly scores, a score curve, an overlay.

Poses come from a tracked-person JSON (``--poses``) or are extracted with an MMDet detector and
an MMPose model (``--det-*``/``--pose-*``, the same options and model-zoo defaults as
``tools/data/extract_poses.py``); the extracted poses are saved next to the scores so that a
second run can reuse them.

Outputs in ``--out-dir``: ``<name>_scores.json`` (frame scores, window scores, the calibration
used), ``<name>_scores.png`` (the curve), with ``--overlay`` ``<name>_overlay.mp4`` (skeletons
coloured by their window's score, the running curve), and ``<name>_alphapose_tracked_person.json``
when poses were extracted.

``--stream`` reads the frames one at a time (a file, or a camera with ``--camera``), keeps a
rolling window per track and prints each frame's score as soon as it is final, with the
per-frame compute time and the delay in frames; it needs ``--calibration`` (the
``vad_results.json`` of a ``tools/test.py`` run of the model). Given the same calibration and
``--scene-frames``, offline and streaming scores are the same. Ctrl-C ends a stream (a camera's)
and still finishes and writes the frames read; a stream holds about 1 KB per person and frame in
memory for its results.

Examples:
    # the demo's model on one of its test videos, poses known
    python tools/infer_video.py configs/mgenet/demo.py work_dirs/demo/mgenet/epoch_10.pth \\
        data/synthetic/testing/videos/01_0001.avi \\
        --poses data/synthetic/pose/test/01_0001_alphapose_tracked_person.json \\
        --out-dir work_dirs/infer --overlay

    # your own video, poses from the model zoo's RTMDet + RTMPose (local copies of the weights)
    python tools/infer_video.py configs/mgenet/sht.py mgenet_sht.pth my_video.mp4 \\
        --det-checkpoint rtmdet_m_8xb32-300e_coco_20220719_112220-229f527c.pth \\
        --pose-checkpoint rtmpose-m_simcc-coco_pt-aic-coco_420e-256x192-d8dd5ca4_20230127.pth \\
        --calibration work_dirs/sht/test/vad_results.json --out-dir work_dirs/infer --overlay

    # a camera, streaming
    python tools/infer_video.py configs/mgenet/sht.py mgenet_sht.pth 0 --camera --stream \\
        --calibration work_dirs/sht/test/vad_results.json --out-dir work_dirs/camera ...
"""
import argparse
import collections
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

import mgenet_mm  # noqa: F401  shims + registration before configs are built
import numpy as np
from mmengine.config import DictAction

from mgenet_mm.utils import (UntrustedCheckpointError, add_trust_argument,
                             trust_from_args)
from mgenet_mm.apis.inference import (Calibration, InferenceError, VideoScores,
                                      init_model, load_pose_file, score_video)
from mgenet_mm.apis.pose_extraction import (
    DEFAULT_DET_CHECKPOINT, DEFAULT_DET_CONFIG, DEFAULT_POSE_CHECKPOINT, DEFAULT_POSE_CONFIG,
    POSE_JSON_SUFFIX, PoseExtractor, write_json_atomic)
from mgenet_mm.apis.clips import PoseExtractionError
from mgenet_mm.apis.streaming import StreamingScorer, StreamStep, stream_video
from mgenet_mm.visualization import (OverlayWriter, PersonScoreTimeline,
                                     plot_video_scores)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Per-frame anomaly scores of one video (offline or streaming)')
    parser.add_argument('config', help='model config (not a feature-cache config)')
    parser.add_argument('checkpoint', help='trained weights (path or URL)')
    parser.add_argument('video', help='video file, frame folder, or camera index with --camera')
    parser.add_argument('--out-dir', required=True, help='where the results go')
    parser.add_argument('--poses', help='tracked-person JSON of the video (skips extraction)')
    parser.add_argument('--calibration',
                        help='vad_results.json of a tools/test.py run of this model: scores on '
                        "that test set's scale (default offline: the video's own windows)")
    parser.add_argument('--overlay', action='store_true',
                        help='also write <name>_overlay.mp4')
    parser.add_argument('--stream', action='store_true',
                        help='score frame by frame as the frames arrive')
    parser.add_argument('--camera', action='store_true',
                        help='VIDEO is an OpenCV camera index (implies --stream)')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='stop streaming after this many frames')
    parser.add_argument(
        '--scene-frames', type=int, default=None,
        help='scene image from the first N frames (default: whole video offline, 150 '
        'streaming; give the same N to both to get the same scores)')
    parser.add_argument('--batch-size', type=int, default=16, help='windows per forward pass')
    parser.add_argument('--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument('--frozen-seed', type=int, default=0,
                        help='seed of frozen parts without a checkpoint (the --seed of '
                        'tools/data/extract_features.py)')
    parser.add_argument('--det-config', default=DEFAULT_DET_CONFIG,
                        help='detector config: a path or mmdet::<path> (default: %(default)s)')
    parser.add_argument('--det-checkpoint', default=DEFAULT_DET_CHECKPOINT,
                        help='detector checkpoint: a path or a URL')
    parser.add_argument('--pose-config', default=DEFAULT_POSE_CONFIG,
                        help='top-down COCO-17 pose config: a path or mmpose::<path> '
                        '(default: %(default)s)')
    parser.add_argument('--pose-checkpoint', default=DEFAULT_POSE_CHECKPOINT,
                        help='pose checkpoint: a path or a URL')
    parser.add_argument('--det-thr', type=float, default=0.5,
                        help='person detection score threshold (default: %(default)s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override model config settings, key=value pairs')
    add_trust_argument(parser)
    args = parser.parse_args(argv)
    for option, value in (('--batch-size', args.batch_size), ('--scene-frames', args.scene_frames),
                          ('--max-frames', args.max_frames)):
        if value is not None and value < 1:
            parser.error(f'{option} must be at least 1, got {value}')
    if args.camera:
        args.stream = True
        if not args.video.isdigit():
            parser.error(f'--camera needs a camera index, got {args.video!r}')
    return args


def clip_name(args: argparse.Namespace) -> str:
    if args.camera:
        return f'camera{args.video}'
    return osp.splitext(osp.basename(osp.normpath(args.video)))[0]


def build_extractor(args: argparse.Namespace) -> PoseExtractor:
    print(f'pose extraction: {args.det_config} + {args.pose_config}', flush=True)
    return PoseExtractor.from_config(args.det_config, args.det_checkpoint, args.pose_config,
                                     args.pose_checkpoint, device=args.device,
                                     det_thr=args.det_thr)


def video_fps(path: str) -> float:
    import cv2
    capture = cv2.VideoCapture(path)
    try:
        return float(capture.get(cv2.CAP_PROP_FPS) or 25.0)
    finally:
        capture.release()


def write_outputs(scores: VideoScores, out_dir: str, name: str) -> None:
    json_path = osp.join(out_dir, f'{name}_scores.json')
    scores.save_json(json_path)
    png_path = osp.join(out_dir, f'{name}_scores.png')
    plot_video_scores(scores.frame_scores, png_path, scores.covered,
                      title=f'{name}: anomaly score ({len(scores.windows)} windows)')
    print(f'scores: {json_path}\ncurve: {png_path}', flush=True)


def write_overlay(scores: VideoScores, video: str, poses: dict, path: str) -> None:
    """Offline overlay: read the video again and draw every frame."""
    from tqdm import tqdm

    from mgenet_mm.apis.clips import Clip, ClipReader
    from mgenet_mm.apis.streaming import poses_by_frame
    timeline = PersonScoreTimeline(scores.seg_len)
    for window in scores.windows:
        timeline.add(window)
    by_frame = poses_by_frame(poses)
    values = [w['anomaly'] for w in scores.windows] or [0.0, 1.0]
    kind = 'frames' if osp.isdir(video) else 'video'
    with ClipReader(Clip(scores.clip_name, video, kind)) as reader:
        writer = None
        for frame, image in enumerate(tqdm(reader, total=reader.num_frames, desc='overlay',
                                           unit='frame', dynamic_ncols=True, leave=False)):
            if writer is None:
                writer = OverlayWriter(path, video_fps(video) if kind == 'video' else 25.0,
                                       (image.shape[1], image.shape[0]),
                                       (min(values), max(values)), scores.num_frames)
            final = scores.frame_scores[frame] if frame < scores.num_frames else None
            writer.write(image, by_frame.get(frame, {}), timeline.at(frame), final)
        if writer is not None:
            writer.close()
    print(f'overlay: {path}', flush=True)


def run_offline(args: argparse.Namespace, model, name: str) -> int:
    poses = args.poses
    if poses is None:
        from mgenet_mm.apis.inference import extract_video_poses
        started = time.perf_counter()
        poses = extract_video_poses(build_extractor(args), args.video)
        pose_path = osp.join(args.out_dir, name + POSE_JSON_SUFFIX)
        write_json_atomic(poses, pose_path)
        print(f'poses: {pose_path} ({len(poses)} persons, '
              f'{time.perf_counter() - started:.1f} s)', flush=True)
    loaded = load_pose_file(poses) if isinstance(poses, str) else poses  # errors name it
    if not loaded:
        print(f'no persons found in {args.video}: every frame gets the fill score', flush=True)
    started = time.perf_counter()
    scores = score_video(model, args.video, poses, calibration=args.calibration,
                         batch_size=args.batch_size, scene_frames=args.scene_frames)
    seconds = time.perf_counter() - started
    print(f'{name}: {scores.num_frames} frames, {len(scores.windows)} windows scored in '
          f'{seconds:.1f} s ({scores.num_frames / max(seconds, 1e-9):.2f} frames/s, '
          f'{len(scores.windows) / max(seconds, 1e-9):.2f} windows/s)', flush=True)
    write_outputs(scores, args.out_dir, name)
    if args.overlay:
        if osp.isdir(args.video) or osp.isfile(args.video):
            write_overlay(scores, args.video, loaded, osp.join(args.out_dir,
                                                               f'{name}_overlay.mp4'))
    return 0


def run_stream(args: argparse.Namespace, model, name: str) -> int:
    if args.calibration is None:
        raise InferenceError('--stream needs --calibration (the vad_results.json of a '
                             'tools/test.py run of this model): a stream has no end to take '
                             'score ranges over')
    extractor = build_extractor(args) if args.poses is None else None
    timeout = {} if extractor is None else dict(
        track_timeout=extractor.new_tracker().max_missing)
    scorer = StreamingScorer(model, Calibration.from_results(args.calibration),
                             scene_frames=args.scene_frames or 150,
                             batch_size=args.batch_size, clip_name=name, **timeout)
    source = int(args.video) if args.camera else args.video
    overlay = None
    held: 'collections.deque' = collections.deque()  # frames waiting for their final score
    timeline = PersonScoreTimeline(scorer.seg_len)
    seen_windows = 0
    scores = []
    seconds: List[float] = []
    poses_seen = {}

    def handle(step: StreamStep) -> None:
        nonlocal overlay, seen_windows
        if step.frame is not None:
            seconds.append(step.seconds)
            for person_id, entry in step.persons.items():
                poses_seen.setdefault(str(person_id), {})[f'{step.frame:04d}'] = entry
        for window in scorer.windows[seen_windows:]:
            timeline.add(window)
        seen_windows = len(scorer.windows)
        if args.overlay and step.frame is not None:
            if overlay is None:
                fps = 25.0 if args.camera else video_fps(args.video)
                overlay = OverlayWriter(osp.join(args.out_dir, f'{name}_overlay.mp4'), fps,
                                        (step.image.shape[1], step.image.shape[0]),
                                        scorer.calibration.score_range())
            held.append((step.frame, step.image, step.persons))
        for score in step.scores:
            scores.append(score)
            print(f'frame {score.frame}: anomaly {score.anomaly:.4f} (raw '
                  f'{score.anomaly_raw:.4f}{"" if score.covered else ", nobody"}; '
                  f'final {score.delay} frames later)', flush=True)
            while overlay is not None and held and held[0][0] <= score.frame:
                frame, image, persons = held.popleft()
                overlay.write(image, persons, timeline.at(frame), score.anomaly)

    try:
        for step in stream_video(scorer, source, poses=args.poses, extractor=extractor,
                                 max_frames=args.max_frames):
            handle(step)
    except KeyboardInterrupt:
        # Ctrl-C ends a camera stream: the frames read so far are finished and saved.
        print(f'interrupted after {scorer.num_frames} frames; finishing', flush=True)
        began = time.perf_counter()
        handle(StreamStep(None, None, {}, scorer.finish(), time.perf_counter() - began))
    if overlay is not None:
        overlay.close()
    if extractor is not None:
        pose_path = osp.join(args.out_dir, name + POSE_JSON_SUFFIX)
        write_json_atomic(poses_seen, pose_path)
    frame_scores = np.array([s.anomaly for s in scores])
    result = VideoScores(name, len(scores), frame_scores,
                         np.array([s.anomaly_raw for s in scores]),
                         np.array([s.covered for s in scores]), scorer.windows,
                         scorer.calibration, scorer.seg_len, scorer.sigmas)
    write_outputs(result, args.out_dir, name)
    per_frame = np.asarray(seconds) * 1000
    delays = np.array([s.delay for s in scores])
    print(f'streaming: {len(per_frame)} frames, compute per frame mean {per_frame.mean():.1f} ms, '
          f'p95 {np.percentile(per_frame, 95):.1f} ms, max {per_frame.max():.1f} ms '
          f'({1000 / max(per_frame.mean(), 1e-9):.1f} frames/s); score delay median '
          f'{np.median(delays):.0f} frames, max {delays.max()}; late windows '
          f'{scorer.late_windows}, dropped {scorer.dropped_windows}', flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        os.makedirs(args.out_dir, exist_ok=True)
        with trust_from_args(args):
            model = init_model(args.config, args.checkpoint, device=args.device,
                               cfg_options=args.cfg_options, frozen_seed=args.frozen_seed)
            name = clip_name(args)
            if args.stream:
                return run_stream(args, model, name)
            return run_offline(args, model, name)
    except (InferenceError, PoseExtractionError, FileNotFoundError,
            UntrustedCheckpointError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
