# STG-NF on CUHK Avenue (16 training / 21 test videos, configs/_base_/datasets/avenue_pose.py),
# frame-level AUC against the published .mat GT.
_base_ = [
    '../_base_/models/stgnf.py', '../_base_/datasets/avenue_pose.py',
    '../_base_/schedules/stgnf.py', '../_base_/default_runtime.py'
]
