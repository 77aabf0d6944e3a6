"""Offline score_video decodes each video frame once: the same scores as decoding per window."""
import json

import numpy as np
import pytest

from mgenet_mm.apis import inference, score_video
from tests.apis.test_inference import (load_mgenet, mgenet_checkpoint,  # noqa: F401
                                       one_torch_thread, write_scene)


@pytest.fixture(scope='module')
def finite_scene(tmp_path_factory):
    """The two-person walk of test_inference (its missed frames are left out of the poses)."""
    tmp = tmp_path_factory.mktemp('decode')
    video, poses = write_scene(tmp)
    pose_path = tmp / 'walk_alphapose_tracked_person.json'
    pose_path.write_text(json.dumps(poses))
    return dict(video=str(video), pose_path=str(pose_path))


@pytest.fixture(scope='module')
def mgenet_model(mgenet_checkpoint):  # noqa: F811  (test_inference's random-weight MGENet)
    return load_mgenet(mgenet_checkpoint)


def test_decode_once_equals_decoding_per_window(finite_scene, mgenet_model, monkeypatch):
    reads = []
    original = inference.ClipReader.__iter__

    def counting_iter(self):
        for image in original(self):
            reads.append(1)
            yield image

    monkeypatch.setattr(inference.ClipReader, '__iter__', counting_iter)
    # batch 7: batches that do not line up with persons or frames
    once = score_video(mgenet_model, finite_scene['video'], finite_scene['pose_path'],
                       scene_frames=40, batch_size=7, show_progress=False)
    # one pass, each frame once, up to the last frame a window needs
    last_needed = max(w['start_frame'] for w in once.windows) + 24 - 1
    assert len(reads) == last_needed + 1 <= 60
    before = score_video(mgenet_model, finite_scene['video'], finite_scene['pose_path'],
                         calibration=once.calibration, scene_frames=40, batch_size=7,
                         show_progress=False, decode_once=False)
    assert len(reads) == last_needed + 1  # the per-window path decodes in the pipeline
    # same windows, in the same (dataset) order, with the same tube boxes
    assert [(w['person_id'], w['start_frame'], w.get('tube_box')) for w in once.windows] == \
        [(w['person_id'], w['start_frame'], w.get('tube_box')) for w in before.windows]
    assert len(once.windows) == 23 + 22  # person 1 and person 2 (see test_inference)
    for a, b in zip(once.windows, before.windows):
        for name in a['components']:
            assert a['components'][name] == pytest.approx(b['components'][name], rel=1e-6,
                                                          abs=1e-6), name
    np.testing.assert_allclose(once.frame_scores, before.frame_scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(once.covered, before.covered)


def test_decode_once_without_windows(finite_scene, mgenet_model):
    result = score_video(mgenet_model, finite_scene['video'], {}, show_progress=False)
    assert result.windows == [] and result.num_frames == 60
