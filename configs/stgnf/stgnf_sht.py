# STG-NF trained on ShanghaiTech poses (data/ShanghaiTech), tested with frame-level AUC.
_base_ = [
    '../_base_/models/stgnf.py', '../_base_/datasets/sht_pose.py',
    '../_base_/schedules/stgnf.py', '../_base_/default_runtime.py'
]
