"""Sizes of a synthetic benchmark (:class:`SyntheticConfig`, its presets) and its camera."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Tuple

import numpy as np


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes of a synthetic benchmark.

    Attributes:
        seed (int): Master seed; the same seed gives byte-identical files.
        scenes (int): Number of scenes (types cycle plaza, street, sports, park).
        train_clips (int): Training videos per scene (normal behaviour only).
        test_clips (int): Test clips per scene.
        val_clips (int): Validation clips per scene (the test split's layout and kinds of
            anomalies, drawn from their own seeds), for choosing hyperparameters.
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
    test_clips: int = 8
    val_clips: int = 5
    frames: Tuple[int, int] = (160, 240)
    size: Tuple[int, int] = (320, 240)
    persons: Tuple[int, int] = (3, 5)
    fps: int = 25
    jpeg_quality: int = 90
    preset: str = 'default'


PRESETS = {
    'tiny': dict(scenes=3, train_clips=1, test_clips=1, val_clips=1, frames=(72, 80),
                 persons=(2, 3)),
    # 24 test clips: 6 scene-related, 8 motion and 8 appearance clips (every event type twice)
    # and 2 normal ones; 15 validation clips.
    'default': dict(scenes=3, train_clips=6, test_clips=8, val_clips=5, frames=(160, 240),
                    persons=(3, 5)),
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
    if cfg.scenes < 1 or min(cfg.train_clips, cfg.test_clips, cfg.val_clips) < 0:
        raise ValueError(f'need >= 1 scene and non-negative clip counts, got {cfg}')
    if cfg.test_clips > 500 or cfg.val_clips > 499:
        # Validation clips are numbered from 501 on, after the test clips (names stay distinct).
        raise ValueError(f'at most 500 test and 499 validation clips per scene, got {cfg}')
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


def config_dict(cfg: SyntheticConfig) -> Dict:
    """The config as plain JSON values (recorded in meta.json to recognise a benchmark)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
