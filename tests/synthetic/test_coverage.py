"""Object coverage of the person tube: the measurement, and the default benchmark's objects."""
import numpy as np
import pytest

from mgenet_mm.synthetic import APPEARANCE_EVENTS, plan_benchmark, preset_config
from mgenet_mm.synthetic.coverage import (clip_object_coverage, summarize_coverage,
                                          tube_coverage)


def test_tube_coverage_counts_pixels_and_tokens() -> None:
    mask = np.zeros((100, 100), bool)
    box = np.array([10, 10, 74, 74])  # 64 px box -> 32 px tube: scale 1/2, tokens of 8 px
    mask[10:26, 10:26] = True  # 16 x 16 frame px = 8 x 8 tube px = exactly the first token
    cov = tube_coverage(mask, box, tube_size=32, patch=8)
    assert cov['pixel_fraction'] == pytest.approx(64 / 1024)
    assert cov['token_area'] == pytest.approx(1.0)
    assert cov['tokens_touched'] == 1 and cov['tokens_half'] == 1
    # the same area straddling four tokens: one token's area, four touched, none half covered
    shifted = np.zeros_like(mask)
    shifted[18:34, 18:34] = True
    cov = tube_coverage(shifted, box, tube_size=32, patch=8)
    assert cov['token_area'] == pytest.approx(1.0)
    assert cov['tokens_touched'] == 4 and cov['tokens_half'] == 0
    # outside the box counts for nothing; a box reaching out of the frame is padded, not shifted
    assert tube_coverage(mask, np.array([40, 40, 104, 104]), 32, 8)['token_area'] == 0
    cov = tube_coverage(mask, np.array([-6, -6, 58, 58]), 32, 8)
    assert cov['token_area'] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='does not divide'):
        tube_coverage(mask, box, tube_size=32, patch=7)


def test_every_appearance_object_fills_a_token_of_the_demo_tube() -> None:
    """At the demo's 32 px tube (4x4 tokens), every appearance event type's object covers at
    least one token's area in the median window (tools/analysis/object_coverage.py measures
    the same on the written benchmark's detected keypoints)."""
    plan = plan_benchmark(preset_config('default'))
    rows = []
    for clip in plan.split('test'):
        if clip.event in APPEARANCE_EVENTS:
            rows += clip_object_coverage(clip, plan.camera, plan.config.fps, stride=12)
    summary = summarize_coverage(rows)
    assert set(summary) == set(APPEARANCE_EVENTS)
    for event, entry in summary.items():
        assert entry['windows'] >= 2, event
        assert entry['token_area'] >= 1.0, (event, entry)
        assert entry['tokens_touched'] >= 2, (event, entry)
        # the person keeps its scale: ~2/3 of the tube, not a sliver of a stretched box
        assert 16 <= entry['person_px'] <= 30, (event, entry)
    # without the cap, a rider's tube spans the whole path and the vehicle shrinks away
    uncapped = []
    for clip in plan.split('test'):
        if clip.event == 'scooter':
            uncapped += clip_object_coverage(clip, plan.camera, plan.config.fps, stride=12,
                                             max_person_ratio=None)
    assert summarize_coverage(uncapped)['scooter']['token_area'] < \
        summary['scooter']['token_area']
