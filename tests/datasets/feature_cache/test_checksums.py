"""Feature cache checksums: which configuration changes the config checksum."""
import pytest

from mgenet_mm.datasets.feature_cache import cache_checksum
from mgenet_mm.datasets.transforms import LoadCachedFeatures
from tests.datasets.feature_cache.helpers import MODEL, PIPELINE


def test_checksum_ignores_skeleton_only_transforms() -> None:
    base = cache_checksum(MODEL, PIPELINE)
    pose_changed = PIPELINE[:2] + [dict(type='RandomFlipPoseWindow', prob=0.5),
                                   dict(type='NormalizePoseWindow', video_resolution=(1, 1)),
                                   dict(type='PackMGENetInputs', meta_keys=('x', ))]
    assert cache_checksum(MODEL, pose_changed) == base
    # tuples and lists are the same config; the normalisation of the tubes is not
    assert cache_checksum(dict(MODEL), [dict(PIPELINE[0], size=[64, 64])] + PIPELINE[1:]) == base
    normalised = dict(MODEL, data_preprocessor=dict(
        type='MultiModalDataPreprocessor',
        preprocessors=dict(imgs=dict(type='ActionDataPreprocessor', mean=[1, 2, 3],
                                     std=[1, 1, 1], format_shape='NCTHW'))))
    assert cache_checksum(normalised, PIPELINE) != base
    with pytest.raises(ValueError, match='needs model_cfg and pipeline_cfg'):
        LoadCachedFeatures('x', expected_checksum='auto', model_cfg=MODEL)


def _touch_later(path, seconds: int = 5) -> None:
    """Move a file's mtime forward (a rewrite within the same clock tick would keep it)."""
    import os
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 10**9))


def test_pose_file_record_and_changes(tmp_path) -> None:
    import hashlib

    from mgenet_mm.datasets.feature_cache.checksums import (changed_inputs, input_records,
                                                           inputs_checksum)
    pose = tmp_path / '01_001_alphapose_tracked_person.json'
    pose.write_bytes(b'{"1": {"0": {"keypoints": [1.5]}}}')
    video = tmp_path / '01_001.avi'
    video.write_bytes(b'RIFF' + bytes(60))
    records = input_records([str(pose)], [str(video)])
    assert records['poses'][str(pose)]['sha256'] == hashlib.sha256(pose.read_bytes()).hexdigest()
    assert records['poses'][str(pose)]['size'] == 34
    assert records['frames'][str(video)] == dict(kind='file', size=64,
                                                 mtime_ns=video.stat().st_mtime_ns)
    checksum = inputs_checksum(records)
    assert changed_inputs(records, [str(pose)], [str(video)]) == {}

    # rewritten with the same bytes: a new mtime, the same content, nothing changed
    pose.write_bytes(pose.read_bytes())
    _touch_later(pose)
    assert changed_inputs(records) == {}
    assert inputs_checksum(input_records([str(pose)], [str(video)])) == checksum

    # a keypoint moved: the same size, another content
    pose.write_bytes(b'{"1": {"0": {"keypoints": [1.6]}}}')
    _touch_later(pose, 10)
    changes = changed_inputs(records)
    assert list(changes) == [str(pose)]
    assert changes[str(pose)].startswith('pose file content changed (sha256 ')
    assert inputs_checksum(input_records([str(pose)], [str(video)])) != checksum

    # a video replaced (size and mtime), a pose file the cache was not built from
    video.write_bytes(b'RIFF' + bytes(70))
    other = tmp_path / '01_002_alphapose_tracked_person.json'
    other.write_bytes(b'{}')
    changes = changed_inputs(records, [str(pose), str(other)], [str(video)])
    assert changes[str(video)].startswith('frame source changed (74 bytes, ')
    assert changes[str(other)] == ('pose file not in the cache (it was built from other '
                                   'inputs)')
    pose.unlink()
    assert changed_inputs(records)[str(pose)] == 'pose file missing'


def test_frame_folder_record_sees_a_replaced_frame(tmp_path) -> None:
    from mgenet_mm.datasets.feature_cache.checksums import changed_inputs, frame_source_record
    folder = tmp_path / '01_0014'
    folder.mkdir()
    for i in range(3):
        (folder / f'{i:03d}.jpg').write_bytes(bytes(10 + i))
    record = frame_source_record(str(folder))
    assert (record['kind'], record['files'], record['size']) == ('folder', 3, 33)
    records = dict(poses={}, frames={str(folder): record})
    assert changed_inputs(records) == {}
    (folder / '001.jpg').write_bytes(bytes(11))  # same size, new mtime
    _touch_later(folder / '001.jpg')
    assert changed_inputs(records)[str(folder)] == ('frame source frames changed (3 files of '
                                                    '33 bytes, cache built from 3 files of 33 '
                                                    'bytes)')
    (folder / '003.jpg').write_bytes(bytes(5))
    assert 'frames changed (4 files of 38 bytes' in changed_inputs(records)[str(folder)]
