"""A seeded synthetic human-behaviour anomaly benchmark, written in the ShanghaiTech layout.

No real video-anomaly dataset can be fetched where this project is developed and tested, so the
embedded default is a small benchmark rendered here from a few hundred lines of kinematics and
OpenCV drawing. It is built to exercise all three of MGENet's branches:

* motion anomalies (``sprint``, ``fall``, ``jump``, ``fight``): the skeleton moves in ways never
  seen in training;
* appearance anomalies (``carry_box``, ``carry_panel``, ``scooter``, ``segway``): the skeleton
  is that of ordinary walking (or of standing, on a vehicle), but the person carries a large object
  or rides a vehicle drawn in colours and textures that never occur in training, each large
  enough to cover at least a token's area of the demo's 32 px person tube (:mod:`.coverage`);
* scene-related anomalies (``jog``): running is normal on the sports ground (it occurs there in
  training and in test), and abnormal in every other scene. Its motion is drawn from exactly the
  same distribution in both cases, so only the scene tells them apart.

Layout (``docs/data_preparation.md``, :mod:`.layout`; frame numbers are 0-based everywhere)::

    <out>/training/videos/<scene>_<clip>.avi
    <out>/testing/frames/<scene>_<clip>/<NNN>.jpg
    <out>/testing/videos/<scene>_<clip>.avi
    <out>/validation/{frames,videos}/...                the same for the validation clips
    <out>/pose/{train,test,val}/<scene>_<clip>_alphapose_tracked_person.json
    <out>/gt/test_frame_mask/<scene>_<clip>.npy        1 = abnormal
    <out>/gt/test_frame_kinds/<scene>_<clip>.npy       0 normal, 1 motion, 2 appearance, 3 scene
    <out>/gt/test_frame_events/<scene>_<clip>.npy      0 normal, k = event k (names.json: k ->
                                                       "<kind>/<event>", e.g. "appearance/segway")
    <out>/gt/val_frame_{mask,kinds,events}/...         the same for the validation clips
    <out>/meta.json

The validation split has the test split's layout and rules and its own seeds: hyperparameters
are chosen on it, never on the test split.

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

One module per concern: :mod:`.vocabulary` (names, codes, palettes), :mod:`.config` (sizes,
presets, camera), :mod:`.plans` and :mod:`.planner` (who does what where), :mod:`.kinematics`
(skeletons over time, ground truth), :mod:`.backgrounds` and :mod:`.renderer` (OpenCV drawing),
:mod:`.pose_noise` (detections as a pose estimator reports them), :mod:`.layout` (paths),
:mod:`.writer` (files on disk), :mod:`.checks` (layout check, summary, montage) and
:mod:`.coverage` (how much of the person tube an object covers). It is a benchmark generator,
not a dataset: nothing here is registered; the datasets read what it writes.
"""
from .backgrounds import scene_background
from .checks import check_layout, expected_files, make_montage, summarize_benchmark
from .config import PRESETS, Camera, SyntheticConfig, config_dict, preset_config
from .kinematics import PersonTrack, clip_ground_truth, simulate_person
from .planner import plan_benchmark
from .plans import BenchmarkPlan, ClipPlan, PersonPlan, SceneSpec
from .renderer import ClipRenderer
from .vocabulary import (ANOMALIES, APPEARANCE_EVENTS, EVENT_CODES, HAIRS, JOINT_PARTS,
                         KIND_CODES, LABEL_STRIDE, MOTION_EVENTS, OBJECT_COLOURS, PARTS, SHIRTS,
                         SKINS, TROUSERS, VISIBLE)
from .writer import generate_benchmark, generate_clip, plan_meta

__all__ = [
    'ANOMALIES', 'EVENT_CODES', 'KIND_CODES', 'PRESETS', 'Camera', 'ClipPlan', 'BenchmarkPlan',
    'PersonPlan',
    'PersonTrack', 'SceneSpec', 'SyntheticConfig', 'ClipRenderer', 'check_layout',
    'clip_ground_truth', 'config_dict', 'expected_files', 'generate_benchmark', 'generate_clip',
    'make_montage', 'plan_benchmark', 'plan_meta', 'preset_config', 'scene_background',
    'simulate_person', 'summarize_benchmark', 'APPEARANCE_EVENTS', 'HAIRS', 'JOINT_PARTS',
    'LABEL_STRIDE', 'MOTION_EVENTS', 'OBJECT_COLOURS', 'PARTS', 'SHIRTS', 'SKINS', 'TROUSERS',
    'VISIBLE'
]
