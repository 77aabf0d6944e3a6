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
