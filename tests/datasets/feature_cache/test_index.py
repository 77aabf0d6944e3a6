"""Feature cache window index: a few small integers per window, lookups by identity."""
import numpy as np
import pytest

from mgenet_mm.datasets.feature_cache import WindowIndex


def test_index_is_small_ints_per_window() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    windows = [(f'clip_{c:03d}', int(p), int(s))
               for c, p, s in zip(rng.integers(0, 100, n), rng.integers(0, 50, n),
                                  rng.permutation(10 * n)[:n])]
    index = WindowIndex.from_windows(windows)
    assert index.nbytes / n <= 4 + 8 + 8 + 8 + 4  # columns + lookup, independent of T
    for i in (0, 17, n - 1):
        assert index.lookup(*windows[i]) == i
    index.compact()
    assert index.nbytes / n <= 12
    assert index.lookup(*windows[123]) == 123
    with pytest.raises(ValueError, match='duplicated windows'):
        WindowIndex.from_windows([('a', 1, 0), ('b', 1, 0), ('a', 1, 0)])
