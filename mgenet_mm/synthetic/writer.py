"""The writer: renders every planned clip and writes the benchmark in the ShanghaiTech layout.

Per clip: the video (MJPG AVI), the test and validation frames (JPEG), the tracked-pose JSON
and the ground truth (frame mask, kinds, events, and the anomalous regions for RBDC/TBDC; see
:mod:`.layout`); then the event names and meta.json, last and atomically, since its presence
marks a finished benchmark. The bytes depend on the seed alone (not on ``workers``).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..evaluation.functional.region_gt import ClipRegions, format_region_tracks
from ..fileio import atomic_write_bytes
from .checks import check_layout
from .config import Camera, SyntheticConfig, config_dict
from .kinematics import PersonTrack, clip_event_labels, clip_ground_truth, simulate_person
from .layout import (EVENT_NAMES_FILE, SPLITS, frame_folder, frame_key_width, gt_folder,
                     gt_path, is_evaluation, pose_path, region_path, video_path)
from .planner import plan_benchmark
from .plans import OPEN, BenchmarkPlan, ClipPlan
from .pose_noise import PoseObserver
from .renderer import ClipRenderer
from .vocabulary import ANOMALIES, EVENT_CODES, KIND_CODES, LABEL_STRIDE


def _sensor_noise(rng: np.random.Generator, shape: Tuple[int, ...], bank: int = 8) -> List:
    return [rng.normal(0, 2.0, size=shape).astype(np.float32) for _ in range(bank)]


def person_box(labels: np.ndarray, index: int) -> Optional[Tuple[int, int, int, int]]:
    """(x1, y1, x2, y2), end exclusive, of the pixels the person ``index`` (of
    ``clip.persons``) and what it carries or rides cover in a rendered frame's label map, or
    None when none of them is visible."""
    base = (index + 1) * LABEL_STRIDE  # the renderer's slot of the person
    rows, cols = np.nonzero((labels >= base) & (labels < base + LABEL_STRIDE))
    if not len(rows):
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def anomalous_regions(tracks: Sequence[PersonTrack],
                      boxes: Dict[Tuple[int, int], Tuple[int, int, int, int]]) -> ClipRegions:
    """The clip's GT regions and tracks for RBDC/TBDC.

    A track is a run of consecutive frames in which one anomalous person performs its anomaly
    (the frames the mask marks), numbered 0.. by person, then by start frame; its region in a
    frame is the box of the person's visible pixels (``boxes[(person index, frame)]``). A frame
    in which the person is entirely hidden has no region.
    """
    frames, regions, track_ids = [], [], []
    track = 0
    for i, person_track in enumerate(tracks):
        if person_track.person.anomaly is None:
            continue
        performing = np.asarray(person_track.performing, dtype=bool)
        # Run starts and ends: where the flags switch on and off.
        edges = np.diff(np.concatenate([[0], performing.astype(np.int8), [0]]))
        for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            for t in range(start, stop):
                if (i, t) in boxes:
                    frames.append(t)
                    regions.append(boxes[(i, t)])
                    track_ids.append(track)
            track += 1
    return ClipRegions(np.array(frames, np.int64), np.array(regions, np.float64).reshape(-1, 4),
                       np.array(track_ids, np.int64))


def generate_clip(clip: ClipPlan, cam: Camera, out: str, fps: int = 25,
                  jpeg_quality: int = 90) -> Dict:
    """Render, encode and write one clip (video, test frames, pose JSON, ground truth,
    anomalous regions).

    Args:
        clip: The clip plan.
        cam: Camera.
        out: Benchmark root.
        fps: Frame rate.
        jpeg_quality: Quality of the test frame JPEGs.

    Returns:
        dict: The clip's entry of meta.json.
    """
    renderer = ClipRenderer(clip, cam, fps)
    rng = np.random.default_rng([clip.seed, 4])
    noise_bank = _sensor_noise(rng, (cam.height, cam.width, 3))
    observers = [PoseObserver(p, cam.width, cam.height) for p in clip.persons]
    evaluation = is_evaluation(clip.split)
    video = osp.join(out, video_path(clip.split, clip.name))
    os.makedirs(osp.dirname(video), exist_ok=True)
    frame_dir = osp.join(out, frame_folder(clip.split, clip.name))
    if evaluation:
        os.makedirs(frame_dir, exist_ok=True)
    width = frame_key_width('test', clip.n_frames)
    boxes = {}  # (person index, frame) -> visible box, while an anomalous person performs
    writer = cv2.VideoWriter(video, cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*'MJPG'), fps,
                             (cam.width, cam.height))
    if not writer.isOpened():
        raise RuntimeError('OpenCV cannot write MJPG AVI files here')
    for t in range(clip.n_frames):
        img, labels = renderer.render(t)
        for i, track in enumerate(renderer.tracks):
            if not track.on_screen[t]:
                continue
            visibility = renderer.joint_visibility(labels, i, t)
            height_px = track.person.height * cam.focal / track.root[t, 2]
            observers[i].observe(t, track.image[t, :17], visibility, height_px)
            if evaluation and track.person.anomaly is not None and track.performing[t]:
                box = person_box(labels, i)
                if box is not None:
                    boxes[(i, t)] = box
        noisy = img.astype(np.float32) + noise_bank[int(rng.integers(len(noise_bank)))]
        frame = np.clip(noisy, 0, 255).astype(np.uint8)
        writer.write(frame)
        if evaluation:
            cv2.imwrite(osp.join(frame_dir, f'{t:0{width}d}.jpg'), frame,
                        [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    writer.release()
    # Pose JSON, frame keys zero-padded as STG-NF's extraction writes them (4 digits in training
    # files, 3 in test files).
    key_width = frame_key_width(clip.split, clip.n_frames)
    poses = {}
    for p, obs in zip(clip.persons, observers):
        if obs.frames:
            poses[str(p.pid)] = {f'{t:0{key_width}d}': v for t, v in sorted(obs.frames.items())}
    pose_file = osp.join(out, pose_path(clip.split, clip.name))
    os.makedirs(osp.dirname(pose_file), exist_ok=True)
    text = json.dumps(poses).encode()
    atomic_write_bytes(pose_file, lambda f: f.write(text))
    mask, kinds = clip_ground_truth(renderer.tracks)
    if evaluation:
        arrays = dict(mask=mask, kinds=kinds, events=clip_event_labels(renderer.tracks))
        for array_name, array in arrays.items():
            path = osp.join(out, gt_path(clip.split, array_name, clip.name))
            os.makedirs(osp.dirname(path), exist_ok=True)
            atomic_write_bytes(path, lambda f, a=array: np.save(f, a))
        text = format_region_tracks(anomalous_regions(renderer.tracks, boxes))
        path = osp.join(out, region_path(clip.split, clip.name))
        os.makedirs(osp.dirname(path), exist_ok=True)
        atomic_write_bytes(path, lambda f: f.write(text))
    return _clip_meta(clip, renderer.tracks, observers, mask, kinds)


def _span(flags: np.ndarray) -> Optional[List[int]]:
    where = np.flatnonzero(flags)
    return [int(where[0]), int(where[-1])] if len(where) else None


def _clip_meta(clip: ClipPlan, tracks: Sequence[PersonTrack],
               observers: Optional[Sequence[PoseObserver]], mask: np.ndarray,
               kinds: np.ndarray) -> Dict:
    persons = []
    for i, (p, track) in enumerate(zip(clip.persons, tracks)):
        entry = {
            'id': p.pid, 'role': p.role, 'anomalous': p.anomalous, 'anomaly': p.anomaly,
            'kind': p.kind, 'height_m': round(p.height, 3),
            'shirt_bgr': list(p.colours['shirt']), 'trousers_bgr': list(p.colours['trousers']),
            'skin_bgr': list(p.colours['skin']), 'hair_bgr': list(p.colours['hair']),
            'long_sleeves': p.long_sleeves, 'backpack': p.backpack, 'attachment': p.attachment,
            'script': [[m, int(n) if n < OPEN else None, round(float(turn), 1)]
                       for m, n, turn in p.script],
            'on_screen': _span(track.on_screen), 'on_screen_frames': int(track.on_screen.sum()),
            'anomaly_span': _span(track.performing),
            'anomaly_frames': int(track.performing.sum()),
        }
        if observers is not None:
            entry['detected_frames'] = len(observers[i].frames)
        persons.append(entry)
    return {'split': clip.split, 'scene': clip.scene.scene_id, 'frames': clip.n_frames,
            'category': clip.category, 'event': clip.event,
            'event_kind': ANOMALIES.get(clip.event) if clip.event else None,
            'abnormal_frames': int(mask.sum()),
            'kind_frames': {k: int((kinds == c).sum()) for k, c in KIND_CODES.items()},
            'persons': persons}


def plan_meta(plan: BenchmarkPlan) -> Dict:
    """meta.json content computed from the plan by simulation alone (no rendering, no noise)."""
    clips = {}
    for clip in plan.clips:
        tracks = [simulate_person(p, plan.camera, clip.n_frames, plan.config.fps)
                  for p in clip.persons]
        mask, kinds = clip_ground_truth(tracks)
        clips[clip.name] = _clip_meta(clip, tracks, None, mask, kinds)
    return _meta(plan, clips)


def _meta(plan: BenchmarkPlan, clips: Dict[str, Dict]) -> Dict:
    cfg, cam = plan.config, plan.camera
    return {
        'format': 'mgenet_mm synthetic benchmark, ShanghaiTech layout',
        'version': GENERATOR_VERSION,
        'config': config_dict(cfg), 'seed': cfg.seed, 'preset': cfg.preset,
        'size': list(cfg.size), 'fps': cfg.fps,
        'frames_range': list(cfg.frames), 'persons_range': list(cfg.persons),
        'camera': {'focal_px': round(cam.focal, 3), 'height_m': round(cam.cam_height, 3),
                   'horizon_row': round(cam.horizon, 3), 'walk_depth_m': [round(cam.z_min, 3),
                                                                          round(cam.z_max, 3)]},
        'kinds': {str(v): k for k, v in KIND_CODES.items()},
        'kind_rule': 'a frame is abnormal while an anomalous person is on screen (>= 6 of 17 '
                     'keypoints inside the image) and performing its anomaly; with several '
                     'kinds at once the smallest non-zero code wins (motion > appearance > '
                     'scene)',
        'anomalies': ANOMALIES,
        'event_codes': event_names(plan),
        'colour_order': 'BGR',
        'scenes': {s.scene_id: {'type': s.kind, 'description': s.description,
                                'running_normal': s.running_normal} for s in plan.scenes},
        **{split: {n: c for n, c in clips.items() if c['split'] == split} for split in SPLITS},
    }


def event_names(plan: BenchmarkPlan) -> Dict[str, str]:
    """Event code (as a string, JSON's keys) -> ``<kind>/<event>``, the names the per-event AUCs
    are reported under (e.g. ``micro_auc/appearance/carry_box``). ``jog`` is scene-related
    where some scene has running as normal behaviour, a motion anomaly otherwise."""
    running = any(s.running_normal for s in plan.scenes)
    names = {}
    for event, code in EVENT_CODES.items():
        kind = ANOMALIES[event]
        if event == 'jog' and not running:
            kind = 'motion'
        names[str(code)] = f'{kind}/{event}'
    return names


def _generate_one(args) -> Tuple[str, Dict, float]:
    clip, cam, out, fps, quality = args
    start = time.perf_counter()
    meta = generate_clip(clip, cam, out, fps, quality)
    return clip.name, meta, time.perf_counter() - start


#: Version of the generator's output, recorded in meta.json: a benchmark of another version (or
#: config) is a different benchmark. 2: validation split, event labels, larger vehicles and box.
GENERATOR_VERSION = 2

#: Top-level entries of a benchmark root (what ``overwrite`` removes).
LAYOUT_ENTRIES = ('training', 'testing', 'validation', 'pose', 'gt', 'meta.json')


def generate_benchmark(cfg: SyntheticConfig, out: str, workers: int = 1,
                       log: Optional[Callable[[str], None]] = print,
                       overwrite: bool = False) -> Dict:
    """Plan, render and write the whole benchmark, then validate the layout.

    Args:
        cfg: Sizes and seed.
        out: Output root (created).
        workers: Processes rendering clips in parallel (the output does not depend on it).
        log: Progress printer, or None.
        overwrite: Remove an existing benchmark under ``out`` first (only the entries of
            :data:`LAYOUT_ENTRIES`); without it an existing one is an error, since stale clips
            of another configuration would otherwise stay mixed in.

    Returns:
        dict: The content of meta.json.

    Raises:
        FileExistsError: ``out`` already holds benchmark files and ``overwrite`` is False.
    """
    log = log or (lambda msg: None)
    existing = [e for e in LAYOUT_ENTRIES if osp.exists(osp.join(out, e))]
    if existing and not overwrite:
        raise FileExistsError(f'{out} already holds {", ".join(existing)}; remove them or '
                              'overwrite (--overwrite)')
    for entry in existing:
        path = osp.join(out, entry)
        if osp.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    start = time.perf_counter()
    plan = plan_benchmark(cfg)
    log(f'planned {len(plan.split("train"))} training, {len(plan.split("test"))} test and '
        f'{len(plan.split("val"))} validation clips in {time.perf_counter() - start:.1f}s')
    os.makedirs(out, exist_ok=True)
    jobs = [(clip, plan.camera, out, cfg.fps, cfg.jpeg_quality) for clip in plan.clips]
    clips: Dict[str, Dict] = {}
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_generate_one, jobs)
            for k, (name, meta, sec) in enumerate(results):
                clips[name] = meta
                log(f'[{k + 1}/{len(jobs)}] {meta["split"]} {name}: {meta["frames"]} frames, '
                    f'{_describe(meta)} ({sec:.1f}s)')
    else:
        for k, job in enumerate(jobs):
            name, meta, sec = _generate_one(job)
            clips[name] = meta
            log(f'[{k + 1}/{len(jobs)}] {meta["split"]} {name}: {meta["frames"]} frames, '
                f'{_describe(meta)} ({sec:.1f}s)')
    meta = _meta(plan, clips)
    names = json.dumps(meta['event_codes'], indent=1).encode()
    for split in SPLITS:
        if is_evaluation(split) and plan.split(split):
            path = osp.join(out, gt_folder(split, 'events'), EVENT_NAMES_FILE)
            atomic_write_bytes(path, lambda f: f.write(names))
    # Written last and atomically: its presence marks a finished benchmark (make_synthetic.py).
    text = json.dumps(meta, indent=1).encode()
    atomic_write_bytes(osp.join(out, 'meta.json'), lambda f: f.write(text))
    problems = check_layout(out)
    if problems:
        raise RuntimeError('generated benchmark fails its layout check:\n' + '\n'.join(problems))
    log(f'wrote {out} in {time.perf_counter() - start:.1f}s; layout OK')
    return meta


def _describe(meta: Dict) -> str:
    roles = ','.join(p['role'] + ('*' if p['anomalous'] else '') for p in meta['persons'])
    text = f'persons [{roles}]'
    if meta['split'] != 'train':
        text += f', {meta["abnormal_frames"]} abnormal frames'
    return text
