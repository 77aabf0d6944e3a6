# CUHK Avenue (Lu, Shi & Jia, "Abnormal Event Detection at 150 FPS in MATLAB", ICCV 2013) under
# data/Avenue: the published videos and frame GT, plus tracked poses in the STG-NF layout
# (tools/data/extract_poses.py on the videos):
#   training_videos/01.avi .. 16.avi          (640 x 360, normal only)
#   testing_videos/01.avi .. 21.avi
#   ground_truth_demo/testing_label_mask/1_label.mat .. 21_label.mat
#       (MATLAB, volLabel = 1 x F cell of pixel masks; a frame is abnormal if any pixel is)
#   pose/train/01_alphapose_tracked_person.json .. 16_...
#   pose/test/01_alphapose_tracked_person.json .. 21_...
# Clips are named by their video ('07'); the metric reads clip '07' from 7_label.mat.
_base_ = './sht_pose.py'
data_root = 'data/Avenue'
seg_len = 24
video_resolution = (640, 360)
meta_keys = ('clip_name', 'scene_id', 'clip_id', 'person_id', 'start_frame', 'seg_len')
train_pipeline = [
    dict(type='NormalizePoseWindow', video_resolution=video_resolution),
    dict(type='RandomFlipPoseWindow', prob=0.5),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
test_pipeline = [
    dict(type='NormalizePoseWindow', video_resolution=video_resolution),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
train_dataloader = dict(dataset=dict(data_root=data_root, seg_len=seg_len,
                                     video_resolution=video_resolution,
                                     pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, seg_len=seg_len,
                                   video_resolution=video_resolution, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/ground_truth_demo/testing_label_mask',
                     gt_format='avenue', seg_len=seg_len)
test_evaluator = val_evaluator
