"""The OpenCV renderer: a clip's simulated persons drawn over its scene's background.

Limbs are thick lines, torso and pelvis projected convex hulls, the head a circle: every pixel
of a person is placed by its skeleton, so pose files and pixels agree. A part-label map drawn
alongside the colour image decides which joints are visible (:meth:`ClipRenderer.
joint_visibility`), which the pose-noise model (:mod:`.pose_noise`) turns into confidences.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np

from .backgrounds import ONE, SHIFT, bgr, scene_background, to_fixed
from .config import Camera
from .kinematics import PersonTrack, simulate_person
from .plans import ClipPlan, PersonPlan
from .vocabulary import (HEAD, JOINT_PARTS, LABEL_STRIDE, LANK, LEAR, LELB, LEYE, LHAND, LHIP,
                         LKNE, LSHO, LTOE, LWAIST, LWRI, N_BODY, NECK, NOSE, OBJECT_COLOURS,
                         OCCLUDED, OUTSIDE, PARTS, RANK, REAR, RELB, REYE, RHAND, RHIP, RKNE,
                         RSHO, RTOE, RWAIST, RWRI, SELF_OCCLUDED, VEHICLES, VISIBLE)

#: Per joint, the part ids it may lie on to count as visible (see ``JOINT_PARTS``).
_JOINT_PART_IDS = tuple(frozenset(PARTS[p] for p in parts) for parts in JOINT_PARTS)


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
        poly = cv2.convexHull(to_fixed(pts))
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
        colour = bgr(person.colours['bag'])
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
            canvas.circle(img2d[wheel], 0.14 * ppm, dark, label)
        canvas.hull(img2d[:8], main, label)
        canvas.line(img2d[10], (img2d[11] + img2d[12]) / 2, 0.08 * ppm, second, label)
        canvas.line(img2d[11], img2d[12], 0.05 * ppm, second, label)
        canvas.hull(img2d[13:21], main, label)  # the front crate, striped in the second colour
        crate = pts[13:21]
        for v0, v1 in ((0.3, 0.45), (0.6, 0.75)):
            band = [_bilinear(crate[[0, 1, 3, 2]], u, v) for u, v in ((0, v0), (1, v0),
                                                                     (1, v1), (0, v1))]
            canvas.hull(cam.project(np.array(band)), second, None)
    elif name == 'segway':
        for wheel in (8, 9):
            canvas.circle(img2d[wheel], 0.3 * ppm, dark, label)
            canvas.circle(img2d[wheel], 0.17 * ppm, main, None)  # coloured hub
        canvas.hull(img2d[:8], main, label)
        canvas.line(img2d[10], (img2d[11] + img2d[12]) / 2, 0.1 * ppm, second, label)
        canvas.line(img2d[11], img2d[12], 0.05 * ppm, second, label)


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
    return bgr(colour)


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
