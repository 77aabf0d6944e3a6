# STG-NF on HR-ShanghaiTech (HR-STC) from the per-person CSV trajectories of MPED-RNN
# (Morais et al., CVPR 2019, github.com/RomeroBarata/skeleton_based_anomaly_detection), also
# distributed by TrajREC (Stergiou et al., WACV 2024), under data/HR-ShanghaiTech:
#   training/trajectories/00/<camera>_<video>/<person>.csv
#       (TrajREC's fix_skeleton_data.py writes training/trajectories-corrected: point
#        train_dataloader.dataset.pose_dir there to use it)
#   testing/trajectories/<camera>/<video>/<person>.csv
#   testing/frame_level_masks/<camera>/<camera>_<video>.npy   (1 = abnormal; the HR clips only)
# CSV rows: frame (0-based, as their evaluation indexes the masks), x1, y1, ..., x17, y17.
_base_ = './stgnf_sht.py'
data_root = 'data/HR-ShanghaiTech'
csv = dict(type='TrajectoryCSVDataset', layout='nested', frame_offset=0, data_root=data_root)
train_dataloader = dict(dataset=dict(csv, pose_dir='training/trajectories'))
val_dataloader = dict(dataset=dict(csv, pose_dir='testing/trajectories'))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/testing/frame_level_masks',
                     gt_format='shanghaitech_by_camera')
test_evaluator = val_evaluator
