"""Frame selections of the HR subsets: run-length masks, mask folders, and their bad input."""
from pathlib import Path

import numpy as np
import pytest

from mgenet_mm.evaluation.functional.frame_selection import (load_frame_selection, runs_to_mask,
                                                             select_frames)


def test_runs_to_mask() -> None:
    np.testing.assert_array_equal(runs_to_mask([[1, 2], [0, 3], [1, 1]]),
                                  [True, True, False, False, False, True])
    for bad in ([[2, 3]], [[1, 0]], [[1, 2.0]], [[1, 2, 3]], []):
        with pytest.raises(ValueError, match='clip x'):
            runs_to_mask(bad, 'clip x')


def test_selection_from_runs_and_counts() -> None:
    masks, counts = load_frame_selection(
        dict(runs={'01': [[1, 2], [0, 1], [1, 1]], '99': [[1, 3]]}, source='hand'),
        {'01': 4, '02': 5})
    assert set(masks) == {'01'}
    np.testing.assert_array_equal(masks['01'], [True, True, False, True])
    assert counts == dict(selected_clips=1, dropped_frames=1, kept_frames=8, unused_selections=1)


def test_selection_from_folder(tmp_path: Path) -> None:
    np.save(tmp_path / '01_0001.npy', np.array([True, False, True]))
    np.save(tmp_path / '01_0002.npy', np.array([1, 1, 0, 0]))
    masks, counts = load_frame_selection(dict(dir=str(tmp_path)),
                                         {'01_0001': 3, '01_0002': 4, '01_0003': 2})
    np.testing.assert_array_equal(masks['01_0002'], [True, True, False, False])
    assert counts['dropped_frames'] == 3 and counts['kept_frames'] == 6


def test_bad_selections(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='frame_selection must be'):
        load_frame_selection(dict(runs={}, dir='x'), {})
    with pytest.raises(ValueError, match='frame_selection must be'):
        load_frame_selection(dict(mask={}), {})
    with pytest.raises(FileNotFoundError, match='frame selection folder not found'):
        load_frame_selection(dict(dir=str(tmp_path / 'none')), {})
    with pytest.raises(ValueError, match="selects among 3 frames but clip '01' has 4"):
        load_frame_selection(dict(runs={'01': [[1, 3]]}), {'01': 4})
    with pytest.raises(ValueError, match="keeps no frame of clip '01'"):
        load_frame_selection(dict(runs={'01': [[0, 4]]}), {'01': 4})
    np.save(tmp_path / 'a.npy', np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match='a.npy: a frame selection is a 1-D boolean'):
        load_frame_selection(dict(dir=str(tmp_path)), {'a': 2})
    np.save(tmp_path / 'a.npy', np.array([1, 1, 1]))
    with pytest.raises(ValueError, match="a.npy: selects among 3 frames but clip 'a' has 2"):
        load_frame_selection(dict(dir=str(tmp_path)), {'a': 2})


def test_select_frames() -> None:
    out = select_frames({'a': np.arange(4), 'b': np.arange(2)},
                        {'a': np.array([True, False, False, True])})
    np.testing.assert_array_equal(out['a'], [0, 3])
    np.testing.assert_array_equal(out['b'], [0, 1])
    with pytest.raises(ValueError, match="clip 'a': 3 frames but its frame selection has 4"):
        select_frames({'a': np.arange(3)}, {'a': np.ones(4, bool)})
