"""On-disk cache of the frozen feature stages.

MGENet's cube embedding F_B (Video Swin stages 1-2) and scene encoder F_S are frozen, yet on the
fly they run again, after decoding and cropping the window's frames, for every window of every
epoch. ``tools/data/extract_features.py`` runs them once over a split and stores their outputs
here; the transform ``LoadCachedFeatures`` (:mod:`mgenet_mm.datasets.transforms.loading`) then
puts them into the results dict in place of the decoded tubes and scene images, so that an epoch
costs only the trainable parts and a memory-mapped read (``tools/analysis/benchmark_data.py``
measures both ways).

Cache layout (one folder per split)::

    manifest.json        what was extracted, how, and the sha256 of every finished file
    index.npz            the windows, in dataset order: clip_names (M,) str, clip (N,) int32,
                         person_id (N,) int64, start_frame (N,) int64
    scene.npy            (M, C_s) float16 scene features, row m = clip_names[m]   [if any]
    tokens-00000.npy     (S, C, t, h, w) float16 cube tokens of windows 0 .. S-1
    tokens-00001.npy     windows S .. 2S-1, and so on (the last shard may be shorter)

One module per concern:

- :mod:`.layout`: file names, format version, the manifest, :class:`FeatureCacheError`;
- :mod:`.index`: :class:`WindowIndex`, window identity -> row;
- :mod:`.checksums`: the config and weights checksums, and the check of files against the
  manifest;
- :mod:`.writer`: :class:`FeatureCacheWriter`, the locked, resumable, crash-safe writer;
- :mod:`.reader`: :class:`FeatureCacheReader`, the lazy, memory-mapped reader.
"""
from .checksums import (FEATURE_NEUTRAL_TRANSFORMS, cache_checksum, extractor_config,
                        file_sha256, transform_type, weights_checksum)
from .index import WindowIndex
from .layout import (CACHE_FORMAT, CACHE_VERSION, INDEX, LOCK, MANIFEST, SCENE, TOKEN_DTYPE,
                     FeatureCacheError, shard_name)
from .reader import FeatureCacheReader
from .writer import FeatureCacheWriter

__all__ = [
    'CACHE_FORMAT', 'CACHE_VERSION', 'INDEX', 'LOCK', 'MANIFEST', 'SCENE', 'TOKEN_DTYPE',
    'FEATURE_NEUTRAL_TRANSFORMS', 'FeatureCacheError', 'WindowIndex', 'FeatureCacheWriter',
    'FeatureCacheReader', 'cache_checksum', 'extractor_config', 'weights_checksum',
    'file_sha256', 'shard_name', 'transform_type'
]
