"""Feature cache reader: a corrupt shard is named, by its sha256 or by its size."""
from pathlib import Path

import pytest

from mgenet_mm.datasets.feature_cache import FeatureCacheError, FeatureCacheReader, shard_name
from tests.datasets.feature_cache.helpers import build_cache, load_cached, window_item


def test_corrupt_shard_is_named(tmp_path: Path) -> None:
    build_cache(tmp_path)
    path = tmp_path / shard_name(1)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte inside the last row
    path.write_bytes(bytes(data))
    transform = load_cached(tmp_path)
    transform(window_item('01_001', 1, 0))  # shard 0 is fine
    with pytest.raises(FeatureCacheError, match=shard_name(1) + '.*sha256.*--verify'):
        transform(window_item('01_002', -1, 0))  # window 3 -> shard 1
    # A size-only check cannot see a flipped byte, but sees a truncated file.
    load_cached(tmp_path, verify='size')(window_item('01_002', -1, 0))
    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(FeatureCacheError, match=shard_name(1) + '.*bytes instead of'):
        load_cached(tmp_path, verify='size')(window_item('01_002', -1, 0))
    problems = FeatureCacheReader(str(tmp_path)).check_all(full=True)
    assert list(problems) == [shard_name(1)]


def test_stale_inputs_are_refused_naming_the_file(tmp_path: Path) -> None:
    import os

    from mgenet_mm.datasets.feature_cache.checksums import input_records
    from mgenet_mm.datasets.feature_cache.layout import read_manifest, write_manifest
    cache = tmp_path / 'cache'
    build_cache(cache)
    pose = tmp_path / '01_001.json'
    pose.write_text('{"1": {}}')
    manifest = read_manifest(str(cache))
    manifest['inputs'] = input_records([str(pose)], [])  # what the extraction tool records
    write_manifest(str(cache), manifest)
    load_cached(cache)(window_item('01_001', 1, 0))  # unchanged: accepted
    pose.write_text('{"2": {}}')
    stat = os.stat(pose)
    os.utime(pose, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(FeatureCacheError, match=(
            rf'the feature cache {cache} is stale: 1 of its inputs changed since it was built, '
            rf'so its features no longer match the poses and frames: {pose}: pose file content '
            r'changed .*--rebuild')):
        load_cached(cache)(window_item('01_001', 1, 0))
