# configs/mgenet/demo_cached.py evaluated on the synthetic benchmark's validation split
# (validation/frames, pose/val, gt/val_frame_*: the test split's layout and kinds of anomalies,
# drawn from its own seeds). Hyperparameters are chosen here, never on the test split. Its
# features, once:
#   python tools/data/extract_features.py configs/mgenet/demo_cached_val.py --split val --seed 0
_base_ = ['./demo_cached.py']
data_root = 'data/synthetic'
val_reader = dict(_base_.test_pipeline[0], cache_dir=_base_.feature_cache_root + '/val')
val_dataloader = dict(dataset=dict(pose_dir='pose/val', frame_dir='validation/frames',
                                   pipeline=[val_reader, *_base_.pose_steps]))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/gt/val_frame_mask',
                     kind_dir=data_root + '/gt/val_frame_kinds',
                     event_dir=data_root + '/gt/val_frame_events')
test_evaluator = val_evaluator
