# MGENet on unsupervised UBnormal (paper: 73.5 micro AUC): T = 16, token grid (8, 8, 8), the
# UBnormal STG-NF as guidance.
_base_ = './sht.py'
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
data_root = 'data/UBnormal'
val_evaluator = dict(gt_dir=data_root + '/gt', gt_format='ubnormal', seg_len=seg_len,
                     clips=data_root + '/pose/test')
test_evaluator = val_evaluator
