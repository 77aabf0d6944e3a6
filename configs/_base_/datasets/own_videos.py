# MGENet data on a user's own videos (data/own), as tools/data/extract_poses.py writes them:
#   videos/<name>.<mp4|avi|mov|...>
#   pose/<name>_alphapose_tracked_person.json
#   gt/<name>.npy                             (optional, 1 = abnormal; only for evaluation)
# Frame folders frames/<name>/<NNN>.jpg work too: set frame_dir='frames' (and video_dir=None)
# and decode with RawFrameDecode. Training uses the same folder with stride 6: point pose_dir
# at a folder of normal videos' poses to train.
_base_ = './sht.py'
data_root = 'data/own'
train_dataloader = dict(
    dataset=dict(layout='own', data_root=data_root, pose_dir='pose', video_dir='videos'))
test_pipeline = {{_base_.train_pipeline}}
val_dataloader = dict(
    dataset=dict(layout='own', data_root=data_root, pose_dir='pose', video_dir='videos',
                 frame_dir=None, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/gt', gt_format='shanghaitech')
test_evaluator = val_evaluator
