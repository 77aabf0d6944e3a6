# STG-NF on unsupervised UBnormal (T = 16, temporal kernel 9).
_base_ = [
    '../_base_/models/stgnf.py', '../_base_/datasets/ubnormal_pose.py',
    '../_base_/schedules/stgnf.py', '../_base_/default_runtime.py'
]
model = dict(backbone=dict(seg_len=16))
