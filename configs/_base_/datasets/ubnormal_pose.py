# UBnormal tracked poses (STG-NF layout) under data/UBnormal:
#   pose/{train,validation,test}/<video>_alphapose_tracked_person.json
#   gt/<video>_tracks.txt   (numpy arrays despite the name, 1 = normal, as the STG-NF code ships
#                            them; the metric flips them to 1 = abnormal)
# Windows of T = 16 frames. The GT folder also holds the training videos, so the evaluated
# clips are those of the test pose folder.
_base_ = './sht_pose.py'
data_root = 'data/UBnormal'
seg_len = 16
train_dataloader = dict(dataset=dict(data_root=data_root, seg_len=seg_len))
val_dataloader = dict(dataset=dict(data_root=data_root, seg_len=seg_len))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/gt', gt_format='ubnormal', seg_len=seg_len,
                     clips=data_root + '/pose/test')
test_evaluator = val_evaluator
