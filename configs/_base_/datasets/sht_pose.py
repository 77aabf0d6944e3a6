# ShanghaiTech tracked poses (STG-NF layout) under data/ShanghaiTech:
#   pose/{train,test}/<scene>_<clip>_alphapose_tracked_person.json
#   gt/test_frame_mask/<scene>_<clip>.npy            (1 = abnormal)
data_root = 'data/ShanghaiTech'
seg_len = 24
dataset_type = 'PoseWindowDataset'
meta_keys = ('clip_name', 'scene_id', 'clip_id', 'person_id', 'start_frame', 'seg_len')

train_pipeline = [
    dict(type='NormalizePoseWindow', video_resolution=(856, 480)),
    dict(type='RandomFlipPoseWindow', prob=0.5),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
test_pipeline = [
    dict(type='NormalizePoseWindow', video_resolution=(856, 480)),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
train_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, pose_dir='pose/train',
                 seg_len=seg_len, stride=6, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1024,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, pose_dir='pose/test',
                 seg_len=seg_len, stride=1, pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='VADAUCMetric', gt_dir=data_root + '/gt/test_frame_mask',
                     gt_format='shanghaitech', seg_len=seg_len)
test_evaluator = val_evaluator
