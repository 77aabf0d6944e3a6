# configs/mgenet/demo.py reading its frozen features from a cache, built once with
#   python tools/data/extract_features.py configs/mgenet/demo_cached.py --split both --seed 0
_base_ = ['./demo.py']
feature_cache_root = 'work_dirs/demo/features'
extractor = dict(cube_embed=_base_.model.cube_embed, scene_encoder=_base_.model.scene_encoder,
                 data_preprocessor=_base_.model.data_preprocessor)
pose_steps = [
    # the tube box the cache was cut with, for the region metrics (RBDC / TBDC)
    dict(type='PersonTubeBox', size=_base_.tube_size, margin=0.1, score_thr=0.2,
         max_person_ratio=1.5),
    dict(type='NormalizePoseWindow', video_resolution=(856, 480)),
    dict(type='PackMGENetInputs', meta_keys=('scene_key', 'tube_box'))
]
train_pipeline = [
    dict(type='LoadCachedFeatures', cache_dir=feature_cache_root + '/train',
         model_cfg=extractor, pipeline_cfg=_base_.train_pipeline), *pose_steps
]
test_pipeline = [
    dict(type='LoadCachedFeatures', cache_dir=feature_cache_root + '/test',
         model_cfg=extractor, pipeline_cfg=_base_.test_pipeline), *pose_steps
]
train_dataloader = dict(num_workers=0, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(cube_embed=None, scene_encoder=None)
