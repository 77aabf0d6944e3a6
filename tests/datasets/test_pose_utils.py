"""normalize_windows: hand-computed values, and the plain numpy formulation to the bit."""
import numpy as np
import pytest

from mgenet_mm.datasets.pose_utils import normalize_windows


def plain_normalize(windows: np.ndarray, video_resolution=(856., 480.), eps: float = 0.0):
    """The straightforward formulation on the (N, T, V, C) array (the previous implementation)."""
    out = windows.astype(np.float64, copy=True)
    out[..., :2] /= np.asarray(video_resolution, dtype=np.float64)
    out[..., :2] -= out[..., :2].mean(axis=(1, 2), keepdims=True)
    y_std = out[..., 1].std(axis=(1, 2))
    degenerate = ~(y_std > eps)
    out[..., :2] /= np.where(degenerate, 1.0, y_std)[:, None, None, None]
    return out.astype(np.float32), degenerate


def test_hand_computed_window() -> None:
    # One window, T=2, V=1: pixels (0, 0) and (10, 20) with resolution (10, 20) -> (0, 0), (1, 1);
    # centred (-0.5, -0.5), (0.5, 0.5); the std of y is 0.5, so x and y become -1 and 1.
    window = np.array([[[[0., 0., 0.3]], [[10., 20., 0.9]]]], dtype=np.float32)  # (1, 2, 1, 3)
    out, degenerate = normalize_windows(window, video_resolution=(10., 20.))
    assert out.dtype == np.float32 and out.shape == (1, 2, 1, 3)
    np.testing.assert_array_equal(out[0, :, 0, :2], [[-1., -1.], [1., 1.]])
    np.testing.assert_array_equal(out[0, :, 0, 2], np.float32([0.3, 0.9]))  # confidence kept
    assert degenerate.tolist() == [False]


def test_degenerate_window_is_centred_not_scaled() -> None:
    # Second window: y constant (std 0) -> flagged, x centred only: (2 - 3) / 4, (4 - 3) / 4.
    windows = np.zeros((2, 2, 1, 3), dtype=np.float32)
    windows[0, :, 0, :2] = [[0., 0.], [10., 20.]]
    windows[1, :, 0, :2] = [[2., 7.], [4., 7.]]
    out, degenerate = normalize_windows(windows, video_resolution=(4., 20.))
    assert degenerate.tolist() == [False, True]
    np.testing.assert_array_equal(out[1, :, 0, 0], [-0.25, 0.25])
    np.testing.assert_array_equal(out[1, :, 0, 1], [0., 0.])


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_equals_the_plain_formulation_bit_for_bit(dtype) -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        n, t, v, c = (int(rng.integers(1, 30)), int(rng.integers(1, 30)),
                      int(rng.integers(1, 20)), int(rng.integers(2, 4)))
        windows = (rng.uniform(0, 900, size=(n, t, v, c)) * rng.uniform(1e-3, 1)).astype(dtype)
        windows[0, ..., 1] = 7.0  # one degenerate window in every batch
        got, got_degenerate = normalize_windows(windows)
        want, want_degenerate = plain_normalize(windows)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got_degenerate, want_degenerate)
        assert got_degenerate[0]
        np.testing.assert_array_equal(got, want)


def test_batch_equals_one_window_at_a_time() -> None:
    rng = np.random.default_rng(1)
    windows = rng.uniform(0, 800, size=(150, 24, 18, 3)).astype(np.float32)  # 3 chunks
    batch, degenerate = normalize_windows(windows)
    want, _ = plain_normalize(windows)
    np.testing.assert_array_equal(batch, want)
    assert degenerate.shape == (150,) and not degenerate.any()
    for i in range(len(windows)):
        alone, _ = normalize_windows(windows[i:i + 1])
        np.testing.assert_array_equal(batch[i:i + 1], alone)


def test_does_not_modify_its_input() -> None:
    windows = np.random.default_rng(2).uniform(0, 800, size=(3, 4, 5, 3)).astype(np.float32)
    before = windows.copy()
    normalize_windows(windows)
    np.testing.assert_array_equal(windows, before)
