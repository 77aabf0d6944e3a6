# STG-NF on UBnormal's validation split (configs/_base_/datasets/ubnormal_pose.py layout:
# pose/validation/<video>_alphapose_tracked_person.json; the GT folder holds every video's
# <video>_tracks.txt). Choose hyperparameters here, never on the test split.
_base_ = './stgnf_ubnormal.py'
data_root = 'data/UBnormal'
val_dataloader = dict(dataset=dict(pose_dir='pose/validation'))
test_dataloader = val_dataloader
val_evaluator = dict(clips=data_root + '/pose/validation')
test_evaluator = val_evaluator
