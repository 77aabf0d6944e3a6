# MGENet on unsupervised UBnormal (paper: 73.5 micro AUC): T = 16, token grid (8, 8, 8), the
# UBnormal STG-NF as guidance.
_base_ = [
    '../_base_/models/mgenet.py', '../_base_/datasets/ubnormal.py',
    '../_base_/schedules/mgenet.py', '../_base_/default_runtime.py'
]
seg_len = 16
token_grid = (8, 8, 8)
encoder = dict(token_grid=token_grid)
model = dict(
    guidance=dict(seg_len=seg_len, init_cfg=dict(
        checkpoint='checkpoints/UBnormal_unsupervised_71_8.tar')),
    backbone=encoder,
    mask_encoder=encoder,
    motion_head=dict(token_grid=token_grid),
    appearance_head=dict(token_grid=token_grid),
    mask_head=dict(token_grid=token_grid))
val_evaluator = dict(score_weights=dict(mo=1.0, app=0.1, mm=0.1))
test_evaluator = val_evaluator
