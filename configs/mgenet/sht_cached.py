# MGENet on ShanghaiTech, reading the frozen features from a feature cache instead of decoding
# videos and running Video Swin and ResNet-50 at every step. Same model, data and schedule as
# ./sht.py. Build the cache once (resumable; --verify checks it):
#   python tools/data/extract_features.py configs/mgenet/sht_cached.py --split both
# LoadCachedFeatures refuses a cache whose extractor config (cube_embed / scene_encoder configs
# and checkpoint paths, normalisation, tube and scene transforms below) differs from this one;
# the checkpoint files' contents are checked by extract_features.py (weights checksum).
_base_ = ['./sht.py']

feature_cache_root = 'data/ShanghaiTech/features/sht_swin-t_resnet50'
# What the cached features stand for: the frozen stages and the preprocessing of ./sht.py.
extractor = dict(cube_embed=_base_.model.cube_embed, scene_encoder=_base_.model.scene_encoder,
                 data_preprocessor=_base_.model.data_preprocessor)
pose_steps = [
    dict(type='NormalizePoseWindow', video_resolution=(856, 480)),
    dict(type='PackMGENetInputs', meta_keys=_base_.meta_keys)
]
train_pipeline = [
    dict(type='LoadCachedFeatures', cache_dir=feature_cache_root + '/train',
         model_cfg=extractor, pipeline_cfg=_base_.train_pipeline),
    *pose_steps
]
test_pipeline = [
    dict(type='LoadCachedFeatures', cache_dir=feature_cache_root + '/test',
         model_cfg=extractor, pipeline_cfg=_base_.test_pipeline),
    *pose_steps
]
# No decoding left in the workers: fewer of them suffice.
train_dataloader = dict(num_workers=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=2, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# The frozen stages are not needed (nor built, nor loaded) when their outputs come from disk.
model = dict(cube_embed=None, scene_encoder=None)
