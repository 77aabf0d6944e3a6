# STG-NF trained on ShanghaiTech poses (data/ShanghaiTech), tested with frame-level AUC.
_base_ = [
    '../_base_/models/stgnf.py', '../_base_/datasets/sht_pose.py',
    '../_base_/schedules/stgnf.py', '../_base_/default_runtime.py'
]

# Validation and test windows are normalised and packed a batch at a time (pose_window_collate):
# the numbers of the per-window NormalizePoseWindow + PackActionInputs, without their Python
# cost per window. Training keeps the per-window pipeline (its random flips).
val_dataloader = dict(
    collate_fn=dict(type='pose_window_collate', video_resolution=(856, 480)),
    dataset=dict(pipeline=[]))
test_dataloader = val_dataloader
