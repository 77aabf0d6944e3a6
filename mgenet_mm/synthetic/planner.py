"""The planner: who walks where, doing what, wearing what, in every clip, without rendering.

Each clip draws from its own generator seeded by ``(seed, split, scene, clip)``, so clips do
not depend on each other. Test and validation clips get at most one anomalous event each
(:func:`plan_benchmark`).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import numpy as np

from .config import Camera, SyntheticConfig
from .kinematics import simulate_person
from .plans import ENTRY_MARGIN, OPEN, BenchmarkPlan, ClipPlan, PersonPlan, SceneSpec
from .vocabulary import (APPEARANCE_EVENTS, BAGS, BRAKE, CATEGORY_ORDERS, HAIRS, MOTION_EVENTS,
                         SCENE_DESCRIPTIONS, SCENE_TYPES, SHIRTS, SHOES, SKINS, TROUSERS,
                         VEHICLES)

#: Split -> code in the clip seeds: each split draws its own stream.
SPLIT_CODES = {'train': 0, 'test': 1, 'val': 2}
#: Validation clip numbers start here, so that no validation clip shares a test clip's name.
VAL_NUMBER_OFFSET = 500


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
    if event in APPEARANCE_EVENTS:
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
    clip_seed = int(np.random.default_rng([cfg.seed, 23, SPLIT_CODES[split], scene_index, index])
                    .integers(2**31))
    rng = np.random.default_rng(clip_seed)
    n_frames = int(rng.integers(cfg.frames[0], cfg.frames[1] + 1))
    if split == 'train':
        name = f'{scene.scene_id}_{index + 1:03d}'
    else:
        offset = VAL_NUMBER_OFFSET if split == 'val' else 0
        name = f'{scene.scene_id}_{index + 1 + offset:04d}'
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
    if split != 'train' and scene.running_normal:
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


def category_schedule(scenes: List[SceneSpec],
                      clips_per_scene: int) -> Dict[Tuple[int, int], str]:
    """The category of every evaluation clip: (scene index, clip index) -> category.

    A scene cycles its order of :data:`CATEGORY_ORDERS` over its clip index: ``running`` where
    running is normal (motion, appearance, normal), else ``plain_even`` / ``plain_odd`` for the
    even / odd such scenes. The default preset's 3 scenes x 8 clips give 6 scene-related,
    8 motion, 8 appearance and 2 normal clips, each kind spread evenly over the scenes where it
    can occur.
    """
    schedule = {}
    plain = 0
    for i, scene in enumerate(scenes):
        if scene.running_normal:
            order = CATEGORY_ORDERS['running']
        else:
            order = CATEGORY_ORDERS['plain_even' if plain % 2 == 0 else 'plain_odd']
            plain += 1
        for j in range(clips_per_scene):
            schedule[(i, j)] = order[j % len(order)]
    return schedule


def _plan_evaluation_split(cfg: SyntheticConfig, cam: Camera, scenes: List[SceneSpec],
                           split: str, clips_per_scene: int) -> List[ClipPlan]:
    """Test or validation clips: categories by :func:`category_schedule`; the motion and the
    appearance events rotate through their lists in clip-index-major order over the scenes, so
    8 clips of a kind hold each of its 4 events twice."""
    any_running_scene = any(s.running_normal for s in scenes)
    schedule = category_schedule(scenes, clips_per_scene)
    counters = {'motion': 0, 'appearance': 0}
    events = {'motion': MOTION_EVENTS, 'appearance': APPEARANCE_EVENTS}
    planned: Dict[Tuple[int, int], ClipPlan] = {}
    for j in range(clips_per_scene):
        for i, scene in enumerate(scenes):
            category = schedule[(i, j)]
            event, kind = None, 'normal'
            if category == 'scene':
                # Without a scene where running is normal, running is simply a motion anomaly.
                event = 'jog'
                kind = category = 'scene' if any_running_scene else 'motion'
            elif category in events:
                event = events[category][counters[category] % len(events[category])]
                counters[category] += 1
                kind = category
            planned[(i, j)] = _plan_clip(cfg, cam, scene, split, j, i, category, event, kind)
    return [planned[(i, j)] for i in range(len(scenes)) for j in range(clips_per_scene)]


def plan_benchmark(cfg: SyntheticConfig) -> BenchmarkPlan:
    """Plan every clip (who walks where, doing what, wearing what) without rendering anything.

    Training clips are normal. Test and validation clips (the same rules, their own seeds) get
    one event each by :func:`category_schedule`: a scene-related ``jog`` or the next motion or
    appearance anomaly in rotation, or none (a normal clip). Every sports-ground evaluation
    clip has normal joggers.

    Args:
        cfg: Sizes and seed.

    Returns:
        BenchmarkPlan: the plan (train, then test, then validation clips);
        :func:`generate_benchmark` renders it.
    """
    cam = Camera.for_size(*cfg.size)
    scenes = _scene_specs(cfg)
    clips = [_plan_clip(cfg, cam, scene, 'train', j, i)
             for i, scene in enumerate(scenes) for j in range(cfg.train_clips)]
    clips += _plan_evaluation_split(cfg, cam, scenes, 'test', cfg.test_clips)
    clips += _plan_evaluation_split(cfg, cam, scenes, 'val', cfg.val_clips)
    return BenchmarkPlan(cfg, cam, scenes, clips)
