"""Feature cache writer: crash safety, the folder lock, resuming, refusing a different cache."""
import os
from pathlib import Path

import numpy as np
import pytest

from mgenet_mm.datasets.feature_cache import (FeatureCacheError, FeatureCacheReader,
                                              FeatureCacheWriter, WindowIndex, shard_name)
from tests.datasets.feature_cache.helpers import TOKEN_SHAPE, windows


def test_interrupted_shard_is_never_read(tmp_path: Path) -> None:
    index = WindowIndex.from_windows(windows())
    identity = dict(config_checksum='c', weights_checksum='w', seg_len=6)
    writer = FeatureCacheWriter(str(tmp_path), shard_size=3)
    writer.open(index, identity, {})
    tokens = np.ones((3, ) + TOKEN_SHAPE, np.float32)
    with writer.shard(0) as out:
        out.write(0, tokens)
    with pytest.raises(RuntimeError, match='killed'):
        with writer.shard(1) as out:
            out.write(0, tokens[:2])
            raise RuntimeError('killed')  # an exception mid-shard
    assert not (tmp_path / shard_name(1)).exists()
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]
    # a hard kill leaves the temporary file behind, and maybe an unrecorded final-named file
    (tmp_path / ('.' + shard_name(1) + '.tmp')).write_bytes(b'half')
    (tmp_path / shard_name(2)).write_bytes(b'renamed but never recorded')
    with pytest.raises(FeatureCacheError, match='incomplete'):
        FeatureCacheReader(str(tmp_path)).manifest

    with pytest.raises(FeatureCacheError, match='another process is writing'):
        FeatureCacheWriter(str(tmp_path), shard_size=3).open(index, identity, {})
    writer.close()  # the killed process's lock is gone

    mtime = os.stat(tmp_path / shard_name(0)).st_mtime_ns
    resumed = FeatureCacheWriter(str(tmp_path), shard_size=3)
    resumed.open(index, identity, {})
    assert not (tmp_path / ('.' + shard_name(1) + '.tmp')).exists()
    assert resumed.pending_shards() == [1, 2]  # the finished shard is kept
    for shard in resumed.pending_shards():
        with resumed.shard(shard) as out:
            out.write(0, 2 * np.ones((len(resumed.shard_windows(shard)), ) + TOKEN_SHAPE))
    with pytest.raises(RuntimeError, match='scene.npy'):
        resumed.finish(with_scene=True)
    resumed.finish(with_scene=False)
    assert os.stat(tmp_path / shard_name(0)).st_mtime_ns == mtime
    reader = FeatureCacheReader(str(tmp_path))
    assert reader.tokens(0)[0, 0, 0, 0] == 1 and reader.tokens(6)[0, 0, 0, 0] == 2
    assert not reader.with_scene

    # a partly written shard cannot be committed
    with pytest.raises(RuntimeError, match='never written'):
        with resumed.shard(0) as out:
            out.write(0, tokens[:1])
    assert os.stat(tmp_path / shard_name(0)).st_mtime_ns == mtime


def test_resume_refuses_a_different_cache(tmp_path: Path) -> None:
    index = WindowIndex.from_windows(windows())
    writer = FeatureCacheWriter(str(tmp_path), shard_size=3)
    writer.open(index, dict(config_checksum='c', weights_checksum='w', seg_len=6), {})
    with writer.shard(0) as out:
        out.write(0, np.zeros((3, ) + TOKEN_SHAPE))
    writer.close()
    again = FeatureCacheWriter(str(tmp_path), shard_size=3)
    with pytest.raises(FeatureCacheError,
                       match="(?s)weights_checksum: cache 'w', now 'v'.*--rebuild"):
        again.open(index, dict(config_checksum='c', weights_checksum='v', seg_len=6), {})
    fewer = WindowIndex.from_windows(windows()[:-1])
    with pytest.raises(FeatureCacheError, match='num_windows'):
        again.open(fewer, dict(config_checksum='c', weights_checksum='w', seg_len=6), {})
    discarded = again.open(index, dict(config_checksum='c', weights_checksum='v', seg_len=6), {},
                           rebuild=True)
    assert discarded and again.pending_shards() == [0, 1, 2]
    assert not (tmp_path / shard_name(0)).exists()
