# STG-NF on unsupervised UBnormal (T = 16, temporal kernel 9).
_base_ = [
    '../_base_/models/stgnf.py', '../_base_/datasets/ubnormal_pose.py',
    '../_base_/schedules/stgnf.py', '../_base_/default_runtime.py'
]
model = dict(backbone=dict(seg_len=16))

# Validation and test windows normalised and packed a batch at a time, as in stgnf_sht.py.
val_dataloader = dict(
    collate_fn=dict(type='pose_window_collate', video_resolution=(856, 480)),
    dataset=dict(pipeline=[]))
test_dataloader = val_dataloader
