# STG-NF on UBnormal from MoCoDAD's published per-person CSV skeletons
# (configs/_base_/datasets/ubnormal_csv.py), all test frames; T = 16 as stgnf_ubnormal.py.
_base_ = [
    '../_base_/models/stgnf.py', '../_base_/datasets/ubnormal_csv.py',
    '../_base_/schedules/stgnf.py', '../_base_/default_runtime.py'
]
model = dict(backbone=dict(seg_len=16))
