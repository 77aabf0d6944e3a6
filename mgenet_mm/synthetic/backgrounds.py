"""The static backgrounds of the four scene types, drawn with OpenCV from a projected world.

Also home of the fixed-point drawing primitives (:data:`SHIFT`, :func:`to_fixed`, :func:`bgr`)
that the person renderer (:mod:`.renderer`) draws with too.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence, Tuple

import cv2
import numpy as np

from .config import Camera
from .kinematics import box_corners
from .plans import SceneSpec


SHIFT = 4
ONE = 1 << SHIFT


def to_fixed(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> int32 fixed point for OpenCV's sub-pixel drawing."""
    return np.round(np.asarray(points, dtype=np.float64) * ONE).astype(np.int32)


def _fill_world(img: np.ndarray, cam: Camera, pts: Sequence, colour) -> None:
    poly = to_fixed(cam.project(np.asarray(pts, dtype=np.float64)))
    cv2.fillConvexPoly(img, cv2.convexHull(poly), bgr(colour), cv2.LINE_AA, SHIFT)


def bgr(colour) -> Tuple[int, int, int]:
    """A colour as OpenCV wants it: a tuple of ints clipped to 0..255."""
    return tuple(int(np.clip(round(c), 0, 255)) for c in colour)


def _jitter(rng: np.random.Generator, colour, amount: float) -> Tuple[int, int, int]:
    return bgr(np.asarray(colour, dtype=np.float64) + rng.normal(0, amount))


def _ground_rect(img, cam, x0, x1, z0, z1, colour) -> None:
    _fill_world(img, cam, [(x0, 0, z0), (x1, 0, z0), (x1, 0, z1), (x0, 0, z1)], colour)


def _world_line(img, cam, p, q, colour, thickness: int = 1) -> None:
    a, b = to_fixed(cam.project(np.array([p, q], dtype=np.float64)))
    cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), bgr(colour), thickness,
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
    corners = box_corners(centre, half)
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
        cv2.circle(img, tuple(int(v) for v in to_fixed(centre + offset)),
                   int(radius * rng.uniform(0.6, 0.9) * ONE), col, -1, cv2.LINE_AA, SHIFT)


def _lamp(img, cam, x, z) -> None:
    _world_line(img, cam, (x, 0, z), (x, 4.0, z), (60, 60, 60),
                max(1, int(round(0.12 * cam.focal / z))))
    centre = cam.project(np.array([x, 4.0, z]))
    cv2.circle(img, tuple(int(v) for v in to_fixed(centre)), int(0.25 * cam.focal / z * ONE),
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
        cv2.ellipse(img, tuple(int(v) for v in to_fixed(c)), tuple(int(v * ONE) for v in axes),
                    0, 0, 360, (140, 105, 60), -1, cv2.LINE_AA, SHIFT)
        for _ in range(3):
            _tree(img, cam, rng, rng.uniform(-9, 9), rng.uniform(16, 26))
        _box_prop(img, cam, (rng.uniform(-5, 5), 0.22, 22), (0.8, 0.22, 0.25), (40, 70, 110))
    # Low-frequency shading and fine grain, so that no region is a flat colour.
    shade = _smooth_noise(rng, h, w, 6, 0.035)[..., None]
    grain = rng.normal(0, 3.0, size=(h, w, 1))
    img = np.clip(img.astype(np.float64) * shade + grain, 0, 255).astype(np.uint8)
    return img
