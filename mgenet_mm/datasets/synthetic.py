"""A seeded synthetic human-behaviour anomaly benchmark, written in the ShanghaiTech layout.

No real video-anomaly dataset can be fetched where this project is developed and tested, so the
embedded default is a small benchmark rendered here from a few hundred lines of kinematics and
OpenCV drawing. It is built to exercise all three of MGENet's branches:

* motion anomalies (``sprint``, ``fall``, ``jump``, ``fight``): the skeleton moves in ways never
  seen in training;
* appearance anomalies (``carry_box``, ``carry_panel``, ``scooter``, ``hoverboard``): the skeleton
  is that of ordinary walking (or of standing, on a vehicle), but the person carries a large object
  or rides a vehicle drawn in colours and textures that never occur in training;
* scene-related anomalies (``jog``): running is normal on the sports ground (it occurs there in
  training and in test), and abnormal in every other scene. Its motion is drawn from exactly the
  same distribution in both cases, so only the scene tells them apart.

Layout (``docs/data_layout.md``; frame numbers are 0-based everywhere)::

    <out>/training/videos/<scene>_<clip>.avi
    <out>/testing/frames/<scene>_<clip>/<NNN>.jpg
    <out>/testing/videos/<scene>_<clip>.avi
    <out>/pose/{train,test}/<scene>_<clip>_alphapose_tracked_person.json
    <out>/gt/test_frame_mask/<scene>_<clip>.npy        1 = abnormal
    <out>/gt/test_frame_kinds/<scene>_<clip>.npy       0 normal, 1 motion, 2 appearance, 3 scene
    <out>/meta.json

A frame is abnormal while at least one anomalous person is on screen and performing the anomaly
(six or more of the person's 17 true keypoints inside the image; occlusion by other people does
not clear the label, as a human annotator would still mark the event). When several anomalous
persons of different kinds are active in one frame, the kinds file takes the smallest non-zero
code (motion before appearance before scene): the most "physical" evidence wins. The planner puts
at most one anomalous event in a test clip, so this only matters for clips a user plans by hand.

World model: a pinhole camera at height ``Hc`` looks horizontally along +Z; the ground is Y = 0.
People are articulated 3-D stick figures (COCO-17 joints plus a few helper points) whose limbs are
drawn as thick lines, torso and pelvis as projected convex hulls, the head as a circle: every pixel
of a person is placed by its skeleton, so the pose files and the pixels agree. A part-label map
drawn alongside the colour image decides which joints are visible; hidden joints get a low
confidence and more noise, as a pose estimator would report them.

Everything is deterministic: each clip draws from its own ``numpy`` generator seeded by
``(seed, split, scene, clip)``, so a clip does not depend on the others (and clips can be
generated in parallel without changing a byte).
"""
from __future__ import annotations

import functools
import json
import math
import os
import os.path as osp
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..fileio import atomic_write_bytes

__all__ = [
    'ANOMALIES', 'KIND_CODES', 'PRESETS', 'Camera', 'ClipPlan', 'BenchmarkPlan', 'PersonPlan',
    'PersonTrack', 'SceneSpec', 'SyntheticConfig', 'ClipRenderer', 'check_layout',
    'clip_ground_truth', 'config_dict', 'expected_files', 'generate_benchmark', 'generate_clip', 'make_montage',
    'plan_benchmark', 'plan_meta', 'preset_config', 'scene_background', 'simulate_person',
    'summarize_benchmark'
]

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

COCO_KEYPOINTS = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
                  'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
                  'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle',
                  'right_ankle')

#: Per-frame codes of ``gt/test_frame_kinds``.
KIND_CODES = {'normal': 0, 'motion': 1, 'appearance': 2, 'scene': 3}

#: Anomaly name -> kind. ``jog`` is scene-related only where running is normal in some scene.
ANOMALIES = {
    'sprint': 'motion', 'fall': 'motion', 'jump': 'motion', 'fight': 'motion',
    'carry_box': 'appearance', 'carry_panel': 'appearance', 'scooter': 'appearance',
    'hoverboard': 'appearance', 'jog': 'scene',
}
MOTION_EVENTS = ('fall', 'sprint', 'jump', 'fight')
APPEARANCE_EVENTS = ('carry_box', 'scooter', 'carry_panel', 'hoverboard')
#: Category of the g-th test clip, counted clip-index-major over the scenes. Its length (5) is
#: prime to the usual scene counts, so every scene sees every category.
CATEGORY_CYCLE = ('scene', 'motion', 'appearance', 'appearance', 'motion')

#: Scene types in the order scenes are numbered (01 plaza, 02 street, 03 sports ground, ...).
SCENE_TYPES = ('plaza', 'street', 'sports', 'park')
SCENE_DESCRIPTIONS = {
    'plaza': 'pedestrian plaza: beige/grey paving tiles, benches, planters, lamp posts, '
             'office facades',
    'street': 'street: near and far pavements, asphalt road with a zebra crossing and a centre '
              'line, parked car, trees, shop facades',
    'sports': 'sports ground: red running track with white lane lines, striped grass infield, '
              'fence and grandstand; running is normal here',
    'park': 'park: textured lawn, gravel path, pond, trees and a bench',
}

# Joint indices: COCO-17, then helper points used only for drawing.
(NOSE, LEYE, REYE, LEAR, REAR, LSHO, RSHO, LELB, RELB, LWRI, RWRI, LHIP, RHIP, LKNE, RKNE, LANK,
 RANK) = range(17)
NECK, HEAD, LTOE, RTOE, LWAIST, RWAIST, LHAND, RHAND = range(17, 25)
N_BODY = 25

#: Drawn part ids (label map value = slot * 32 + part id; 0 = background).
PARTS = {'torso': 1, 'pelvis': 2, 'head': 3, 'neck': 4, 'uarm_l': 5, 'farm_l': 6, 'hand_l': 7,
         'uarm_r': 8, 'farm_r': 9, 'hand_r': 10, 'thigh_l': 11, 'shin_l': 12, 'foot_l': 13,
         'thigh_r': 14, 'shin_r': 15, 'foot_r': 16, 'backpack': 17, 'object': 18}
LABEL_STRIDE = 32
#: Joint visibility classes (they set a detection's confidence and noise).
VISIBLE, SELF_OCCLUDED, OCCLUDED, OUTSIDE = 0, 1, 2, 3
#: A joint counts as visible when the label map at its pixel is one of these parts of its own
#: person (e.g. a hip hidden by the person's own forearm is not visible).
JOINT_PARTS = (
    ('head',), ('head',), ('head',), ('head',), ('head',),
    ('torso', 'uarm_l'), ('torso', 'uarm_r'), ('uarm_l', 'farm_l'), ('uarm_r', 'farm_r'),
    ('farm_l', 'hand_l'), ('farm_r', 'hand_r'), ('pelvis', 'thigh_l'), ('pelvis', 'thigh_r'),
    ('thigh_l', 'shin_l'), ('thigh_r', 'shin_r'), ('shin_l', 'foot_l'), ('shin_r', 'foot_r'))
_JOINT_PART_IDS = tuple(frozenset(PARTS[p] for p in parts) for parts in JOINT_PARTS)

# Behaviour modes of the simulator.
MODES = ('stand', 'walk', 'jog', 'sprint', 'fall', 'lie', 'jump', 'flail', 'ride')
MODE_CODE = {m: i for i, m in enumerate(MODES)}
MOVING_MODES = ('walk', 'jog', 'sprint', 'ride')
#: Gait targets per mode, degrees (flight in metres of a 1.7 m person):
#: a_hip, a_knee, knee0, lean, a_arm, arm0, elbow0, a_elbow, abd, flight.
GAIT = {
    'stand': (0, 0, 3, 1, 0, 0, 10, 0, 6, 0),
    'walk': (24, 55, 4, 3, 18, 0, 12, 12, 6, 0),
    'jog': (36, 85, 18, 8, 30, 5, 80, 20, 10, 0.04),
    'sprint': (50, 110, 22, 17, 55, 8, 88, 25, 10, 0.08),
    'fall': (0, 0, 25, 0, 0, 40, 30, 0, 60, 0),
    'lie': (0, 0, 25, 0, 0, 30, 30, 0, 70, 0),
    'jump': (0, 0, 3, 1, 0, 0, 10, 0, 6, 0),
    'flail': (0, 0, 3, 1, 0, 0, 10, 0, 6, 0),
    'ride_scooter': (0, 0, 10, 3, 0, 35, 35, 0, 8, 0),
    'ride_hoverboard': (0, 0, 8, 2, 0, 0, 12, 0, 10, 0),
}
#: Per-frame fraction by which speed approaches its target (a first-order lag).
BRAKE = 0.15
#: Maximal heading change per frame (degrees): runners and riders turn in wider arcs.
TURN_RATE = {'walk': 4.0, 'jog': 3.0, 'sprint': 2.5, 'ride': 2.5}
#: Points of the objects a person may carry or ride, appended after the body points.
OBJECT_POINTS = {'backpack': 8, 'carry_box': 8, 'carry_panel': 4, 'scooter': 13,
                 'hoverboard': 10}
VEHICLES = ('scooter', 'hoverboard')

# Palettes (BGR). Clothing colours are muted; the objects of appearance anomalies use saturated
# colours and textures that appear nowhere else (neither on clothes nor in the backgrounds).
SHIRTS = ((90, 60, 30), (60, 90, 40), (40, 40, 120), (128, 128, 128), (220, 220, 215),
          (150, 180, 200), (60, 110, 110), (120, 120, 40), (200, 160, 120), (40, 70, 110),
          (35, 35, 35), (50, 50, 160), (120, 70, 100), (70, 150, 190), (160, 150, 190))
TROUSERS = ((110, 60, 30), (30, 30, 30), (100, 100, 100), (120, 160, 180), (40, 60, 90),
            (70, 40, 20), (60, 90, 80), (170, 170, 170))
SKINS = ((170, 200, 240), (140, 180, 225), (100, 140, 190), (70, 100, 150), (50, 70, 110))
HAIRS = ((20, 20, 25), (30, 45, 70), (40, 70, 110), (150, 150, 150), (90, 150, 200))
SHOES = ((25, 25, 25), (230, 230, 230), (40, 60, 90), (90, 90, 90))
BAGS = ((45, 45, 45), (60, 80, 100), (90, 70, 60), (70, 90, 70))
OBJECT_COLOURS = {  # (main, second, dark) per object
    'carry_box': ((0, 215, 255), (200, 30, 200), (20, 20, 20)),
    'carry_panel': ((0, 220, 255), (15, 15, 15), (0, 120, 160)),
    'scooter': ((210, 40, 230), (40, 230, 120), (20, 20, 20)),
    'hoverboard': ((230, 200, 20), (20, 120, 255), (20, 20, 20)),
}


# --------------------------------------------------------------------------------------------
# Configuration and camera
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes of a synthetic benchmark.

    Attributes:
        seed (int): Master seed; the same seed gives byte-identical files.
        scenes (int): Number of scenes (types cycle plaza, street, sports, park).
        train_clips (int): Training videos per scene (normal behaviour only).
        test_clips (int): Test clips per scene.
        frames (tuple): (min, max) frames per clip.
        size (tuple): (width, height) of the frames.
        persons (tuple): (min, max) persons per clip over its whole duration (about 2-4 of them
            are on screen at once with the defaults).
        fps (int): Frame rate of the written videos and of the simulation.
        jpeg_quality (int): Quality of the test frame JPEGs.
        preset (str): Name of the preset the sizes came from (recorded in meta.json).
    """
    seed: int = 0
    scenes: int = 3
    train_clips: int = 6
    test_clips: int = 4
    frames: Tuple[int, int] = (160, 240)
    size: Tuple[int, int] = (320, 240)
    persons: Tuple[int, int] = (3, 5)
    fps: int = 25
    jpeg_quality: int = 90
    preset: str = 'default'


PRESETS = {
    'tiny': dict(scenes=3, train_clips=1, test_clips=1, frames=(72, 80), persons=(2, 3)),
    'default': dict(scenes=3, train_clips=6, test_clips=4, frames=(160, 240), persons=(3, 5)),
}


def preset_config(name: str = 'default', **overrides) -> SyntheticConfig:
    """The config of a preset (``tiny`` or ``default``) with some fields overridden.

    Args:
        name (str): Preset name.
        **overrides: Fields of :class:`SyntheticConfig`; ``None`` values are ignored.

    Returns:
        SyntheticConfig: The validated config.
    """
    if name not in PRESETS:
        raise ValueError(f'unknown preset {name!r}; choose one of {sorted(PRESETS)}')
    values = dict(PRESETS[name], preset=name)
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = SyntheticConfig(**values)
    if cfg.scenes < 1 or cfg.train_clips < 0 or cfg.test_clips < 0:
        raise ValueError(f'need >= 1 scene and non-negative clip counts, got {cfg}')
    if not 24 <= cfg.frames[0] <= cfg.frames[1]:
        raise ValueError(f'frames must be (min, max) with 24 <= min <= max, got {cfg.frames}')
    if not 1 <= cfg.persons[0] <= cfg.persons[1]:
        raise ValueError(f'persons must be (min, max) with 1 <= min <= max, got {cfg.persons}')
    if cfg.size[0] < 96 or cfg.size[1] < 72:
        raise ValueError(f'frame size {cfg.size} is too small (>= 96x72)')
    return cfg


@dataclass(frozen=True)
class Camera:
    """A pinhole camera at height ``cam_height`` looking along +Z, horizon at row ``horizon``.

    World axes: X to the image right, Y up (ground Y = 0), Z away from the camera, in metres.
    """
    width: int
    height: int
    focal: float
    cam_height: float
    horizon: float
    z_min: float
    z_max: float

    @classmethod
    def for_size(cls, width: int, height: int) -> 'Camera':
        """A camera under which a 1.7 m person is ~0.38 H tall near and ~0.21 H far.

        At 320x240 that is 90 and 50 pixels, so a 64x64 person tube covers a person.
        """
        h_near, h_far = 0.385 * height, 0.21 * height
        z_near = 8.0
        focal = h_near * z_near / 1.7
        horizon = 0.17 * height
        cam_height = (0.97 * height - horizon) * z_near / focal
        return cls(width, height, focal, cam_height, horizon, z_near * 0.97,
                   z_near * h_near / h_far)

    @property
    def half_width_slope(self) -> float:
        """Visible half-width (metres) per metre of depth."""
        return self.width / 2 / self.focal

    @property
    def position(self) -> np.ndarray:
        return np.array([0.0, self.cam_height, 0.0])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 2) pixel coordinates (x right, y down)."""
        z = points[..., 2]
        x = self.width / 2 + self.focal * points[..., 0] / z
        y = self.horizon + self.focal * (self.cam_height - points[..., 1]) / z
        return np.stack([x, y], axis=-1)

    def ground_z_at_row(self, row: float) -> float:
        """Depth of the ground seen at an image row below the horizon."""
        return self.focal * self.cam_height / max(row - self.horizon, 1e-3)


# --------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SceneSpec:
    """One static camera view: ``scene_id`` '01', its type, and whether running is normal."""
    scene_id: str
    kind: str
    seed: int
    description: str
    running_normal: bool


@dataclass
class PersonPlan:
    """Everything needed to simulate one person, drawn at planning time.

    The person appears at ``start_frame`` (negative: already walking before the clip starts) at
    ``start_xz`` with heading ``heading`` (radians; 0 = away from the camera, +pi/2 = to the
    image right) and follows ``script``: a list of ``(mode, frames, turn_degrees)`` segments, the
    turn applied to the planned heading when the segment starts. The last segment is open.
    ``anomaly_modes`` are the modes in which an anomalous person counts as performing its anomaly
    (an attachment anomaly counts all the time); ``jump_period`` is the frames per jump of a
    ``jump`` segment (a whole number of jumps).
    """
    pid: int
    seed: int
    role: str
    anomaly: Optional[str]
    kind: str
    height: float
    colours: Dict[str, Tuple[int, int, int]]
    long_sleeves: bool
    backpack: bool
    attachment: Optional[str]
    start_frame: int
    start_xz: Tuple[float, float]
    heading: float
    speeds: Dict[str, float]
    script: List[Tuple[str, int, float]]
    anomaly_modes: Tuple[str, ...] = ()
    jump_period: int = 0

    @property
    def anomalous(self) -> bool:
        return self.anomaly is not None


@dataclass
class ClipPlan:
    """One clip: name, split ('train' or 'test'), scene, length, persons and its event."""
    name: str
    split: str
    scene: SceneSpec
    n_frames: int
    seed: int
    persons: List[PersonPlan]
    category: str = 'normal'
    event: Optional[str] = None


@dataclass
class BenchmarkPlan:
    """The whole benchmark: config, camera, scenes and clips (train first, then test)."""
    config: SyntheticConfig
    camera: Camera
    scenes: List[SceneSpec]
    clips: List[ClipPlan]

    def split(self, split: str) -> List[ClipPlan]:
        return [c for c in self.clips if c.split == split]


def _scene_specs(cfg: SyntheticConfig) -> List[SceneSpec]:
    specs = []
    for i in range(cfg.scenes):
        kind = SCENE_TYPES[i % len(SCENE_TYPES)]
        seed = int(np.random.default_rng([cfg.seed, 11, i]).integers(2**31))
        specs.append(SceneSpec(f'{i + 1:02d}', kind, seed, SCENE_DESCRIPTIONS[kind],
                               kind == 'sports'))
    return specs


def _heading(rng: np.random.Generator, lateral: bool = False) -> float:
    """Walking direction: mostly across the view, sometimes any direction.

    Every role (normal or not) uses this same distribution, so direction is no cue to anomaly.
    """
    if lateral or rng.random() < 0.65:
        side = 1.0 if rng.random() < 0.5 else -1.0
        return side * math.pi / 2 + rng.normal(0, math.radians(10 if lateral else 18))
    return float(rng.uniform(-math.pi, math.pi))


def _route(rng: np.random.Generator, cam: Camera, *, lateral: bool = False,
           x_margin: float = 0.4, entry_side_frac: Optional[Tuple[float, float]] = None,
           z_range: Optional[Tuple[float, float]] = None,
           heading: Optional[float] = None) -> Tuple[Tuple[float, float], Tuple[float, float],
                                                     float, float]:
    """A straight approach to an anchor point P from beyond a side edge of the view.

    Args:
        rng: Generator.
        cam: Camera.
        lateral: Draw a near-lateral heading.
        x_margin: Keep P this far (metres) inside the visible edges.
        entry_side_frac: Place P at this (min, max) fraction of the view width measured from the
            side the person enters from (runners: near the entry side, so the run crosses the view).
        z_range: Depth range of P.
        heading: A fixed heading instead of a random one.

    Returns:
        tuple: entry (x, z), anchor P (x, z), heading, distance entry -> P.
    """
    k = cam.half_width_slope
    z_lo, z_hi = z_range or (cam.z_min + 0.2, cam.z_max - 0.2)
    for attempt in range(64):
        theta = heading if heading is not None else _heading(rng, lateral or attempt > 40)
        sin_t = math.sin(theta)
        if abs(sin_t) < 0.35 or abs(sin_t) + k * math.cos(theta) < 0.15:
            continue  # would enter through the far or near end of the walkable band
        sigma = 1.0 if sin_t >= 0 else -1.0
        z_a = float(rng.uniform(z_lo, z_hi))
        half = k * z_a - x_margin
        if half <= 0:
            continue
        if entry_side_frac is None:
            x_a = float(rng.uniform(-half, half))
        else:
            frac = rng.uniform(*entry_side_frac)
            x_a = float(-sigma * half + sigma * 2 * half * frac)
        entry, dist = _entry_point(cam, (x_a, z_a), theta)
        if cam.z_min <= entry[1] <= cam.z_max:
            return entry, (x_a, z_a), theta, dist
    raise RuntimeError('could not plan a route (camera too narrow?)')


#: People enter and leave this far (metres) beyond the visible edges, i.e. fully off screen.
ENTRY_MARGIN = 0.7


def _entry_point(cam: Camera, anchor: Tuple[float, float],
                 theta: float) -> Tuple[Tuple[float, float], float]:
    """Where a straight walk with heading theta towards ``anchor`` crosses into the view.

    Walking back from the anchor along -heading, the side edge of the view (which widens with
    depth, x = +-(k z + margin)) is reached after ``dist`` metres, solved in closed form.

    Returns:
        tuple: entry (x, z) and dist.
    """
    k = cam.half_width_slope
    sin_t, cos_t = math.sin(theta), math.cos(theta)
    sigma = 1.0 if sin_t >= 0 else -1.0
    dist = (k * anchor[1] + ENTRY_MARGIN + sigma * anchor[0]) / (abs(sin_t) + k * cos_t)
    return (anchor[0] - dist * sin_t, anchor[1] - dist * cos_t), dist


def _new_person(rng: np.random.Generator, pid: int, used_shirts: set, role: str,
                anomaly: Optional[str] = None, kind: str = 'normal',
                attachment: Optional[str] = None) -> PersonPlan:
    """A person with random body, clothing and speeds; route and script are filled in later."""
    free = [i for i in range(len(SHIRTS)) if i not in used_shirts] or list(range(len(SHIRTS)))
    shirt = int(rng.choice(free))
    used_shirts.add(shirt)
    trousers = TROUSERS[int(rng.integers(len(TROUSERS)))]
    if trousers == SHIRTS[shirt]:  # keep shirt and trousers apart so parts stay distinguishable
        trousers = TROUSERS[(TROUSERS.index(trousers) + 1) % len(TROUSERS)]
    colours = dict(shirt=SHIRTS[shirt], trousers=trousers,
                   skin=SKINS[int(rng.integers(len(SKINS)))],
                   hair=HAIRS[int(rng.integers(len(HAIRS)))],
                   shoes=SHOES[int(rng.integers(len(SHOES)))],
                   bag=BAGS[int(rng.integers(len(BAGS)))])
    speeds = dict(walk=float(rng.uniform(0.95, 1.6)), jog=float(rng.uniform(2.3, 3.3)),
                  sprint=float(rng.uniform(4.8, 6.2)), ride=float(rng.uniform(2.6, 4.2)))
    return PersonPlan(
        pid=pid, seed=int(rng.integers(2**31)), role=role, anomaly=anomaly, kind=kind,
        height=float(np.clip(rng.normal(1.72, 0.08), 1.55, 1.92)), colours=colours,
        long_sleeves=bool(rng.random() < 0.5), backpack=bool(rng.random() < 0.25),
        attachment=attachment, start_frame=0, start_xz=(0.0, 0.0), heading=0.0, speeds=speeds,
        script=[])


OPEN = 10**6  # length of an open-ended last segment


def _set_route(p: PersonPlan, entry, heading: float, dist: float, anchor_frame: float,
               pre_mode: str, post: List[Tuple[str, int, float]], fps: int) -> None:
    """Start the person at ``entry`` so that it reaches the anchor at ``anchor_frame``."""
    pre_frames = max(1, int(round(dist / p.speeds[pre_mode] * fps)))
    p.start_frame = int(round(anchor_frame)) - pre_frames
    p.start_xz = (float(entry[0]), float(entry[1]))
    p.heading = float(heading)
    p.script = [(pre_mode, pre_frames, 0.0)] + post


def _plan_normal(rng: np.random.Generator, cam: Camera, p: PersonPlan, n_frames: int, fps: int,
                 role: str) -> None:
    """Routes and scripts of normal roles: walk, loiter, stand, jog."""
    p.role = role
    if role == 'stand':
        z = float(rng.uniform(cam.z_min + 0.3, cam.z_max - 0.3))
        half = cam.half_width_slope * z - 0.5
        p.start_xz = (float(rng.uniform(-half, half)), z)
        p.heading = float(rng.uniform(-math.pi, math.pi))
        p.start_frame = -5
        if rng.random() < 0.5:
            p.script = [('stand', OPEN, 0.0)]
        else:  # stands, turns towards the view's side and walks off
            away = (1 if rng.random() < 0.5 else -1) * math.pi / 2
            turn = math.degrees(math.atan2(math.sin(away - p.heading), math.cos(away - p.heading)))
            p.script = [('stand', int(rng.integers(n_frames // 4, n_frames)) + 5, 0.0),
                        ('walk', OPEN, turn)]
        return
    entry, _, theta, dist = _route(rng, cam)
    t_anchor = rng.uniform(0, n_frames - 1)
    if role == 'walk':
        if rng.random() < 0.3:
            post = [('walk', int(rng.integers(20, 80)), 0.0),
                    ('walk', OPEN, float(rng.normal(0, 45)))]
        else:
            post = [('walk', OPEN, 0.0)]
        _set_route(p, entry, theta, dist, t_anchor, 'walk', post, fps)
    elif role == 'loiter':
        post = [('stand', int(rng.integers(20, 70)), 0.0),
                ('walk', OPEN, float(rng.uniform(-60, 60)))]
        _set_route(p, entry, theta, dist, t_anchor, 'walk', post, fps)
    elif role == 'jog':
        _plan_runner(rng, cam, p, 'jog', t_anchor, fps)
    else:
        raise ValueError(role)


def _plan_runner(rng: np.random.Generator, cam: Camera, p: PersonPlan, mode: str,
                 t_anchor: float, fps: int) -> None:
    """Jogger or sprinter: walks in and starts running at the anchor, or runs in."""
    if rng.random() < 0.5:
        entry, _, theta, dist = _route(rng, cam, entry_side_frac=(0.05, 0.4))
        _set_route(p, entry, theta, dist, t_anchor, 'walk', [(mode, OPEN, 0.0)], fps)
    else:
        entry, _, theta, dist = _route(rng, cam)
        post = [(mode, OPEN, 0.0)]
        if mode == 'jog' and rng.random() < 0.4:  # slows down to a walk
            post = [(mode, int(rng.integers(15, 50)), 0.0), ('walk', OPEN, 0.0)]
        _set_route(p, entry, theta, dist, t_anchor, mode, post, fps)
    p.anomaly_modes = (mode,) if p.anomalous else ()


def _plan_event(rng: np.random.Generator, cam: Camera, event: str, kind: str, n_frames: int,
                fps: int, pid: int, used_shirts: set) -> List[PersonPlan]:
    """The anomalous person(s) of one test-clip event."""
    if event in ('carry_box', 'carry_panel', 'scooter', 'hoverboard'):
        p = _new_person(rng, pid, used_shirts, event, event, kind, attachment=event)
        entry, _, theta, dist = _route(rng, cam)
        mode = 'ride' if event in VEHICLES else 'walk'
        enter = rng.uniform(0.15, 0.5) * n_frames
        t_anchor = enter + dist / p.speeds[mode] * fps
        _set_route(p, entry, theta, dist, t_anchor, mode, [(mode, OPEN, 0.0)], fps)
        return [p]
    if event in ('sprint', 'jog'):
        p = _new_person(rng, pid, used_shirts, event, event, kind)
        t_a = rng.uniform(0.2, 0.6) * n_frames
        _plan_runner(rng, cam, p, event, t_a, fps)
        runners = [p]
        if event == 'jog' and rng.random() < 0.6:
            # Joggers often come in twos; a runner crosses the view in 2-4 s, so this also gives
            # the scene-related kind about as many frames as the others.
            q = _new_person(rng, pid + 1, used_shirts, event, event, kind)
            _plan_runner(rng, cam, q, event, min(t_a + rng.uniform(15, 60), n_frames - 10), fps)
            runners.append(q)
        return runners
    t_a = rng.uniform(0.2, 0.5) * n_frames
    if event == 'fall':
        p = _new_person(rng, pid, used_shirts, event, event, kind)
        entry, _, theta, dist = _route(rng, cam, lateral=True, x_margin=1.5,
                                       z_range=(cam.z_min + 0.6, cam.z_max - 0.6))
        post = [('fall', int(rng.integers(14, 21)), 0.0), ('lie', OPEN, 0.0)]
        _set_route(p, entry, theta, dist, t_a, 'walk', post, fps)
        p.anomaly_modes = ('fall', 'lie')
        return [p]
    if event == 'jump':
        p = _new_person(rng, pid, used_shirts, event, event, kind)
        entry, _, theta, dist = _route(rng, cam, lateral=True, x_margin=0.8,
                                       z_range=(cam.z_min + 0.5, cam.z_max - 0.5))
        period = int(round(rng.uniform(0.8, 1.0) * fps))
        post = [('stand', int(rng.integers(5, 12)), 0.0),
                ('jump', period * int(rng.integers(2, 5)), 0.0),
                ('stand', int(rng.integers(8, 20)), 0.0), ('walk', OPEN, 0.0)]
        _set_route(p, entry, theta, dist, t_a, 'walk', post, fps)
        p.anomaly_modes = ('jump',)
        p.jump_period = period
        return [p]
    if event == 'fight':
        a = _new_person(rng, pid, used_shirts, event, event, kind)
        b = _new_person(rng, pid + 1, used_shirts, event, event, kind)
        flail = int(rng.integers(int(1.8 * fps), int(3.4 * fps)))
        # Walkers brake with a first-order lag (speed x (1 - BRAKE) per frame) and so stop this far
        # past their anchor; plan the anchors apart by that, to end ~0.75 m apart.
        overshoot = sum(q.speeds['walk'] / fps * (1 - BRAKE) / BRAKE for q in (a, b))
        gap = 0.75 + overshoot
        for _ in range(64):
            entry_a, anchor_a, theta, dist_a = _route(rng, cam, lateral=True, x_margin=1.2,
                                                      z_range=(cam.z_min + 0.6, cam.z_max - 0.6))
            anchor_b = (anchor_a[0] + gap * math.sin(theta), anchor_a[1] + gap * math.cos(theta))
            theta_b = theta + math.pi  # comes from the other side, faces the first
            entry_b, dist_b = _entry_point(cam, anchor_b, theta_b)
            if cam.z_min <= entry_b[1] <= cam.z_max and dist_b > 0:
                break
        turn = float(rng.choice([-90.0, 90.0]))
        for person, entry, th, dist in ((a, entry_a, theta, dist_a), (b, entry_b, theta_b, dist_b)):
            post = [('stand', 4, 0.0), ('flail', flail, 0.0), ('stand', 12, 0.0),
                    ('walk', OPEN, turn)]
            _set_route(person, entry, th, dist, t_a, 'walk', post, fps)
            person.anomaly_modes = ('flail',)
        return [a, b]
    raise ValueError(f'unknown event {event!r}')


def _plan_clip(cfg: SyntheticConfig, cam: Camera, scene: SceneSpec, split: str, index: int,
               scene_index: int, category: str = 'normal', event: Optional[str] = None,
               event_kind: str = 'normal') -> ClipPlan:
    split_code = 0 if split == 'train' else 1
    clip_seed = int(np.random.default_rng([cfg.seed, 23, split_code, scene_index, index])
                    .integers(2**31))
    rng = np.random.default_rng(clip_seed)
    n_frames = int(rng.integers(cfg.frames[0], cfg.frames[1] + 1))
    name = f'{scene.scene_id}_{index + 1:03d}' if split == 'train' else \
        f'{scene.scene_id}_{index + 1:04d}'
    n_persons = int(rng.integers(cfg.persons[0], cfg.persons[1] + 1))
    used_shirts: set = set()
    persons: List[PersonPlan] = []
    if event is not None:
        for attempt in range(32):
            shirts_before = set(used_shirts)
            candidates = _plan_event(rng, cam, event, event_kind, n_frames, cfg.fps, 1,
                                     used_shirts)
            # Keep the event only if it is on screen long enough to be scored by a window model.
            shown = sum(int((simulate_person(p, cam, n_frames, cfg.fps).performing).sum())
                        for p in candidates)
            if shown >= min(30, n_frames // 3):
                persons = candidates
                break
            used_shirts.clear()
            used_shirts.update(shirts_before)
        else:
            raise RuntimeError(f'{name}: could not place a visible {event} event')
    if scene.running_normal:
        roles, probs = ('walk', 'loiter', 'stand', 'jog'), (0.35, 0.1, 0.1, 0.45)
    else:
        roles, probs = ('walk', 'loiter', 'stand'), (0.6, 0.2, 0.2)
    n_normal = max(1, n_persons - len(persons))
    forced_joggers = 0
    if split == 'test' and scene.running_normal:
        # Normal running in the sports ground at test time too, so that a model that flags all
        # running is punished.
        forced_joggers = 2 if category == 'normal' else 1
    for j in range(n_normal):
        p = _new_person(rng, len(persons) + 1, used_shirts, 'walk')
        role = 'jog' if j < forced_joggers else str(rng.choice(roles, p=probs))
        _plan_normal(rng, cam, p, n_frames, cfg.fps, role)
        persons.append(p)
    for i, p in enumerate(persons):
        p.pid = i + 1
    return ClipPlan(name, split, scene, n_frames, clip_seed, persons, category, event)


def plan_benchmark(cfg: SyntheticConfig) -> BenchmarkPlan:
    """Plan every clip (who walks where, doing what, wearing what) without rendering anything.

    Test clips get one event each by :data:`CATEGORY_CYCLE`: a scene-related ``jog`` (in a scene
    where running is normal the slot becomes a normal clip with joggers), or the next motion or
    appearance anomaly in rotation. Every sports-ground test clip has normal joggers.

    Args:
        cfg: Sizes and seed.

    Returns:
        BenchmarkPlan: the plan; :func:`generate_benchmark` renders it.
    """
    cam = Camera.for_size(*cfg.size)
    scenes = _scene_specs(cfg)
    any_running_scene = any(s.running_normal for s in scenes)
    clips = [_plan_clip(cfg, cam, scene, 'train', j, i)
             for i, scene in enumerate(scenes) for j in range(cfg.train_clips)]
    counters = {'motion': 0, 'appearance': 0}
    g = 0
    test: Dict[Tuple[int, int], ClipPlan] = {}
    for j in range(cfg.test_clips):
        for i, scene in enumerate(scenes):
            category = CATEGORY_CYCLE[g % len(CATEGORY_CYCLE)]
            g += 1
            event, kind = None, 'normal'
            if category == 'scene':
                if scene.running_normal:
                    category = 'normal'
                else:
                    event = 'jog'
                    kind = 'scene' if any_running_scene else 'motion'
                    category = kind
            elif category == 'motion':
                event = MOTION_EVENTS[counters['motion'] % len(MOTION_EVENTS)]
                counters['motion'] += 1
                kind = 'motion'
            elif category == 'appearance':
                event = APPEARANCE_EVENTS[counters['appearance'] % len(APPEARANCE_EVENTS)]
                counters['appearance'] += 1
                kind = 'appearance'
            test[(i, j)] = _plan_clip(cfg, cam, scene, 'test', j, i, category, event, kind)
    clips += [test[(i, j)] for i in range(len(scenes)) for j in range(cfg.test_clips)]
    return BenchmarkPlan(cfg, cam, scenes, clips)


# --------------------------------------------------------------------------------------------
# Kinematics
# --------------------------------------------------------------------------------------------

@dataclass
class PersonTrack:
    """A simulated person over a clip's frames (NaN / False where the person is not in the world).

    Attributes:
        person: The plan.
        present: (F,) the person exists (between its start and its exit).
        points: (F, NP, 3) world points: 25 body points, then object points (see ``slices``).
        fwd, left, up: (F, 3) body axes in the world (rotated with a fall).
        mode: (F,) mode codes (:data:`MODES`), -1 where absent.
        root: (F, 3) ground point under the person.
        image: (F, NP, 2) projected points; depth: (F, NP) their Z.
        on_screen: (F,) at least 6 of the 17 keypoints inside the image.
        performing: (F,) on screen and performing the person's anomaly.
        slices: object name -> slice of ``points``.
    """
    person: PersonPlan
    present: np.ndarray
    points: np.ndarray
    fwd: np.ndarray
    left: np.ndarray
    up: np.ndarray
    mode: np.ndarray
    root: np.ndarray
    image: np.ndarray
    depth: np.ndarray
    on_screen: np.ndarray
    performing: np.ndarray
    slices: Dict[str, slice] = field(default_factory=dict)


def _rot_x(v: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate (N, 3) body-frame vectors about the lateral axis; positive tips up towards forward."""
    c, s = np.cos(angle), np.sin(angle)
    out = v.copy()
    out[:, 1] = v[:, 1] * c - v[:, 2] * s
    out[:, 2] = v[:, 2] * c + v[:, 1] * s
    return out


def _smooth_process(rng: np.random.Generator, n: int) -> Callable[[np.ndarray], np.ndarray]:
    """n smooth pseudo-random signals in [-1, 1] (sums of sinusoids of 1.2-3.5 Hz)."""
    freqs = rng.uniform(1.2, 3.5, size=(n, 3))
    phases = rng.uniform(0, 2 * math.pi, size=(n, 3))
    weights = rng.uniform(0.3, 1.0, size=(n, 3))
    weights /= weights.sum(axis=1, keepdims=True)

    def value(t: np.ndarray) -> np.ndarray:  # (N,) seconds -> (n, N)
        return (weights[:, :, None] * np.sin(2 * math.pi * freqs[:, :, None] * t[None, None]
                                             + phases[:, :, None])).sum(axis=1)
    return value


def _box_corners(centre, half) -> np.ndarray:
    """8 corners of an axis-aligned box, corner i has signs of bits (x: 1, y: 2, z: 4)."""
    signs = np.array([[1 if i & 1 else -1, 1 if i & 2 else -1, 1 if i & 4 else -1]
                      for i in range(8)], dtype=np.float64)
    return np.asarray(centre, dtype=np.float64) + signs * np.asarray(half, dtype=np.float64)


def _body_local(ang: Dict[str, np.ndarray], s: float, person: PersonPlan,
                panel_side: float) -> Tuple[np.ndarray, Dict[str, slice]]:
    """Body (and carried objects) in the body frame: x left, y up (ground 0), z forward.

    Args:
        ang: Per-frame angles in degrees (hip_l, knee_l, arm_l, elbow_l, abd_l, ... , lean).
        s: Height / 1.7 m.
        person: The plan (for the objects).
        panel_side: +1 or -1, side of a carried panel.

    Returns:
        tuple: (N, NP, 3) points and object slices.
    """
    n = len(ang['lean'])
    extra = []
    slices: Dict[str, slice] = {}
    start = N_BODY
    for name in ('backpack', person.attachment):
        if name is None or (name == 'backpack' and not person.backpack):
            continue
        slices[name] = slice(start, start + OBJECT_POINTS[name])
        start += OBJECT_POINTS[name]
        extra.append(name)
    pts = np.zeros((n, start, 3))
    hip_h = 0.92 * s
    down = np.tile([0.0, -1.0, 0.0], (n, 1))
    fwd = np.tile([0.0, -0.27, 0.96], (n, 1))
    for side, key, (i_hip, i_knee, i_ank, i_toe) in ((1, 'l', (LHIP, LKNE, LANK, LTOE)),
                                                     (-1, 'r', (RHIP, RKNE, RANK, RTOE))):
        hip = np.array([side * 0.10 * s, hip_h, 0.0])
        th = np.radians(ang['hip_' + key])
        shin_angle = th - np.radians(ang['knee_' + key])
        knee = hip + 0.43 * s * _rot_x(down, -th)
        ankle = knee + 0.42 * s * _rot_x(down, -shin_angle)
        pts[:, i_hip] = hip
        pts[:, i_knee] = knee
        pts[:, i_ank] = ankle
        pts[:, i_toe] = ankle + 0.16 * s * _rot_x(fwd, -shin_angle)
    # Upper body relative to the hip centre, leaned forward as one block.
    centre = np.array([0.0, hip_h, 0.0])
    rel = np.zeros((n, start, 3))
    head = np.array([0.0, 0.66 * s, 0.02 * s])
    fixed = {LWAIST: (0.14 * s, 0.12 * s, 0), RWAIST: (-0.14 * s, 0.12 * s, 0),
             LSHO: (0.19 * s, 0.48 * s, 0), RSHO: (-0.19 * s, 0.48 * s, 0),
             NECK: (0, 0.55 * s, 0), HEAD: head,
             NOSE: head + (0, -0.02 * s, 0.105 * s),
             LEYE: head + (0.035 * s, 0.025 * s, 0.09 * s),
             REYE: head + (-0.035 * s, 0.025 * s, 0.09 * s),
             LEAR: head + (0.10 * s, 0, -0.01 * s), REAR: head + (-0.10 * s, 0, -0.01 * s)}
    for index, value in fixed.items():
        rel[:, index] = value
    for side, key, (i_sho, i_elb, i_wri, i_hand) in ((1, 'l', (LSHO, LELB, LWRI, LHAND)),
                                                     (-1, 'r', (RSHO, RELB, RWRI, RHAND))):
        a = np.radians(ang['arm_' + key])
        e = np.radians(ang['elbow_' + key])
        b = np.radians(ang['abd_' + key])
        base = np.stack([side * np.sin(b), -np.cos(b), np.zeros(n)], axis=1)
        upper = _rot_x(base, -a)
        lower = _rot_x(base, -(a + e))
        rel[:, i_elb] = rel[:, i_sho] + 0.29 * s * upper
        rel[:, i_wri] = rel[:, i_elb] + 0.26 * s * lower
        rel[:, i_hand] = rel[:, i_wri] + 0.07 * s * lower
    upper_idx = [NOSE, LEYE, REYE, LEAR, REAR, LSHO, RSHO, LELB, RELB, LWRI, RWRI, NECK, HEAD,
                 LWAIST, RWAIST, LHAND, RHAND]
    if 'backpack' in slices:
        rel[:, slices['backpack']] = _box_corners((0, 0.33 * s, -0.18 * s), (0.15, 0.19, 0.07))
        upper_idx += list(range(slices['backpack'].start, slices['backpack'].stop))
    if person.attachment == 'carry_box':
        rel[:, slices['carry_box']] = _box_corners((0, 0.24 * s, 0.34 * s), (0.3, 0.25, 0.2))
        upper_idx += list(range(slices['carry_box'].start, slices['carry_box'].stop))
    elif person.attachment == 'carry_panel':
        x = panel_side * 0.3 * s
        rel[:, slices['carry_panel']] = np.array(
            [[x, -0.3 * s, -0.6], [x, -0.3 * s, 0.6], [x, 0.55 * s, 0.6], [x, 0.55 * s, -0.6]])
        upper_idx += list(range(slices['carry_panel'].start, slices['carry_panel'].stop))
    idx = np.array(upper_idx)
    flat = rel[:, idx].reshape(-1, 3)
    leaned = _rot_x(flat, np.repeat(np.radians(ang['lean']), len(idx)))
    pts[:, idx] = leaned.reshape(n, len(idx), 3) + centre
    return pts, slices


def simulate_person(person: PersonPlan, cam: Camera, n_frames: int, fps: int) -> PersonTrack:
    """Run a person's script and compute its body and object points for frames 0..n_frames-1.

    The state (position, heading, speed, gait parameters, gait phase) is integrated frame by frame
    from ``person.start_frame``; gait parameters follow their mode's targets with a first-order
    lag, so changes of behaviour blend over a few frames instead of jumping. Poses are then
    computed for all frames at once.

    Args:
        person: The plan.
        cam: Camera (for the walkable depth range, the view edges and projection).
        n_frames: Frames of the clip.
        fps: Frame rate.

    Returns:
        PersonTrack: the simulated track.
    """
    rng = np.random.default_rng([person.seed, 1])
    s = person.height / 1.7
    amp = rng.uniform(0.88, 1.12, size=4)  # hip, knee, arm, elbow amplitude styles
    amp[2] *= rng.uniform(0.75, 1.3)
    lean_bias = rng.normal(0, 1.5)
    flail = _smooth_process(rng, 10)
    jump_height = rng.uniform(0.35, 0.5) * s
    fall_sign = 1.0 if rng.random() < 0.5 else -1.0
    fall_max = rng.uniform(86, 90)
    panel_side = 1.0 if rng.random() < 0.5 else -1.0
    vehicle = person.attachment if person.attachment in VEHICLES else None

    def gait_target(mode: str) -> np.ndarray:
        key = f'ride_{vehicle}' if mode == 'ride' else mode
        g = np.array(GAIT[key], dtype=np.float64)
        g[[0, 1, 4, 7]] *= amp
        if mode in ('walk', 'jog', 'sprint'):
            g[3] += lean_bias
        return g

    def speed_target(mode: str) -> float:
        return person.speeds[mode] if mode in MOVING_MODES else 0.0

    def cycle_hz(mode: str, v: float) -> float:
        if mode == 'walk':
            return 0.93 * max(v / 1.35, 0.05) ** 0.55 / math.sqrt(s)
        if mode == 'jog':
            return 1.38 * max(v / 2.8, 0.05) ** 0.35 / math.sqrt(s)
        if mode == 'sprint':
            return 1.8 * max(v / 5.8, 0.05) ** 0.35 / math.sqrt(s)
        return 0.0

    # Expand the script into per-frame (mode, segment start, turn) lazily.
    seg_bounds = []
    t = person.start_frame
    for mode, length, turn in person.script:
        seg_bounds.append((t, min(t + length, n_frames + 1), mode, turn))
        t += length
        if t > n_frames:
            break

    k = cam.half_width_slope
    x, z = person.start_xz
    theta = theta_plan = person.heading
    first_mode = person.script[0][0]
    v = speed_target(first_mode)
    g = gait_target(first_mode)
    phase = rng.uniform(0, 2 * math.pi)
    jump_env = flail_env = 0.0
    entered = False
    records = {key: np.full(n_frames, np.nan) for key in
               ('x', 'z', 'theta', 'phase', 'jump_psi', 'jump_env', 'flail_env', 'gamma')}
    params = np.full((n_frames, 10), np.nan)
    mode_codes = np.full(n_frames, -1, dtype=np.int8)
    present = np.zeros(n_frames, dtype=bool)
    seg_i = 0
    t = person.start_frame
    while t < n_frames and seg_i < len(seg_bounds):
        seg_start, seg_end, mode, turn = seg_bounds[seg_i]
        if t >= seg_end:
            seg_i += 1
            if seg_i < len(seg_bounds):
                theta_plan += math.radians(seg_bounds[seg_i][3])
            continue
        since = t - seg_start
        # Stay inside the walkable depth band: turn across the view when reaching its far or
        # near end (people walk along a pavement rather than into the facade).
        if mode in MOVING_MODES:
            if (z > cam.z_max - 0.4 and math.cos(theta_plan) > 0.05) or \
                    (z < cam.z_min + 0.4 and math.cos(theta_plan) < -0.05):
                theta_plan = math.copysign(math.pi / 2, math.sin(theta_plan) or 1.0)
        lag = 0.35 if mode in ('fall', 'lie') else 0.2
        g += (gait_target(mode) - g) * lag
        v_lag = 0.3 if mode in ('fall', 'lie', 'flail', 'jump') else BRAKE
        v += (speed_target(mode) - v) * v_lag
        rate = math.radians(TURN_RATE.get(mode, 6.0))
        d_theta = math.atan2(math.sin(theta_plan - theta), math.cos(theta_plan - theta))
        if mode not in ('fall', 'lie', 'flail', 'jump'):
            theta += max(-rate, min(rate, d_theta))
        x += v * math.sin(theta) / fps
        z += v * math.cos(theta) / fps
        phase += 2 * math.pi * cycle_hz(mode, v) / fps
        jump_env += ((1.0 if mode == 'jump' else 0.0) - jump_env) * 0.35
        flail_env += ((1.0 if mode == 'flail' else 0.0) - flail_env) * 0.25
        if mode == 'fall':
            n_fall = seg_end - seg_start
            gamma = fall_max * min(1.0, (since + 1) / n_fall) ** 2
        elif mode == 'lie':
            gamma = fall_max
        else:
            gamma = 0.0
        inside = abs(x) <= k * z + 0.3
        entered = entered or inside
        if entered and abs(x) > k * z + ENTRY_MARGIN + 0.3 and x * math.sin(theta) > 0 and \
                mode in MOVING_MODES:
            break  # left the view for good
        if t >= 0:
            records['x'][t], records['z'][t], records['theta'][t] = x, z, theta
            records['phase'][t] = phase
            if mode == 'jump':
                period = max(1, person.jump_period)
                records['jump_psi'][t] = (since % period) / period
            else:
                records['jump_psi'][t] = 0.0
            records['jump_env'][t], records['flail_env'][t] = jump_env, flail_env
            records['gamma'][t] = gamma
            params[t] = g
            mode_codes[t] = MODE_CODE[mode]
            present[t] = True
        t += 1
    return _pose_track(person, cam, fps, s, records, params, mode_codes, present, flail,
                       jump_height, fall_sign, panel_side, vehicle)


def _pose_track(person: PersonPlan, cam: Camera, fps: int, s: float,
                rec: Dict[str, np.ndarray], params: np.ndarray, mode_codes: np.ndarray,
                present: np.ndarray, flail: Callable, jump_height: float, fall_sign: float,
                panel_side: float, vehicle: Optional[str]) -> PersonTrack:
    """Vectorised poses of the present frames, then world transform, fall and projection."""
    n_frames = len(present)
    idx = np.flatnonzero(present)
    n = len(idx)
    a_hip, a_knee, knee0, lean, a_arm, arm0, elbow0, a_elbow, abd, flight = \
        (params[idx, i] for i in range(10))
    phi = rec['phase'][idx]
    sin_p, cos_p = np.sin(phi), np.cos(phi)
    ang = {
        'hip_l': a_hip * sin_p, 'hip_r': -a_hip * sin_p,
        'knee_l': knee0 + a_knee * np.clip(cos_p, 0, None) ** 1.5,
        'knee_r': knee0 + a_knee * np.clip(-cos_p, 0, None) ** 1.5,
        'arm_l': arm0 - a_arm * sin_p, 'arm_r': arm0 + a_arm * sin_p,
        'elbow_l': elbow0 + a_elbow * np.clip(-sin_p, 0, None),
        'elbow_r': elbow0 + a_elbow * np.clip(sin_p, 0, None),
        'abd_l': abd.copy(), 'abd_r': abd.copy(), 'lean': lean.copy(),
    }
    lift = flight * s * np.clip(np.sin(2 * phi), 0, None)
    yaw = np.zeros(n)
    surge = np.zeros(n)
    # Jump overlay: crouch before take-off and after landing, tucked legs and raised arms in
    # flight.
    psi = rec['jump_psi'][idx]
    e = rec['jump_env'][idx]
    if np.any(e > 1e-3):
        crouch = np.where(psi < 0.3, np.sin(math.pi * psi / 0.3),
                          np.where(psi > 0.75, np.sin(math.pi * (psi - 0.75) / 0.25), 0.0))
        u = np.clip((psi - 0.3) / 0.45, 0, 1)
        tuck = np.where((psi >= 0.3) & (psi <= 0.75), np.sin(math.pi * u), 0.0)
        target = {'hip': 50 * crouch + 80 * tuck, 'knee': 75 * crouch + 100 * tuck,
                  'arm': -30 * crouch + 150 * tuck, 'elbow': 20 + 0 * tuck,
                  'abd': 15 + 20 * tuck}
        for key in ('l', 'r'):
            for part in ('hip', 'knee', 'arm', 'elbow', 'abd'):
                name = f'{part}_{key}'
                ang[name] = (1 - e) * ang[name] + e * target[part]
        ang['lean'] = (1 - e) * ang['lean'] + e * (18 * crouch + 5 * tuck)
        lift = lift + e * jump_height * tuck
    # Flail overlay: erratic, large, fast arm movements, shuffling legs, swaying trunk.
    e = rec['flail_env'][idx]
    if np.any(e > 1e-3):
        w = flail(idx / fps)  # (10, n)
        target = {'arm_l': 70 + 80 * w[0], 'arm_r': 70 + 80 * w[1], 'abd_l': 50 + 40 * w[2],
                  'abd_r': 50 + 40 * w[3], 'elbow_l': 70 + 55 * w[4],
                  'elbow_r': 70 + 55 * w[5], 'hip_l': 12 * w[6], 'hip_r': -12 * w[6],
                  'knee_l': 15 + 15 * np.abs(w[7]), 'knee_r': 15 + 15 * np.abs(w[6]),
                  'lean': 6 + 7 * w[7]}
        for name, value in target.items():
            ang[name] = (1 - e) * ang[name] + e * value
        yaw = e * np.radians(20) * w[8]
        surge = e * 0.12 * w[9]
    local, slices = _body_local(ang, s, person, panel_side)
    # Feet on the ground: the lower of ankle and toe contacts touches down (this also makes the
    # body bob with the gait and sink into a crouch), then flight, jump and the vehicle deck.
    contact = np.minimum(np.minimum(local[:, LANK, 1] - 0.07 * s, local[:, RANK, 1] - 0.07 * s),
                         np.minimum(local[:, LTOE, 1] - 0.03 * s, local[:, RTOE, 1] - 0.03 * s))
    deck = {'scooter': 0.13, 'hoverboard': 0.13}.get(vehicle, 0.0)
    local[:, :, 1] += (-contact + lift + deck)[:, None]
    if vehicle == 'scooter':
        hands = (local[:, LWRI] + local[:, RWRI]) / 2
        sl = slices['scooter']
        veh = np.zeros((n, sl.stop - sl.start, 3))
        veh[:, :8] = _box_corners((0, 0.09, 0.05), (0.08, 0.035, 0.42))
        veh[:, 8] = (0, 0.09, -0.42)
        veh[:, 9] = (0, 0.09, 0.52)
        veh[:, 10] = (0, 0.12, 0.47)
        veh[:, 11] = hands + (0.22, 0, 0)
        veh[:, 12] = hands - (0.22, 0, 0)
        local[:, sl] = veh
    elif vehicle == 'hoverboard':
        sl = slices['hoverboard']
        veh = np.zeros((n, sl.stop - sl.start, 3))
        veh[:, :8] = _box_corners((0, 0.09, 0.0), (0.32, 0.035, 0.11))
        veh[:, 8] = (0.37, 0.1, 0)
        veh[:, 9] = (-0.37, 0.1, 0)
        local[:, sl] = veh
    # Body frame -> world.
    theta = rec['theta'][idx] + yaw
    f = np.stack([np.sin(theta), np.zeros(n), np.cos(theta)], axis=1)
    lft = np.stack([-np.cos(theta), np.zeros(n), np.sin(theta)], axis=1)
    up = np.tile([0.0, 1.0, 0.0], (n, 1))
    root = np.stack([rec['x'][idx], np.zeros(n), rec['z'][idx]], axis=1) + surge[:, None] * f
    world = (root[:, None] + local[..., 0:1] * lft[:, None] + local[..., 1:2] * up[:, None]
             + local[..., 2:3] * f[:, None])
    # A fall rotates the body (not a vehicle) about the viewing axis through the feet, so the
    # body ends lying across the view.
    gamma = np.radians(rec['gamma'][idx]) * fall_sign
    if np.any(gamma != 0):
        body = np.ones(world.shape[1], dtype=bool)
        for name in VEHICLES:
            if name in slices:
                body[slices[name]] = False
        c, sn = np.cos(gamma)[:, None], np.sin(gamma)[:, None]
        dx = world[:, body, 0] - root[:, None, 0]
        yy = world[:, body, 1]
        new_x = root[:, None, 0] + dx * c - yy * sn
        new_y = dx * sn + yy * c
        new_y += np.clip(0.05 - new_y[:, :N_BODY].min(axis=1), 0, None)[:, None]
        # Limbs that would point into the ground lie flat on it instead.
        new_y = np.maximum(new_y, 0.03)
        world[:, body, 0], world[:, body, 1] = new_x, new_y

        def turn(vec: np.ndarray) -> np.ndarray:
            out = vec.copy()
            out[:, 0] = vec[:, 0] * c[:, 0] - vec[:, 1] * sn[:, 0]
            out[:, 1] = vec[:, 0] * sn[:, 0] + vec[:, 1] * c[:, 0]
            return out
        f, lft, up = turn(f), turn(lft), turn(up)
    n_points = world.shape[1]
    points = np.full((n_frames, n_points, 3), np.nan)
    points[idx] = world
    full = {}
    for name, value in (('fwd', f), ('left', lft), ('up', up), ('root', root)):
        full[name] = np.full((n_frames, 3), np.nan)
        full[name][idx] = value
    image = cam.project(points)
    depth = points[..., 2]
    kp = image[:, :17]
    inside = ((kp[..., 0] >= 0) & (kp[..., 0] <= cam.width - 1) & (kp[..., 1] >= 0)
              & (kp[..., 1] <= cam.height - 1))
    on_screen = present & (inside.sum(axis=1) >= 6)
    if person.anomaly is None:
        performing = np.zeros(n_frames, dtype=bool)
    elif person.attachment is not None:
        performing = on_screen.copy()
    else:
        codes = [MODE_CODE[m] for m in person.anomaly_modes]
        performing = on_screen & np.isin(mode_codes, codes)
    return PersonTrack(person, present, points, full['fwd'], full['left'], full['up'],
                       mode_codes, full['root'], image, depth, on_screen, performing, slices)


def clip_ground_truth(tracks: Sequence[PersonTrack]) -> Tuple[np.ndarray, np.ndarray]:
    """Frame mask (1 = abnormal) and kinds (smallest non-zero kind code of active anomalies).

    Args:
        tracks: The clip's simulated persons.

    Returns:
        tuple: (F,) uint8 mask and (F,) uint8 kinds.
    """
    n_frames = len(tracks[0].present) if tracks else 0
    kinds = np.zeros(n_frames, dtype=np.uint8)
    for track in tracks:
        if track.person.anomaly is None:
            continue
        code = KIND_CODES[track.person.kind]
        active = track.performing
        kinds[active] = np.where(kinds[active] == 0, code, np.minimum(kinds[active], code))
    return (kinds > 0).astype(np.uint8), kinds


# --------------------------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------------------------

SHIFT = 4
ONE = 1 << SHIFT


def _fx(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> int32 fixed point for OpenCV's sub-pixel drawing."""
    return np.round(np.asarray(points, dtype=np.float64) * ONE).astype(np.int32)


def _fill_world(img: np.ndarray, cam: Camera, pts: Sequence, colour) -> None:
    poly = _fx(cam.project(np.asarray(pts, dtype=np.float64)))
    cv2.fillConvexPoly(img, cv2.convexHull(poly), _bgr(colour), cv2.LINE_AA, SHIFT)


def _bgr(colour) -> Tuple[int, int, int]:
    return tuple(int(np.clip(round(c), 0, 255)) for c in colour)


def _jitter(rng: np.random.Generator, colour, amount: float) -> Tuple[int, int, int]:
    return _bgr(np.asarray(colour, dtype=np.float64) + rng.normal(0, amount))


def _ground_rect(img, cam, x0, x1, z0, z1, colour) -> None:
    _fill_world(img, cam, [(x0, 0, z0), (x1, 0, z0), (x1, 0, z1), (x0, 0, z1)], colour)


def _world_line(img, cam, p, q, colour, thickness: int = 1) -> None:
    a, b = _fx(cam.project(np.array([p, q], dtype=np.float64)))
    cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), _bgr(colour), thickness,
             cv2.LINE_AA, SHIFT)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, amp: float) -> np.ndarray:
    grid = rng.normal(0, 1, size=(cells, max(2, cells * w // h)))
    return 1.0 + amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _sky(img: np.ndarray, cam: Camera, top, bottom) -> None:
    rows = max(1, int(math.ceil(cam.horizon)) + 1)
    t = np.linspace(0, 1, rows)[:, None]
    grad = (1 - t) * np.asarray(top, np.float64) + t * np.asarray(bottom, np.float64)
    img[:rows] = np.clip(grad[:, None, :], 0, 255).astype(np.uint8)


def _facades(img, cam, rng, z, palette, window_colour) -> None:
    """A row of building fronts on the plane Z = z (windows in a grid)."""
    half = cam.half_width_slope * z + 3
    x = -half
    while x < half:
        w = rng.uniform(4, 9)
        h = rng.uniform(7, 18)
        colour = _jitter(rng, palette[int(rng.integers(len(palette)))], 6)
        _fill_world(img, cam, [(x, 0, z), (x + w, 0, z), (x + w, h, z), (x, h, z)], colour)
        win = _jitter(rng, window_colour, 8)
        for wx in np.arange(x + 0.6, x + w - 1.0, 1.4):
            for wy in np.arange(2.6, h - 1.0, 2.2):
                _fill_world(img, cam, [(wx, wy, z), (wx + 0.8, wy, z), (wx + 0.8, wy + 1.1, z),
                                       (wx, wy + 1.1, z)], win)
        # A shop front at street level.
        _fill_world(img, cam, [(x + 0.4, 0, z), (x + w - 0.4, 0, z), (x + w - 0.4, 2.2, z),
                               (x + 0.4, 2.2, z)], _jitter(rng, (90, 85, 80), 10))
        x += w + rng.uniform(0, 0.8)


def _box_prop(img, cam, centre, half, colour, top_colour=None) -> None:
    """A static box (bench, planter, car body): faces drawn back to front."""
    corners = _box_corners(centre, half)
    faces = ((0, 1, 3, 2), (4, 5, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5), (2, 3, 7, 6), (0, 1, 5, 4))
    shades = (0.8, 0.8, 0.7, 0.7, 1.0, 0.6)
    centre = np.asarray(centre, np.float64)
    order = sorted(range(6), key=lambda i: -np.linalg.norm(corners[list(faces[i])].mean(0)
                                                           - cam.position))
    for i in order:
        face = corners[list(faces[i])]
        col = top_colour if (i == 4 and top_colour is not None) else colour
        _fill_world(img, cam, face, np.asarray(col, np.float64) * shades[i])


def _tree(img, cam, rng, x, z, height=None) -> None:
    height = height or rng.uniform(3.5, 5.5)
    _world_line(img, cam, (x, 0, z), (x, height * 0.6, z), (40, 55, 75),
                max(1, int(round(0.25 * cam.focal / z))))
    centre = cam.project(np.array([x, height * 0.72, z]))
    radius = 1.3 * cam.focal / z
    for _ in range(5):
        offset = rng.normal(0, 0.35 * radius, 2)
        col = _jitter(rng, (50, 110, 60), 10)
        cv2.circle(img, tuple(int(v) for v in _fx(centre + offset)),
                   int(radius * rng.uniform(0.6, 0.9) * ONE), col, -1, cv2.LINE_AA, SHIFT)


def _lamp(img, cam, x, z) -> None:
    _world_line(img, cam, (x, 0, z), (x, 4.0, z), (60, 60, 60),
                max(1, int(round(0.12 * cam.focal / z))))
    centre = cam.project(np.array([x, 4.0, z]))
    cv2.circle(img, tuple(int(v) for v in _fx(centre)), int(0.25 * cam.focal / z * ONE),
               (200, 230, 240), -1, cv2.LINE_AA, SHIFT)


def _tiles(img, cam, rng, x_half, z0, z1, size, colours, grout) -> None:
    for zi in np.arange(z0, z1, size):
        for xi in np.arange(-x_half, x_half, size):
            parity = int(round((xi / size) + (zi / size))) % len(colours)
            _ground_rect(img, cam, xi, xi + size, zi, zi + size,
                         _jitter(rng, colours[parity], 5))
    for zi in np.arange(z0, z1 + 1e-6, size):
        _world_line(img, cam, (-x_half, 0, zi), (x_half, 0, zi), grout)
    for xi in np.arange(-x_half, x_half + 1e-6, size):
        _world_line(img, cam, (xi, 0, z0), (xi, 0, z1), grout)


def scene_background(scene: SceneSpec, cam: Camera) -> np.ndarray:
    """The static background of a scene (cached per process).

    Args:
        scene: Scene spec (its type and seed fix the layout).
        cam: Camera.

    Returns:
        np.ndarray: (H, W, 3) uint8 BGR image (a copy; safe to draw on).
    """
    return _scene_background(scene.kind, scene.seed, cam).copy()


@functools.lru_cache(maxsize=16)
def _scene_background(kind: str, seed: int, cam: Camera) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = cam.height, cam.width
    img = np.zeros((h, w, 3), np.uint8)
    z_front = cam.ground_z_at_row(h + 4) - 0.5
    wide = cam.half_width_slope * 60 + 5
    if kind == 'plaza':
        _sky(img, cam, (235, 200, 160), (245, 230, 215))
        _ground_rect(img, cam, -wide, wide, 28, 60, (150, 160, 170))
        _facades(img, cam, rng, 32, ((150, 170, 190), (120, 130, 150), (170, 170, 165),
                                     (90, 110, 150)), (110, 90, 70))
        base = _jitter(rng, (170, 182, 192), 6)
        alt = _jitter(rng, (145, 156, 170), 6)
        _tiles(img, cam, rng, cam.half_width_slope * 32 + 2, z_front - 0.4, 32, 1.2, (base, alt),
               (115, 120, 125))
        for _ in range(2):
            _box_prop(img, cam, (rng.uniform(-6, 6), 0.22, rng.uniform(16, 24)),
                      (0.8, 0.22, 0.25), (40, 70, 110), (50, 90, 130))
        for _ in range(2):
            x, z = rng.uniform(-8, 8), rng.uniform(17, 26)
            _box_prop(img, cam, (x, 0.3, z), (0.6, 0.3, 0.6), (130, 135, 140))
            _tree(img, cam, rng, x, z, 2.4)
        for x in (-7.0, 7.0):
            _lamp(img, cam, x + rng.uniform(-1, 1), rng.uniform(14, 22))
    elif kind == 'street':
        _sky(img, cam, (225, 195, 165), (240, 225, 210))
        _ground_rect(img, cam, -wide, wide, 30, 60, (140, 145, 150))
        _facades(img, cam, rng, 34, ((110, 130, 170), (160, 160, 150), (90, 100, 120),
                                     (140, 150, 175)), (95, 80, 70))
        _tiles(img, cam, rng, cam.half_width_slope * 34 + 2, 20.0, 34, 1.5,
               ((150, 150, 148), (138, 138, 136)), (110, 110, 110))
        _ground_rect(img, cam, -wide, wide, 10.6, 19.6, (72, 72, 74))
        _ground_rect(img, cam, -wide, wide, 19.6, 20.0, (185, 185, 185))
        _ground_rect(img, cam, -wide, wide, 10.3, 10.6, (185, 185, 185))
        for x in np.arange(-wide, wide, 4.0):
            if abs(x) > 3.5:
                _ground_rect(img, cam, x, x + 2.0, 15.0, 15.15, (200, 200, 200))
        for x in np.arange(-3.0, 3.0, 0.9):
            _ground_rect(img, cam, x, x + 0.45, 11.0, 19.2, (215, 218, 220))
        _tiles(img, cam, rng, cam.half_width_slope * 11 + 2, z_front - 0.5, 10.3, 1.0,
               ((160, 165, 170), (145, 150, 155)), (120, 120, 120))
        cx = float(rng.choice([-1, 1])) * rng.uniform(5, 8)
        _box_prop(img, cam, (cx, 0.55, 17.5), (2.1, 0.4, 0.9), (60, 60, 150))
        _box_prop(img, cam, (cx + 0.2, 1.2, 17.5), (1.2, 0.3, 0.8), (120, 90, 70))
        for x in np.arange(-12, 12.1, 6.0) + rng.uniform(-1, 1):
            _tree(img, cam, rng, x, 22.0)
        _world_line(img, cam, (3.8, 0, 10.45), (3.8, 3.0, 10.45), (50, 50, 50), 2)
        _fill_world(img, cam, [(3.65, 2.3, 10.45), (3.95, 2.3, 10.45), (3.95, 3.1, 10.45),
                               (3.65, 3.1, 10.45)], (30, 30, 30))
    elif kind == 'sports':
        _sky(img, cam, (230, 195, 150), (240, 220, 200))
        _ground_rect(img, cam, -wide, wide, 17.5, 60, (80, 150, 90))
        # Grandstand: stepped rows with blue seats.
        z_st = 33.0
        _fill_world(img, cam, [(-wide, 0, z_st), (wide, 0, z_st), (wide, 7, z_st),
                               (-wide, 7, z_st)], (150, 150, 150))
        for row in range(7):
            _fill_world(img, cam, [(-wide, row + 0.3, z_st), (wide, row + 0.3, z_st),
                                   (wide, row + 0.7, z_st), (-wide, row + 0.7, z_st)],
                        _jitter(rng, (140, 90, 40), 6))
        _fill_world(img, cam, [(-3, 7, z_st), (3, 7, z_st), (3, 9, z_st), (-3, 9, z_st)],
                    (40, 40, 40))
        for x in np.arange(-wide, wide, 3.0):
            shade = 1.0 if int(round(x / 3)) % 2 else 0.88
            _ground_rect(img, cam, x, x + 3.0, 17.5, 27.0,
                         np.asarray((70, 150, 85)) * shade)
        for x in np.arange(-wide, wide, 2.0):
            _world_line(img, cam, (x, 0, 27), (x, 2.2, 27), (70, 70, 70))
        for y in (0.8, 1.6, 2.2):
            _world_line(img, cam, (-wide, y, 27), (wide, y, 27), (90, 90, 90))
        _ground_rect(img, cam, -wide, wide, z_front - 0.5, 17.5, _jitter(rng, (60, 78, 168), 4))
        for z in np.arange(17.5, z_front - 0.6, -1.22):
            _ground_rect(img, cam, -wide, wide, z - 0.05, z + 0.05, (235, 235, 235))
        x_line = rng.uniform(-3, 3)
        _ground_rect(img, cam, x_line, x_line + 0.1, z_front - 0.5, 17.5, (235, 235, 235))
        _box_prop(img, cam, (rng.uniform(-8, 8), 0.22, 25.5), (1.5, 0.22, 0.3),
                  (110, 110, 110), (140, 140, 140))
    else:  # park
        _sky(img, cam, (235, 205, 170), (240, 230, 215))
        _ground_rect(img, cam, -wide, wide, z_front - 0.5, 60, (70, 135, 80))
        for x in np.arange(-wide, wide, 2.5) + rng.uniform(0, 2.5):
            _tree(img, cam, rng, x, 30 + rng.uniform(-2, 2), rng.uniform(5, 8))
        a, b = rng.uniform(-4, 4), rng.uniform(-4, 4)
        path = [(a - 1.2, 0, z_front - 0.5), (a + 1.2, 0, z_front - 0.5), (b + 1.2, 0, 28),
                (b - 1.2, 0, 28)]
        _fill_world(img, cam, path, (150, 175, 190))
        pond_x = float(rng.choice([-1, 1])) * rng.uniform(5, 8)
        c = cam.project(np.array([pond_x, 0, 20.0]))
        axes = (3.0 * cam.focal / 20.0, 3.0 * cam.focal * cam.cam_height / 20.0 ** 2)
        cv2.ellipse(img, tuple(int(v) for v in _fx(c)), tuple(int(v * ONE) for v in axes), 0, 0,
                    360, (140, 105, 60), -1, cv2.LINE_AA, SHIFT)
        for _ in range(3):
            _tree(img, cam, rng, rng.uniform(-9, 9), rng.uniform(16, 26))
        _box_prop(img, cam, (rng.uniform(-5, 5), 0.22, 22), (0.8, 0.22, 0.25), (40, 70, 110))
    # Low-frequency shading and fine grain, so that no region is a flat colour.
    shade = _smooth_noise(rng, h, w, 6, 0.035)[..., None]
    grain = rng.normal(0, 3.0, size=(h, w, 1))
    img = np.clip(img.astype(np.float64) * shade + grain, 0, 255).astype(np.uint8)
    return img


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

class _Canvas:
    """Colour image plus part-label map, drawn with the same primitives."""

    def __init__(self, img: np.ndarray, labels: np.ndarray):
        self.img, self.labels = img, labels

    def line(self, p, q, width_px: float, colour, label: int) -> None:
        # Plain float arithmetic: this is called ~20 times per person and frame.
        px, py, qx, qy = float(p[0]), float(p[1]), float(q[0]), float(q[1])
        if not math.isfinite(px + py + qx + qy):
            return
        t = max(1, int(round(width_px)))
        a = (int(round(px * ONE)), int(round(py * ONE)))
        b = (int(round(qx * ONE)), int(round(qy * ONE)))
        cv2.line(self.img, a, b, colour, t, cv2.LINE_AA, SHIFT)
        cv2.line(self.labels, a, b, label, t, cv2.LINE_8, SHIFT)

    def hull(self, pts, colour, label: Optional[int]) -> None:
        pts = np.asarray(pts, dtype=np.float64)
        if not np.all(np.isfinite(pts)):
            return
        poly = cv2.convexHull(_fx(pts))
        cv2.fillConvexPoly(self.img, poly, colour, cv2.LINE_AA, SHIFT)
        if label is not None:
            cv2.fillConvexPoly(self.labels, poly, label, cv2.LINE_8, SHIFT)

    def circle(self, c, radius_px: float, colour, label: Optional[int]) -> None:
        cx, cy = float(c[0]), float(c[1])
        if not math.isfinite(cx + cy):
            return
        centre = (int(round(cx * ONE)), int(round(cy * ONE)))
        r = max(ONE // 2, int(round(radius_px * ONE)))
        cv2.circle(self.img, centre, r, colour, -1, cv2.LINE_AA, SHIFT)
        if label is not None:
            cv2.circle(self.labels, centre, r, label, -1, cv2.LINE_8, SHIFT)

    def ellipse(self, c, axes, angle: float, colour) -> None:
        centre = (int(round(float(c[0]) * ONE)), int(round(float(c[1]) * ONE)))
        ax = (max(1, int(round(axes[0] * ONE))), max(1, int(round(axes[1] * ONE))))
        cv2.ellipse(self.img, centre, ax, angle, 0, 360, colour, -1, cv2.LINE_AA, SHIFT)


def _draw_shadow(img: np.ndarray, cam: Camera, track: PersonTrack, t: int) -> None:
    """A soft dark ellipse on the ground under the person (stays on the ground when jumping)."""
    body = track.points[t, :N_BODY]
    z = track.root[t, 2]
    xs = body[:, 0]
    cx = float((xs.min() + xs.max()) / 2)
    half_x = max(0.3 * track.person.height / 1.7, float(xs.max() - xs.min()) / 2 + 0.1)
    centre = cam.project(np.array([cx, 0.0, z]))
    ax = (half_x * cam.focal / z, 0.3 * cam.focal * cam.cam_height / z ** 2)
    x0, x1 = int(centre[0] - ax[0] - 2), int(centre[0] + ax[0] + 3)
    y0, y1 = int(centre[1] - ax[1] - 2), int(centre[1] + ax[1] + 3)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, cam.width), min(y1, cam.height)
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    c_local = (int(round((centre[0] - x0) * ONE)), int(round((centre[1] - y0) * ONE)))
    cv2.ellipse(mask, c_local, (int(ax[0] * ONE), max(ONE, int(ax[1] * ONE))), 0, 0, 360, 255,
                -1, cv2.LINE_AA, SHIFT)
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi.astype(np.float32) * (1 - 0.3 * mask[..., None] / 255.0)).astype(np.uint8)


def _draw_object(canvas: _Canvas, cam: Camera, track: PersonTrack, t: int, name: str,
                 label: int) -> None:
    pts = track.points[t, track.slices[name]]
    img2d = track.image[t, track.slices[name]]
    z_ref = float(np.nanmean(pts[:, 2]))
    ppm = cam.focal / z_ref
    person = track.person
    if name == 'backpack':
        colour = _bgr(person.colours['bag'])
        canvas.hull(img2d, colour, label)
        return
    main, second, dark = OBJECT_COLOURS[name]
    if name == 'carry_box':
        faces = ((0, 1, 3, 2), (4, 5, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5), (2, 3, 7, 6),
                 (0, 1, 5, 4))
        centre = pts.mean(axis=0)
        for face in faces:
            quad = pts[list(face)]
            normal = quad.mean(axis=0) - centre
            if np.dot(normal, cam.position - quad.mean(axis=0)) <= 0:
                continue
            canvas.hull(cam.project(quad), dark, label)
            # A 3x3 checker on each visible face, mapped bilinearly so it moves with the box.
            for i in range(3):
                for j in range(3):
                    u0, u1, v0, v1 = i / 3, (i + 1) / 3, j / 3, (j + 1) / 3
                    sub = [_bilinear(quad, u, v) for u, v in ((u0, v0), (u1, v0), (u1, v1),
                                                              (u0, v1))]
                    colour = main if (i + j) % 2 == 0 else second
                    canvas.hull(cam.project(np.array(sub)), colour, None)
    elif name == 'carry_panel':
        canvas.hull(img2d, dark, label)
        for i in range(6):
            if i % 2:
                continue
            u0, u1 = i / 6, (i + 1) / 6
            sub = [_bilinear(pts, u, v) for u, v in ((u0, 0.04), (u1, 0.04), (u1, 0.96),
                                                     (u0, 0.96))]
            canvas.hull(cam.project(np.array(sub)), main, None)
        for i in range(1, 6, 2):
            u0, u1 = i / 6, (i + 1) / 6
            sub = [_bilinear(pts, u, v) for u, v in ((u0, 0.04), (u1, 0.04), (u1, 0.96),
                                                     (u0, 0.96))]
            canvas.hull(cam.project(np.array(sub)), second, None)
    elif name == 'scooter':
        for wheel in (8, 9):
            canvas.circle(img2d[wheel], 0.09 * ppm, dark, label)
        canvas.hull(img2d[:8], main, label)
        canvas.line(img2d[10], (img2d[11] + img2d[12]) / 2, 0.05 * ppm, second, label)
        canvas.line(img2d[11], img2d[12], 0.04 * ppm, second, label)
    elif name == 'hoverboard':
        for wheel in (8, 9):
            canvas.circle(img2d[wheel], 0.1 * ppm, dark, label)
        canvas.hull(img2d[:8], main, label)
        mid = _bilinear(pts[[0, 1, 5, 4]], 0.5, 0.5)
        canvas.circle(cam.project(mid + np.array([0, 0.04, 0])), 0.05 * ppm, second, None)


def _bilinear(quad: np.ndarray, u: float, v: float) -> np.ndarray:
    """Point at (u, v) of a quad given as corners (00, 10, 11, 01)."""
    a, b, c, d = quad
    return (1 - u) * (1 - v) * a + u * (1 - v) * b + u * v * c + (1 - u) * v * d


def _draw_person(canvas: _Canvas, cam: Camera, track: PersonTrack, t: int, slot: int) -> None:
    """Draw one person's parts far to near, into the colour image and the label map."""
    person = track.person
    s = person.height / 1.7
    P = track.image[t]
    W = track.points[t]
    D = track.depth[t]
    f = track.fwd[t]
    z_root = track.root[t, 2]
    ppm = cam.focal / z_root
    col = _person_colours(person)
    sleeve = col['shirt'] if person.long_sleeves else col['skin']
    base = slot * LABEL_STRIDE
    parts = []  # (depth, order, callable)

    def add(depth: float, fn: Callable[[], None]) -> None:
        parts.append((float(depth), len(parts), fn))

    def limb(i, j, width, colour, part):
        add((D[i] + D[j]) / 2, lambda: canvas.line(P[i], P[j], width * s * ppm, colour,
                                                   base + PARTS[part]))

    for key, (hip, knee, ank, toe) in (('l', (LHIP, LKNE, LANK, LTOE)),
                                       ('r', (RHIP, RKNE, RANK, RTOE))):
        limb(hip, knee, 0.15, col['trousers'], 'thigh_' + key)
        limb(knee, ank, 0.115, col['trousers'], 'shin_' + key)
        limb(ank, toe, 0.08, col['shoes'], 'foot_' + key)
    for key, (sho, elb, wri, hand) in (('l', (LSHO, LELB, LWRI, LHAND)),
                                       ('r', (RSHO, RELB, RWRI, RHAND))):
        limb(sho, elb, 0.1, col['shirt'], 'uarm_' + key)
        limb(elb, wri, 0.085, sleeve, 'farm_' + key)
        add(D[hand], lambda h=hand, k=key: canvas.circle(P[h], 0.045 * s * ppm, col['skin'],
                                                         base + PARTS['hand_' + k]))
    depth_fwd = f * 0.11 * s
    down = -track.up[t] * 0.07 * s
    # Shoulder and hip caps reach a few centimetres past the joints, so that the joints lie inside
    # the drawn trunk in every view (not on its anti-aliased edge).
    lateral = track.left[t] * 0.05 * s
    up_cap = (W[NECK] - (W[LSHO] + W[RSHO]) / 2) * 0.6
    shoulders = np.concatenate([W[[LSHO]] + lateral, W[[RSHO]] - lateral,
                                W[[LSHO, RSHO]] + up_cap])
    hips = np.concatenate([W[[LHIP]] + lateral + down, W[[RHIP]] - lateral + down])
    torso3d = np.concatenate([shoulders + depth_fwd, shoulders - depth_fwd,
                              W[[LWAIST, RWAIST]] + depth_fwd, W[[LWAIST, RWAIST]] - depth_fwd])
    pelvis3d = np.concatenate([W[[LWAIST, RWAIST]] + depth_fwd, W[[LWAIST, RWAIST]] - depth_fwd,
                               hips + depth_fwd, hips - depth_fwd])
    # Trunk parts get a small depth bias so that limbs at the same depth are drawn over them.
    add(np.mean(D[[LHIP, RHIP, LWAIST, RWAIST]]) + 0.03,
        lambda: canvas.hull(cam.project(pelvis3d), col['trousers'], base + PARTS['pelvis']))
    add(np.mean(D[[LSHO, RSHO, LWAIST, RWAIST]]) + 0.03,
        lambda: canvas.hull(cam.project(torso3d), col['shirt'], base + PARTS['torso']))
    # The neck starts above the neck point: in side views the shoulders project right under it.
    neck_base = W[NECK] + 0.35 * (W[HEAD] - W[NECK])
    neck_2d = cam.project(neck_base)
    add((D[NECK] + D[HEAD]) / 2, lambda: canvas.line(neck_2d, P[HEAD], 0.09 * s * ppm,
                                                     col['skin'], base + PARTS['neck']))
    add(D[HEAD] - 0.02, lambda: _draw_head(canvas, cam, track, t, s, ppm, col,
                                           base + PARTS['head']))
    for name in track.slices:
        label = base + PARTS['backpack' if name == 'backpack' else 'object']
        depth = float(np.mean(D[track.slices[name]]))
        if name in VEHICLES:
            depth += 5.0  # under the feet: always behind the body
        add(depth, lambda n=name, lb=label: _draw_object(canvas, cam, track, t, n, lb))
    for _, _, fn in sorted(parts, key=lambda item: (-item[0], item[1])):
        fn()


@functools.lru_cache(maxsize=4096)
def _colour_tuple(colour: Tuple[int, int, int]) -> Tuple[int, int, int]:
    return _bgr(colour)


def _person_colours(person: PersonPlan) -> Dict[str, Tuple[int, int, int]]:
    return {k: _colour_tuple(tuple(v)) for k, v in person.colours.items()}


def _draw_head(canvas: _Canvas, cam: Camera, track: PersonTrack, t: int, s: float, ppm: float,
               col: Dict[str, Tuple[int, int, int]], label: int) -> None:
    """Head: hair-coloured disc with a skin-coloured face on the side the person faces."""
    P = track.image[t]
    W = track.points[t]
    r = 0.115 * s * cam.focal / W[HEAD, 2]
    canvas.circle(P[HEAD], r, col['hair'], label)
    to_cam = cam.position - W[HEAD]
    to_cam /= np.linalg.norm(to_cam)
    facing = float(np.dot(track.fwd[t], to_cam))
    if facing < -0.3:
        return
    up2d = P[HEAD] - P[NECK]
    norm = np.linalg.norm(up2d)
    up2d = up2d / norm if norm > 1e-6 else np.array([0.0, -1.0])
    f2d = (cam.project(W[HEAD] + 0.1 * track.fwd[t]) - P[HEAD]) / (0.1 * cam.focal / W[HEAD, 2])
    centre = P[HEAD] + 0.4 * r * f2d - 0.12 * r * up2d
    angle = math.degrees(math.atan2(up2d[1], up2d[0])) + 90
    size = 0.5 + 0.5 * (facing + 0.3) / 1.3
    canvas.ellipse(centre, (r * (0.45 + 0.25 * size), r * 0.78), angle, col['skin'])


class ClipRenderer:
    """Simulates a clip's persons and renders its frames (image and part labels).

    Args:
        clip: The clip plan.
        cam: Camera.
        fps: Frame rate.
    """

    def __init__(self, clip: ClipPlan, cam: Camera, fps: int):
        self.clip, self.cam = clip, cam
        self.tracks = [simulate_person(p, cam, clip.n_frames, fps) for p in clip.persons]
        rng = np.random.default_rng([clip.seed, 2])
        # A slightly different exposure per clip, as days differ.
        gain = rng.uniform(0.95, 1.05)
        self.background = np.clip(scene_background(clip.scene, cam).astype(np.float32) * gain,
                                  0, 255).astype(np.uint8)

    def render(self, t: int) -> Tuple[np.ndarray, np.ndarray]:
        """Frame t without sensor noise.

        Returns:
            tuple: (H, W, 3) uint8 image and (H, W) uint16 labels (slot * 32 + part id, where
            slot = index of the person in ``clip.persons`` + 1).
        """
        img = self.background.copy()
        labels = np.zeros(img.shape[:2], np.uint16)
        active = [i for i, tr in enumerate(self.tracks) if tr.present[t]]
        for i in active:
            _draw_shadow(img, self.cam, self.tracks[i], t)
        canvas = _Canvas(img, labels)
        for i in sorted(active, key=lambda i: -self.tracks[i].root[t, 2]):
            _draw_person(canvas, self.cam, self.tracks[i], t, i + 1)
        return img, labels

    def visible_joints(self, labels: np.ndarray, index: int, t: int) -> np.ndarray:
        """(17,) bool: joint inside the image, on one of its own parts, and (face) facing."""
        return self.joint_visibility(labels, index, t) == VISIBLE

    def joint_visibility(self, labels: np.ndarray, index: int, t: int) -> np.ndarray:
        """(17,) visibility classes of a person's joints in frame t.

        :data:`VISIBLE`: on one of the joint's own parts (and, for face joints, facing the
        camera); :data:`SELF_OCCLUDED`: hidden by the person's own body or carried object (or on
        no drawn pixel at all); :data:`OCCLUDED`: hidden by someone else; :data:`OUTSIDE`: out
        of the image.
        """
        track = self.tracks[index]
        kp = track.image[t, :17]
        h, w = labels.shape
        xi = np.round(kp[:, 0]).astype(int)
        yi = np.round(kp[:, 1]).astype(int)
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        lab = np.zeros(17, dtype=np.int64)
        lab[inside] = labels[yi[inside], xi[inside]]
        base = (index + 1) * LABEL_STRIDE
        own = (lab == 0) | ((lab >= base) & (lab < base + LABEL_STRIDE))
        vis = np.array([int(lab[j]) - base in _JOINT_PART_IDS[j] for j in range(17)])
        to_cam = self.cam.position - track.points[t, HEAD]
        to_cam /= np.linalg.norm(to_cam)
        facing = float(np.dot(track.fwd[t], to_cam))
        if facing < 0.1:
            vis[[NOSE, LEYE, REYE]] = False
        for ear, sign in ((LEAR, 1.0), (REAR, -1.0)):
            if float(np.dot(sign * track.left[t], to_cam)) < -0.25:
                vis[ear] = False
        classes = np.where(vis, VISIBLE, np.where(own, SELF_OCCLUDED, OCCLUDED))
        return np.where(inside, classes, OUTSIDE).astype(np.int8)


class _PoseObserver:
    """Turns true keypoints into AlphaPose-like detections: noise, confidences, dropped frames."""

    def __init__(self, person: PersonPlan, width: int, height: int):
        self.rng = np.random.default_rng([person.seed, 3])
        self.quality = self.rng.uniform(0.72, 0.9)
        self.gap = 0
        self.width, self.height = width, height
        self.frames: Dict[int, Dict] = {}

    def observe(self, t: int, kp: np.ndarray, visibility: np.ndarray, height_px: float) -> None:
        """Record (or drop) the detection of frame t.

        Args:
            t: Frame.
            kp: (17, 2) true keypoints in pixels.
            visibility: (17,) classes from :meth:`ClipRenderer.joint_visibility`.
            height_px: The person's standing height in pixels at its depth.
        """
        rng = self.rng
        # Draw every random number every frame, so dropped frames do not shift the stream.
        u_drop, u_gap, gap_len = rng.random(), rng.random(), int(rng.integers(3, 8))
        noise = rng.normal(0, 1, size=(17, 2))
        c_vis = rng.normal(0, 0.05, size=17)
        c_self = rng.uniform(0.25, 0.5, size=17)
        c_occ = rng.uniform(0.05, 0.35, size=17)
        c_out = rng.uniform(0.02, 0.15, size=17)
        occ_extra = rng.uniform(0, 2.0)
        score_gain = rng.uniform(0.95, 1.06)
        self.quality = float(np.clip(self.quality + rng.normal(0, 0.01), 0.65, 0.93))
        if self.gap > 0:
            self.gap -= 1
            return
        if u_gap < 0.005:  # a short track loss, as trackers have
            self.gap = gap_len - 1
            return
        visible = visibility == VISIBLE
        if u_drop < 0.02 or (visible.sum() < 5 and u_drop < 0.7):
            return
        # Pixel noise of 1-2 px for visible joints (more for larger people), inferred joints are
        # placed much less precisely.
        sigma_vis = float(np.clip(0.6 + height_px / 90.0, 0.8, 2.2))
        sigma = np.choose(visibility, (sigma_vis, 1.8 * sigma_vis, 2.5 * sigma_vis + occ_extra,
                                       2.5 * sigma_vis))
        xy = kp + noise * sigma[:, None]
        c_visible = np.clip(self.quality + c_vis - (0.05 if height_px < 60 else 0.0)
                            - np.where(np.arange(17) < 5, 0.04, 0.0), 0.52, 0.99)
        conf = np.choose(visibility, (c_visible, c_self, c_occ, c_out))
        xy[:, 0] = np.clip(xy[:, 0], 0, self.width - 1)
        xy[:, 1] = np.clip(xy[:, 1], 0, self.height - 1)
        values = np.concatenate([xy, conf[:, None]], axis=1).ravel()
        self.frames[t] = {'keypoints': [round(float(v), 3) for v in values],
                          'scores': round(float(conf.mean() * score_gain), 4)}


def _sensor_noise(rng: np.random.Generator, shape: Tuple[int, ...], bank: int = 8) -> List:
    return [rng.normal(0, 2.0, size=shape).astype(np.float32) for _ in range(bank)]


def generate_clip(clip: ClipPlan, cam: Camera, out: str, fps: int = 25,
                  jpeg_quality: int = 90) -> Dict:
    """Render, encode and write one clip (video, test frames, pose JSON, ground truth).

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
    observers = [_PoseObserver(p, cam.width, cam.height) for p in clip.persons]
    test = clip.split == 'test'
    video_dir = osp.join(out, 'testing' if test else 'training', 'videos')
    os.makedirs(video_dir, exist_ok=True)
    frame_dir = osp.join(out, 'testing', 'frames', clip.name)
    if test:
        os.makedirs(frame_dir, exist_ok=True)
    width = max(3, len(str(clip.n_frames - 1)))
    writer = cv2.VideoWriter(osp.join(video_dir, f'{clip.name}.avi'), cv2.CAP_OPENCV_MJPEG,
                             cv2.VideoWriter_fourcc(*'MJPG'), fps, (cam.width, cam.height))
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
        noisy = img.astype(np.float32) + noise_bank[int(rng.integers(len(noise_bank)))]
        frame = np.clip(noisy, 0, 255).astype(np.uint8)
        writer.write(frame)
        if test:
            cv2.imwrite(osp.join(frame_dir, f'{t:0{width}d}.jpg'), frame,
                        [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    writer.release()
    # Pose JSON, frame keys zero-padded as STG-NF's extraction writes them (4 digits in training
    # files, 3 in test files).
    key_width = max(4 if not test else 3, len(str(clip.n_frames - 1)))
    poses = {}
    for p, obs in zip(clip.persons, observers):
        if obs.frames:
            poses[str(p.pid)] = {f'{t:0{key_width}d}': v for t, v in sorted(obs.frames.items())}
    pose_dir = osp.join(out, 'pose', 'test' if test else 'train')
    os.makedirs(pose_dir, exist_ok=True)
    text = json.dumps(poses).encode()
    atomic_write_bytes(osp.join(pose_dir, f'{clip.name}_alphapose_tracked_person.json'),
                       lambda f: f.write(text))
    mask, kinds = clip_ground_truth(renderer.tracks)
    if test:
        for sub, array in (('test_frame_mask', mask), ('test_frame_kinds', kinds)):
            os.makedirs(osp.join(out, 'gt', sub), exist_ok=True)
            atomic_write_bytes(osp.join(out, 'gt', sub, f'{clip.name}.npy'),
                               lambda f, a=array: np.save(f, a))
    return _clip_meta(clip, renderer.tracks, observers, mask, kinds)


def _span(flags: np.ndarray) -> Optional[List[int]]:
    where = np.flatnonzero(flags)
    return [int(where[0]), int(where[-1])] if len(where) else None


def _clip_meta(clip: ClipPlan, tracks: Sequence[PersonTrack],
               observers: Optional[Sequence[_PoseObserver]], mask: np.ndarray,
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
        'format': 'mgenet_mm synthetic benchmark, ShanghaiTech layout', 'version': 1,
        'config': config_dict(cfg), 'seed': cfg.seed, 'preset': cfg.preset, 'size': list(cfg.size), 'fps': cfg.fps,
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
        'colour_order': 'BGR',
        'scenes': {s.scene_id: {'type': s.kind, 'description': s.description,
                                'running_normal': s.running_normal} for s in plan.scenes},
        'train': {n: c for n, c in clips.items() if c['split'] == 'train'},
        'test': {n: c for n, c in clips.items() if c['split'] == 'test'},
    }


def _generate_one(args) -> Tuple[str, Dict, float]:
    clip, cam, out, fps, quality = args
    start = time.perf_counter()
    meta = generate_clip(clip, cam, out, fps, quality)
    return clip.name, meta, time.perf_counter() - start


#: Top-level entries of a benchmark root (what ``overwrite`` removes).
LAYOUT_ENTRIES = ('training', 'testing', 'pose', 'gt', 'meta.json')


def config_dict(cfg: SyntheticConfig) -> Dict:
    """The config as plain JSON values (recorded in meta.json to recognise a benchmark)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


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
    log(f'planned {len(plan.split("train"))} training and {len(plan.split("test"))} test clips '
        f'in {time.perf_counter() - start:.1f}s')
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
    if meta['split'] == 'test':
        text += f', {meta["abnormal_frames"]} abnormal frames'
    return text


# --------------------------------------------------------------------------------------------
# Checks and summaries
# --------------------------------------------------------------------------------------------

def expected_files(meta: Dict) -> List[str]:
    """Every file (relative path) a benchmark with this meta.json consists of."""
    files = ['meta.json']
    for name in meta['train']:
        files += [f'training/videos/{name}.avi',
                  f'pose/train/{name}_alphapose_tracked_person.json']
    for name, clip in meta['test'].items():
        width = max(3, len(str(clip['frames'] - 1)))
        files += [f'testing/videos/{name}.avi', f'pose/test/{name}_alphapose_tracked_person.json',
                  f'gt/test_frame_mask/{name}.npy', f'gt/test_frame_kinds/{name}.npy']
        files += [f'testing/frames/{name}/{t:0{width}d}.jpg' for t in range(clip['frames'])]
    return sorted(files)


def _video_frames(path: str) -> Tuple[int, int, int]:
    cap = cv2.VideoCapture(path)
    try:
        return (int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()


def check_layout(root: str) -> List[str]:
    """Validate a generated benchmark against docs/data_layout.md and its meta.json.

    Checks: the file set is exactly :func:`expected_files`; videos have the planned frame count
    and size; test frames are contiguous 0-based JPEGs of the right size; masks and kinds have one
    entry per frame and agree; pose JSON has integer person ids, frame keys of the right width
    inside the clip, 17 x 3 values and scores.

    Args:
        root: Benchmark root.

    Returns:
        list: Problems found (empty when the layout is valid).
    """
    problems: List[str] = []
    meta_path = osp.join(root, 'meta.json')
    if not osp.isfile(meta_path):
        return [f'{meta_path}: missing']
    with open(meta_path) as f:
        meta = json.load(f)
    expected = set(expected_files(meta))
    found = set()
    for dirpath, _, names in os.walk(root):
        for name in names:
            found.add(osp.relpath(osp.join(dirpath, name), root).replace(os.sep, '/'))
    for path in sorted(expected - found)[:20]:
        problems.append(f'missing {path}')
    for path in sorted(found - expected)[:20]:
        problems.append(f'unexpected {path}')
    size = tuple(meta['size'])
    for split, key_width in (('train', 4), ('test', 3)):
        for name, clip in meta[split].items():
            n = clip['frames']
            video = osp.join(root, 'training' if split == 'train' else 'testing', 'videos',
                             f'{name}.avi')
            if osp.isfile(video):
                count, w, h = _video_frames(video)
                if count != n or (w, h) != size:
                    problems.append(f'{video}: {count} frames of {w}x{h}, expected {n} of '
                                    f'{size[0]}x{size[1]}')
            pose = osp.join(root, 'pose', split, f'{name}_alphapose_tracked_person.json')
            if osp.isfile(pose):
                problems += _check_pose(pose, n, max(key_width, len(str(n - 1))), size)
            if split == 'test':
                first = osp.join(root, 'testing', 'frames', name,
                                 f'{0:0{max(3, len(str(n - 1)))}d}.jpg')
                if osp.isfile(first):
                    img = cv2.imread(first)
                    if img is None or img.shape[1::-1] != size:
                        problems.append(f'{first}: unreadable or not {size[0]}x{size[1]}')
                arrays = {}
                for sub in ('test_frame_mask', 'test_frame_kinds'):
                    path = osp.join(root, 'gt', sub, f'{name}.npy')
                    if osp.isfile(path):
                        arrays[sub] = np.load(path)
                        if arrays[sub].shape != (n,):
                            problems.append(f'{path}: shape {arrays[sub].shape}, expected ({n},)')
                mask, kinds = arrays.get('test_frame_mask'), arrays.get('test_frame_kinds')
                if mask is not None and mask.shape == (n,):
                    if not np.isin(mask, (0, 1)).all():
                        problems.append(f'{name}: mask values outside {{0, 1}}')
                    if int(mask.sum()) != clip['abnormal_frames']:
                        problems.append(f'{name}: mask has {int(mask.sum())} abnormal frames, '
                                        f'meta says {clip["abnormal_frames"]}')
                    if kinds is not None and kinds.shape == (n,) and \
                            not np.array_equal(kinds > 0, mask > 0):
                        problems.append(f'{name}: kinds and mask disagree')
    return problems


def _check_pose(path: str, n_frames: int, key_width: int, size: Tuple[int, int]) -> List[str]:
    problems = []
    with open(path) as f:
        data = json.load(f)
    for pid, track in data.items():
        if not pid.isdigit():
            problems.append(f'{path}: person id {pid!r} is not an integer')
        for key, entry in track.items():
            if len(key) != key_width or not key.isdigit() or int(key) >= n_frames:
                problems.append(f'{path}: person {pid} frame key {key!r} (width {key_width}, '
                                f'< {n_frames} expected)')
                break
            values = entry.get('keypoints')
            if not isinstance(values, list) or len(values) != 51 or 'scores' not in entry:
                problems.append(f'{path}: person {pid} frame {key}: bad entry')
                break
            xy = np.asarray(values, dtype=np.float64).reshape(17, 3)
            if (xy[:, 0].min() < 0 or xy[:, 0].max() > size[0] - 1 or xy[:, 1].min() < 0
                    or xy[:, 1].max() > size[1] - 1 or xy[:, 2].min() < 0 or xy[:, 2].max() > 1):
                problems.append(f'{path}: person {pid} frame {key}: values out of range')
                break
    return problems


def summarize_benchmark(root: str, seg_len: int = 24, train_stride: int = 6,
                        test_stride: int = 1) -> Dict:
    """Counts of clips, frames, tracks and STG-NF windows (the official window rule).

    Args:
        root: Benchmark root.
        seg_len: Window length T.
        train_stride: Window stride of training clips.
        test_stride: Window stride of test clips.

    Returns:
        dict: Per split: clips, frames, tracks, detections, windows; and abnormal test frames.
    """
    from .pose_utils import read_tracked_pose_json, stgnf_window_starts
    with open(osp.join(root, 'meta.json')) as f:
        meta = json.load(f)
    summary: Dict = {}
    for split, stride in (('train', train_stride), ('test', test_stride)):
        clips = meta[split]
        tracks = detections = windows = 0
        for name in clips:
            persons = read_tracked_pose_json(
                osp.join(root, 'pose', split, f'{name}_alphapose_tracked_person.json'))
            for frames, _, _ in persons.values():
                tracks += 1
                detections += len(frames)
                windows += len(stgnf_window_starts(frames, seg_len, stride)[0])
        summary[split] = {'clips': len(clips), 'frames': sum(c['frames'] for c in clips.values()),
                          'tracks': tracks, 'detections': detections,
                          f'windows_T{seg_len}_stride{stride}': windows,
                          'windows_per_track': round(windows / max(tracks, 1), 1)}
    summary['test']['abnormal_frames'] = sum(c['abnormal_frames'] for c in meta['test'].values())
    summary['test']['kind_frames'] = {
        k: sum(c['kind_frames'][k] for c in meta['test'].values()) for k in KIND_CODES}
    return summary


def make_montage(root: str, picks: Optional[Sequence[Tuple[str, int]]] = None, columns: int = 4,
                 draw_pose: bool = True) -> np.ndarray:
    """A grid of test frames with their pose detections and ground-truth kinds, for a look.

    Args:
        root: Benchmark root.
        picks: (clip, frame) pairs; by default the middle abnormal frame of each test clip with
            an event, and the middle frame of the others.
        columns: Tiles per row.
        draw_pose: Overlay the pose JSON skeletons.

    Returns:
        np.ndarray: The montage (BGR).
    """
    with open(osp.join(root, 'meta.json')) as f:
        meta = json.load(f)
    if picks is None:
        picks = []
        for name, clip in meta['test'].items():
            mask = np.load(osp.join(root, 'gt', 'test_frame_mask', f'{name}.npy'))
            where = np.flatnonzero(mask)
            picks.append((name, int(where[len(where) // 2]) if len(where) else clip['frames'] // 2))
    bones = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13),
             (13, 15), (12, 14), (14, 16), (0, 1), (0, 2), (1, 3), (2, 4))
    names = {v: k for k, v in KIND_CODES.items()}
    tiles = []
    for name, t in picks:
        clip = meta['test'][name]
        width = max(3, len(str(clip['frames'] - 1)))
        img = cv2.imread(osp.join(root, 'testing', 'frames', name, f'{t:0{width}d}.jpg'))
        kinds = np.load(osp.join(root, 'gt', 'test_frame_kinds', f'{name}.npy'))
        if draw_pose:
            with open(osp.join(root, 'pose', 'test', f'{name}_alphapose_tracked_person.json')) as f:
                poses = json.load(f)
            for track in poses.values():
                for key, entry in track.items():
                    if int(key) != t:
                        continue
                    kp = np.asarray(entry['keypoints']).reshape(17, 3)
                    for a, b in bones:
                        if kp[a, 2] > 0.45 and kp[b, 2] > 0.45:
                            cv2.line(img, tuple(int(v) for v in kp[a, :2]),
                                     tuple(int(v) for v in kp[b, :2]), (0, 255, 255), 1,
                                     cv2.LINE_AA)
        kind = names[int(kinds[t])]
        colour = (0, 0, 255) if kind != 'normal' else (0, 160, 0)
        cv2.rectangle(img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), colour, 3)
        label = f'{name} #{t} {kind}'
        if clip['event']:
            label += f' ({clip["event"]})'
        cv2.putText(img, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3,
                    cv2.LINE_AA)
        cv2.putText(img, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(img)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)
