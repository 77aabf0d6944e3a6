"""read_tracked_pose_json's fast reader: the checked reader's results and errors, to the bit.

The fast reader (orjson, or ``json`` without the repeated-key hook) is taken only when the text
holds exactly as many strings as the parsed object, so a key written twice, an escape or
anything the fast readers refuse goes through the checked reader and its messages.
"""
import json
from pathlib import Path
from typing import List

import numpy as np
import pytest

from mgenet_mm.datasets import pose_utils
from mgenet_mm.datasets.pose_utils import read_tracked_pose_json

READERS = ['orjson', 'json']


@pytest.fixture(params=READERS)
def reader(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with orjson (installed by the requirements) and with ``json`` in its place."""
    if request.param == 'json':
        monkeypatch.setattr(pose_utils, '_orjson', None)
    else:
        assert pose_utils._orjson is not None, 'orjson is in requirements/runtime.txt'
    return request.param


@pytest.fixture
def checked_calls(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """The files that went through the checked reader."""
    calls: List[str] = []
    checked = pose_utils._parse_pose_json_checked

    def counting(path: str):
        calls.append(path)
        return checked(path)

    monkeypatch.setattr(pose_utils, '_parse_pose_json_checked', counting)
    return calls


def _checked_result(path: str):
    return pose_utils._persons_from_object(path, pose_utils._parse_pose_json_checked(path))


def _assert_same_persons(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for person in a:
        for x, y in zip(a[person], b[person]):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)


def _entry(rng: np.random.Generator, extra: bool) -> dict:
    # Values with many digits, integers and exponents: each reader rounds them to float64 itself.
    values = rng.uniform(-1e3, 1e3, 51)
    entry = {'keypoints': [float(v) if i % 3 else int(v) for i, v in enumerate(values)],
             'scores': float(rng.uniform(0, 1)) * 10.0 ** int(rng.integers(-30, 3))}
    if extra:  # fields beyond keypoints and scores, with strings and nested keys
        entry['box'] = {'xyxy': [1, 2, 3.5, 4], 'label': 'persön', 'tags': ['a', {'b': 'c'}]}
        entry['idx'] = [0, 'x']
    return entry


@pytest.mark.parametrize('extra', [False, True])
def test_fast_reader_gives_the_checked_readers_arrays(tmp_path: Path, reader: str,
                                                      checked_calls: List[str],
                                                      extra: bool) -> None:
    rng = np.random.default_rng(3)
    persons = {f'{p:03d}': {str(f): _entry(rng, extra) for f in rng.permutation(40)[:25]}
               for p in range(4)}
    path = tmp_path / 'clip_alphapose_tracked_person.json'
    path.write_text(json.dumps(persons, ensure_ascii=False), encoding='utf-8')
    result = read_tracked_pose_json(str(path))
    assert checked_calls == []  # the fast reader took it
    _assert_same_persons(result, _checked_result(str(path)))
    assert sorted(result) == [0, 1, 2, 3]


def test_exponents_and_long_mantissas_round_as_python_does(tmp_path: Path, reader: str,
                                                           checked_calls: List[str]) -> None:
    texts = ['1e-320', '2.2250738585072011e-308', '0.1000000000000000055511151231257827',
             '123456789012345678901234567890', '-0.0', '1E2', '3.4028235e38', '7e-46']
    values = ', '.join((texts * 7)[:51])
    path = tmp_path / 'clip_alphapose_tracked_person.json'
    path.write_text(f'{{"1": {{"5": {{"keypoints": [{values}], "scores": 1e-300}}}}}}')
    frames, keypoints, scores = read_tracked_pose_json(str(path))[1]
    assert checked_calls == []
    expected = np.asarray([float(t) for t in (texts * 7)[:51]], dtype=np.float32)
    np.testing.assert_array_equal(keypoints.reshape(-1), expected)
    assert np.signbit(keypoints.reshape(-1)[4])  # -0.0 stays negative
    assert scores.tolist() == [np.float32(1e-300)]


def _bad_texts() -> List[str]:
    entry = '{"keypoints": [%s], "scores": 0.8}' % ', '.join(['1.5'] * 51)
    nan_entry = '{"keypoints": [%s], "scores": 0.8}' % ', '.join(['1.5'] * 50 + ['NaN'])
    return [
        '{"1": {"001": E}, "1": {"002": E}}'.replace('E', entry),  # a person twice
        '{"1": {"001": E, "001": E}}'.replace('E', entry),  # a frame twice
        '{"1": {"001": {"keypoints": [], "keypoints": [%s]}}}' % ', '.join(['1'] * 51),
        '{"1": {"001": E}}'.replace('E', nan_entry),  # NaN: json reads it, orjson refuses
        '{"1": {"001": {"keypoints": [%s]}}}' % ', '.join(['1' + '0' * 400] * 51),  # > double
        '\ufeff{"1": {"001": E}}'.replace('E', entry),  # a byte-order mark
        '{"1": {"001": E,}}'.replace('E', entry),  # a trailing comma
        '{"1\\u0030": {"001": E}}'.replace('E', entry),  # an escape: "10"
        '{"1": {"0\\u0031": E, "01": E}}'.replace('E', entry),  # an escape hiding a repeat
        '[1, 2]',
        '',
    ]


@pytest.mark.parametrize('index', range(len(_bad_texts())))
def test_what_the_fast_reader_cannot_vouch_for_goes_to_the_checked_reader(
        tmp_path: Path, reader: str, checked_calls: List[str], index: int) -> None:
    path = tmp_path / 'clip_alphapose_tracked_person.json'
    path.write_text(_bad_texts()[index], encoding='utf-8')
    try:
        expected = _checked_result(str(path))
    except ValueError as error:
        expected = error
    checked_calls.clear()
    if isinstance(expected, ValueError):
        with pytest.raises(ValueError) as error:
            read_tracked_pose_json(str(path))
        assert str(error.value) == str(expected) and str(path) in str(error.value)
    else:  # the escapes are valid: the same arrays, read by the checked reader
        _assert_same_persons(read_tracked_pose_json(str(path)), expected)
    assert checked_calls == [str(path)]


def test_utf16_file_is_refused_by_name(tmp_path: Path, reader: str) -> None:
    path = tmp_path / 'clip_alphapose_tracked_person.json'
    path.write_text('{"1": {}}', encoding='utf-16')
    with pytest.raises(ValueError, match='not a UTF-8 JSON file') as error:
        read_tracked_pose_json(str(path))
    assert str(path) in str(error.value)


def test_string_count_follows_the_text(tmp_path: Path) -> None:
    # The count the repeat check compares with the quotes of the text.
    raw = {'1': {'2': {'keypoints': [0] * 51, 'scores': 0.5, 'note': ['a', {'b': 'c', 'd': 1}]}}}
    text = json.dumps(raw)
    assert pose_utils._pose_json_string_count(raw) == 9 == text.count('"') // 2
