"""tools/analysis/feature_probe.py: the nearest-neighbour probe's maths on small arrays."""

import numpy as np

from tests.conftest import load_tool


TOOL = 'tools/analysis/feature_probe.py'


def test_knn_distance_is_the_mean_of_the_k_smallest_distances():
    tool = load_tool(TOOL)
    rng = np.random.default_rng(0)
    train = rng.normal(size=(50, 6)).astype(np.float32)
    test = rng.normal(size=(7, 6)).astype(np.float32)
    distances = np.linalg.norm(test[:, None] - train[None], axis=2)  # (7, 50)
    expected = np.sort(distances, axis=1)[:, :3].mean(axis=1)
    np.testing.assert_allclose(tool.knn_distance(train, test, 3), expected, rtol=1e-5)
    # standardisation uses the training statistics only
    a, b = tool.standardise(train, test)
    np.testing.assert_allclose(a.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(b, (test - train.mean(0)) / (train.std(0) + 1e-6), rtol=1e-5)


def test_position_knn_scores_each_token_against_every_training_token():
    tool = load_tool(TOOL)
    rng = np.random.default_rng(1)
    train = rng.normal(size=(20, 3, 4)).astype(np.float32)  # (N, P, C)
    test = rng.normal(size=(5, 3, 4)).astype(np.float32)
    pool = train.reshape(-1, 4)  # every training token, whatever its window or position
    distances = np.linalg.norm(test[:, :, None] - pool[None, None], axis=3)  # (5, 3, 60)
    expected = np.sort(distances, axis=2)[:, :, :2].mean(axis=2).mean(axis=1)
    np.testing.assert_allclose(tool.position_knn_distance(train, test, 2), expected, rtol=1e-5)
    # a single odd token raises its window's score by its own distance / P
    odd = test.copy()
    odd[0, 1] += 50
    assert tool.position_knn_distance(train, odd, 2)[0] > expected[0] + 40 / 3


def test_evaluate_follows_the_protocol():
    tool = load_tool(TOOL)
    # One clip of 40 frames, frames 20..29 abnormal (kind 1); one person, T = 4: the window
    # starting at s scores frame s + 2. Anomalous windows centred inside the abnormal run.
    gt = {'c': np.zeros(40, np.int64)}
    gt['c'][20:30] = 1
    kinds = {'c': gt['c'].copy()}
    identities = [('c', 1, s) for s in range(36)]
    anomaly = np.array([1.0 if 20 <= s + 2 < 30 else 0.0 for s in range(36)])
    metrics = tool.evaluate(anomaly, identities, gt, kinds, seg_len=4)
    assert metrics['micro_auc'] > 0.95 and metrics['micro_auc/motion'] > 0.95
    flipped = tool.evaluate(-anomaly, identities, gt, kinds, seg_len=4)
    assert flipped['micro_auc'] < 0.2  # not 1 - AUC: empty frames get the fill value
