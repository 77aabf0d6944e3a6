"""RBDC/TBDC maths on hand-built cases whose values are computed by hand."""
import warnings

import numpy as np
import pytest

from mgenet_mm.evaluation.functional.region_metrics import (area_under_fpr, box_iou, check_boxes,
                                                            detection_curves, match_detections,
                                                            rbdc_tbdc, track_detection_scores)

# Two frames. GT: region A (frame 0, track 0), B (frame 1, track 0), C (frame 1, track 1).
GT_FRAMES = np.array([0, 1, 1])
GT_BOXES = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], dtype=float)
GT_TRACKS = np.array([0, 0, 1])
# Detections, by descending score:
#   0.9 frame 0 on A (IoU 1)            -> hits A
#   0.8 frame 1 far from everything     -> false positive
#   0.7 frame 1 on C (IoU 1)            -> hits C
#   0.6 frame 0 far away                -> false positive
#   0.5 frame 1 shifted 5 px from B     -> IoU 50 / 150 = 1/3, hits B
#   0.4 frame 0 corner-touching A       -> IoU 1 / 199 < 0.1, false positive
DET_FRAMES = np.array([0, 1, 1, 0, 1, 0])
DET_BOXES = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30],
                      [100, 100, 110, 110], [5, 0, 15, 10], [9, 9, 19, 19]], dtype=float)
DET_SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


def test_box_iou_by_hand() -> None:
    iou = box_iou(DET_BOXES[[0, 4, 5]], GT_BOXES[:1])
    np.testing.assert_allclose(iou[:, 0], [1.0, 50 / 150, 1 / 199])
    assert box_iou(np.array([[0, 0, 1, 1]]), np.array([[1, 0, 2, 1]]))[0, 0] == 0  # touching


def test_match_detections() -> None:
    matched = match_detections(DET_FRAMES, DET_BOXES, DET_SCORES, GT_FRAMES, GT_BOXES)
    np.testing.assert_array_equal(matched['region_scores'], [0.9, 0.5, 0.7])
    np.testing.assert_array_equal(matched['true_positive'],
                                  [True, False, True, False, True, False])
    # Same box in another frame never matches.
    other = match_detections(np.array([5]), GT_BOXES[:1], np.array([1.0]), GT_FRAMES, GT_BOXES)
    assert np.isneginf(other['region_scores']).all() and not other['true_positive'].any()


def test_curves_and_areas_by_hand() -> None:
    # Points (FPR, RBDR, TBDR): inf (0, 0, 0); 0.9 (0, 1/3, 1/2); 0.8 (1/2, 1/3, 1/2);
    # 0.7 (1/2, 2/3, 1); 0.6 (1, 2/3, 1); 0.5 (1, 1, 1); 0.4 (3/2, 1, 1).
    matched = match_detections(DET_FRAMES, DET_BOXES, DET_SCORES, GT_FRAMES, GT_BOXES)
    tracks = track_detection_scores(matched['region_scores'], GT_TRACKS)
    np.testing.assert_array_equal(tracks, [0.9, 0.7])  # each needs one detected region
    curves = detection_curves(DET_SCORES, matched['true_positive'], matched['region_scores'],
                              tracks, num_frames=2)
    np.testing.assert_allclose(curves['fpr'], [0, 0, .5, .5, 1, 1, 1.5])
    np.testing.assert_allclose(curves['rbdr'], [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(curves['tbdr'], [0, .5, .5, 1, 1, 1, 1])
    # RBDC = 0.5 * 1/3 + 0.5 * 2/3 = 0.5; TBDC = 0.5 * 1/2 + 0.5 * 1 = 0.75
    result = rbdc_tbdc(DET_FRAMES, DET_BOXES, DET_SCORES, GT_FRAMES, GT_BOXES, GT_TRACKS, 2)
    assert result['rbdc'] == pytest.approx(0.5) and result['tbdc'] == pytest.approx(0.75)
    assert (result['num_detections'], result['num_true_detections'], result['num_regions'],
            result['num_tracks']) == (6, 3, 3, 2)
    # Over 4 frames every FPR halves: RBDC = 0.25 * 1/3 + 0.25 * 2/3 + 0.5 * 1 = 0.75,
    # TBDC = 0.25 * 1/2 + 0.75 * 1 = 0.875.
    result = rbdc_tbdc(DET_FRAMES, DET_BOXES, DET_SCORES, GT_FRAMES, GT_BOXES, GT_TRACKS, 4)
    assert result['rbdc'] == pytest.approx(0.75) and result['tbdc'] == pytest.approx(0.875)


def test_area_interpolates_at_one_and_extends_flat() -> None:
    # A tie of one hit and two false positives over one frame: the segment (0, 0) -> (2, 1)
    # crosses FPR = 1 at rate 1/2: area 1/4.
    one = np.array([[0, 0, 10, 10]], dtype=float)
    result = rbdc_tbdc([0, 0, 0], np.concatenate([one, one + 50, one + 100]), [0.5, 0.5, 0.5],
                       [0], one, [0], num_frames=1)
    assert result['rbdc'] == pytest.approx(0.25) and result['tbdc'] == pytest.approx(0.25)
    # A perfect detector: no false positive at all, the curve stays at 1 up to FPR 1.
    assert rbdc_tbdc([0], one, [0.3], [0], one, [0], num_frames=1)['rbdc'] == 1.0
    assert area_under_fpr(np.array([0, 0.5]), np.array([0, 1.0])) == pytest.approx(0.75)
    with pytest.raises(ValueError, match='non-decreasing'):
        area_under_fpr(np.array([0, 1, 0.5]), np.array([0, 1, 1]))


def test_track_needs_ten_percent_of_its_regions() -> None:
    # Track 0: 10 regions (needs 1); track 1: 11 regions (needs 2); track 2: 30 (needs 3).
    tracks = np.repeat([0, 1, 2], [10, 11, 30])
    scores = np.full(51, -np.inf)
    scores[0] = 0.2                     # one region of track 0
    scores[10] = 0.9                    # one region of track 1: not enough
    scores[[21, 22, 23]] = [0.8, 0.1, 0.6]  # three regions of track 2: detected from 0.1 on
    np.testing.assert_array_equal(track_detection_scores(scores, tracks), [0.2, -np.inf, 0.1])
    scores[11] = 0.3                    # a second region of track 1
    assert track_detection_scores(scores, tracks)[1] == 0.3


def test_without_detections_or_regions_is_zero_with_a_warning() -> None:
    one = np.array([[0, 0, 10, 10]], dtype=float)
    with pytest.warns(RuntimeWarning, match='without any detection'):
        result = rbdc_tbdc([], np.zeros((0, 4)), [], [0], one, [0], num_frames=3)
    assert result['rbdc'] == 0.0 and result['tbdc'] == 0.0 and result['num_regions'] == 1
    with pytest.warns(RuntimeWarning, match='without any GT region'):
        result = rbdc_tbdc([0], one, [1.0], [], np.zeros((0, 4)), [], num_frames=3)
    assert result == dict(rbdc=0.0, tbdc=0.0, num_true_detections=0, num_detections=1,
                          num_regions=0, num_tracks=0)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no warning when both are there
        rbdc_tbdc([0], one, [1.0], [0], one, [0], num_frames=1)


def test_bad_boxes_and_scores() -> None:
    one = np.array([[0, 0, 10, 10]], dtype=float)
    with pytest.raises(ValueError, match=r'GT region box 0 \[5.0, 0.0, 5.0, 10.0\] has zero'):
        rbdc_tbdc([0], one, [1.0], [0], np.array([[5, 0, 5, 10]]), [0], 1)
    with pytest.raises(ValueError, match='detection box 1 .* negative size'):
        check_boxes(np.array([[0, 0, 1, 1], [0, 5, 1, 2]]), 'detection box')
    with pytest.raises(ValueError, match='not finite'):
        rbdc_tbdc([0], one, [np.nan], [0], one, [0], 1)
    with pytest.raises(ValueError, match='1 frames, 1 boxes and 2 scores'):
        rbdc_tbdc([0], one, [1.0, 2.0], [0], one, [0], 1)
