"""Kinematics: a person's script integrated frame by frame into 3-D body and object points.

People are articulated 3-D stick figures (COCO-17 joints plus a few helper points for drawing)
in a world whose ground is Y = 0 (see :class:`~.config.Camera`). :func:`simulate_person` gives
the points of every frame, their projection, and whether the person is on screen and performing
its anomaly, from which :func:`clip_ground_truth` derives the frame labels without rendering.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from .config import Camera
from .plans import ENTRY_MARGIN, PersonPlan
from .vocabulary import (BRAKE, EVENT_CODES, GAIT, HEAD, KIND_CODES, LANK, LEAR, LELB, LEYE,
                         LHAND, LHIP, LKNE, LSHO, LTOE, LWAIST, LWRI, MODE_CODE, MOVING_MODES,
                         N_BODY, NECK, NOSE, OBJECT_POINTS, RANK, REAR, RELB, REYE, RHAND, RHIP,
                         RKNE, RSHO, RTOE, RWAIST, RWRI, TURN_RATE, VEHICLES)


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


def box_corners(centre, half) -> np.ndarray:
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
        rel[:, slices['backpack']] = box_corners((0, 0.33 * s, -0.18 * s), (0.15, 0.19, 0.07))
        upper_idx += list(range(slices['backpack'].start, slices['backpack'].stop))
    if person.attachment == 'carry_box':
        rel[:, slices['carry_box']] = box_corners((0, 0.24 * s, 0.38 * s), (0.36, 0.3, 0.24))
        upper_idx += list(range(slices['carry_box'].start, slices['carry_box'].stop))
    elif person.attachment == 'carry_panel':
        x = panel_side * 0.3 * s
        rel[:, slices['carry_panel']] = np.array(
            [[x, -0.3 * s, -0.6], [x, -0.3 * s, 0.6], [x, 0.55 * s, 0.6], [x, 0.55 * s, -0.6]])
        upper_idx += list(range(slices['carry_panel'].start, slices['carry_panel'].stop))
    idx = np.array(upper_idx)
    # (N, K, 3) -> (N * K, 3): one lean rotation per point, the frame's angle repeated K times
    flat = rel[:, idx].reshape(-1, 3)
    leaned = _rot_x(flat, np.repeat(np.radians(ang['lean']), len(idx)))
    pts[:, idx] = leaned.reshape(n, len(idx), 3) + centre  # back to (N, K, 3)
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
    # Deck heights (metres) the feet stand on. Vehicles are drawn large enough to cover about
    # a token or more of a 32 px person tube seen from the side (tools/analysis/object_coverage.py):
    # a delivery kick scooter with a front crate, a big-wheeled self-balancing segway.
    deck = {'scooter': 0.19, 'segway': 0.25}.get(vehicle, 0.0)
    local[:, :, 1] += (-contact + lift + deck)[:, None]
    if vehicle == 'scooter':
        hands = (local[:, LWRI] + local[:, RWRI]) / 2
        sl = slices['scooter']
        veh = np.zeros((n, sl.stop - sl.start, 3))
        veh[:, :8] = box_corners((0, 0.12, 0.04), (0.09, 0.07, 0.48))  # deck
        veh[:, 8] = (0, 0.14, -0.48)  # rear and front wheel centres (radius 0.14)
        veh[:, 9] = (0, 0.14, 0.56)
        veh[:, 10] = (0, 0.19, 0.52)  # stem base
        veh[:, 11] = hands + (0.22, 0, 0)  # handlebar ends
        veh[:, 12] = hands - (0.22, 0, 0)
        crate_centre = np.array([0.0, 0.0, 0.2]) + (hands + np.array([0.0, 0.19, 0.52])) / 2
        veh[:, 13:21] = crate_centre[:, None] + box_corners((0, 0, 0), (0.18, 0.16, 0.14))
        local[:, sl] = veh
    elif vehicle == 'segway':
        hands = (local[:, LWRI] + local[:, RWRI]) / 2
        sl = slices['segway']
        veh = np.zeros((n, sl.stop - sl.start, 3))
        veh[:, :8] = box_corners((0, 0.21, 0.0), (0.26, 0.04, 0.15))  # platform
        veh[:, 8] = (0.38, 0.3, 0)  # wheel centres (radius 0.3), either side of the rider
        veh[:, 9] = (-0.38, 0.3, 0)
        veh[:, 10] = (0, 0.25, 0.12)  # stem base
        veh[:, 11] = hands + (0.2, 0, 0)  # handlebar ends
        veh[:, 12] = hands - (0.2, 0, 0)
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


def clip_event_labels(tracks: Sequence[PersonTrack]) -> np.ndarray:
    """Per-frame event codes (:data:`EVENT_CODES`, 0 = normal), consistent with the kinds.

    A frame takes the event of the anomalous person whose kind wins in
    :func:`clip_ground_truth` (ties: the smaller event code), so ``events > 0`` is exactly the
    frame mask.

    Args:
        tracks: The clip's simulated persons.

    Returns:
        np.ndarray: (F,) uint8 event codes.
    """
    _, kinds = clip_ground_truth(tracks)
    events = np.zeros(len(kinds), dtype=np.uint8)
    for track in tracks:
        if track.person.anomaly is None:
            continue
        code = EVENT_CODES[track.person.anomaly]
        active = track.performing & (kinds == KIND_CODES[track.person.kind])
        events[active] = np.where(events[active] == 0, code, np.minimum(events[active], code))
    return events
