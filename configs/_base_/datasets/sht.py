# MGENet data on ShanghaiTech (data/ShanghaiTech): every pose window joined with its frames.
#   training/videos/<scene>_<clip>.avi + pose/train/<clip>_alphapose_tracked_person.json
#   testing/frames/<scene>_<clip>/<NNN>.jpg + pose/test/<clip>_alphapose_tracked_person.json
#   gt/test_frame_mask/<scene>_<clip>.npy   (1 = abnormal)
# Per window: the 64x64 person tube of its T = 24 frames (one keypoint box for the whole window,
# at most 1.5x the person's height: beyond, it slides with the person),
# the clip's median background as scene image, the STG-NF-normalised skeleton. No flip: a
# mirrored skeleton would need a mirrored tube and scene too. The tube is cut before the pose is
# normalised (it needs keypoints in pixels).
data_root = 'data/ShanghaiTech'
window_len = 24  # T, the model's seg_len
tube_size = 64
scene_size = 224
dataset_type = 'MGENetWindowDataset'
meta_keys = ('scene_key', 'tube_box')

rgb_steps = [
    dict(type='PersonTubeCrop', size=tube_size, margin=0.1, score_thr=0.2,
         max_person_ratio=1.5),
    dict(type='SceneImage', mode='median', num_frames=15, size=scene_size),
    dict(type='NormalizePoseWindow', video_resolution=(856, 480)),
    dict(type='PackMGENetInputs', meta_keys=meta_keys)
]
train_pipeline = [
    dict(type='WindowFrameIndices'),
    dict(type='DecordInit'),
    dict(type='DecordDecode'),
    *rgb_steps
]
test_pipeline = [dict(type='WindowFrameIndices'), dict(type='RawFrameDecode'), *rgb_steps]

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, layout='shanghaitech', data_root=data_root,
                 pose_dir='pose/train', video_dir='training/videos', seg_len=window_len,
                 stride=6, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, layout='shanghaitech', data_root=data_root,
                 pose_dir='pose/test', frame_dir='testing/frames', seg_len=window_len,
                 stride=1, pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='VADAUCMetric', gt_dir=data_root + '/gt/test_frame_mask',
                     gt_format='shanghaitech', seg_len=window_len)
test_evaluator = val_evaluator
