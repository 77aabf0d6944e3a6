"""What a benchmark is made of before it is simulated: scenes, persons, clips and the whole plan.

The planner (:mod:`.planner`) fills these in; the kinematics (:mod:`.kinematics`) run a
:class:`PersonPlan`; the writer records them in meta.json. They live apart from the planner
because the planner itself simulates candidate events (to keep only visible ones), so planner
and kinematics both need them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .config import Camera, SyntheticConfig

#: People enter and leave this far (metres) beyond the visible edges, i.e. fully off screen.
ENTRY_MARGIN = 0.7
OPEN = 10**6  # length of an open-ended last segment


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
    """One clip: name, split ('train', 'test' or 'val'), scene, length, persons and its event."""
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
    """The whole benchmark: config, camera, scenes and clips (train, then test, then val)."""
    config: SyntheticConfig
    camera: Camera
    scenes: List[SceneSpec]
    clips: List[ClipPlan]

    def split(self, split: str) -> List[ClipPlan]:
        return [c for c in self.clips if c.split == split]
