# STG-NF on the synthetic benchmark (tools/data/make_synthetic.py, ShanghaiTech layout under
# data/synthetic): the guidance network of configs/mgenet/demo.py. 6 epochs instead of 8; no
# validation during training (tools/demo.py tests it afterwards).
_base_ = './stgnf_sht.py'
data_root = 'data/synthetic'
train_cfg = dict(max_epochs=6, val_interval=100)
train_dataloader = dict(
    batch_size=256, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
val_dataloader = dict(
    batch_size=1024, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/gt/test_frame_mask',
                     kind_dir=data_root + '/gt/test_frame_kinds',
                     event_dir=data_root + '/gt/test_frame_events')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
