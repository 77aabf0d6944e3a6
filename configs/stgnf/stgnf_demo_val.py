# configs/stgnf/stgnf_demo.py evaluated on the synthetic benchmark's validation split (pose/val,
# gt/val_frame_*), where hyperparameters are chosen, never on the test split.
_base_ = './stgnf_demo.py'
data_root = 'data/synthetic'
val_dataloader = dict(dataset=dict(pose_dir='pose/val'))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/gt/val_frame_mask',
                     kind_dir=data_root + '/gt/val_frame_kinds',
                     event_dir=data_root + '/gt/val_frame_events')
test_evaluator = val_evaluator
