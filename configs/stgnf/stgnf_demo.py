# STG-NF on the synthetic benchmark (tools/data/make_synthetic.py, ShanghaiTech layout under
# data/synthetic): the guidance network of configs/mgenet/demo.py. 6 epochs instead of 8; no
# validation during training (tools/demo.py tests it afterwards).
_base_ = './stgnf_sht.py'
data_root = 'data/synthetic'
train_cfg = dict(max_epochs=6, val_interval=100)
train_dataloader = dict(
    batch_size=256, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
# Each window also carries its person's box in its middle frame (PersonTubeBox: the box of
# MGENet's 32 px tube crop, from the raw keypoints), which RBDC/TBDC place its score on.
val_dataloader = dict(
    batch_size=1024, num_workers=0, persistent_workers=False,
    collate_fn=dict(type='pose_window_collate', video_resolution=(856, 480),
                    meta_keys=('tube_box', )),
    dataset=dict(data_root=data_root, pipeline=[dict(type='PersonTubeBox', size=32)]))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/gt/test_frame_mask',
                     kind_dir=data_root + '/gt/test_frame_kinds',
                     event_dir=data_root + '/gt/test_frame_events')
# The test also reports RBDC/TBDC; the regions are read from gt/test_region_tracks, beside gt_dir.
test_evaluator = dict(val_evaluator, type='VADRegionMetric')
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
