# UBnormal (Acsintoae et al., CVPR 2022) as MoCoDAD distributes its skeletons (Flaborea et al.,
# ICCV 2023, github.com/aleflabo/MoCoDAD, "Datasets"), under data/UBnormal_MoCoDAD:
#   training/trajectories/<scene>-<clip>/<person>.csv
#   validating/trajectories/<scene>-<clip>/<person>.csv, validating/test_frame_mask/<clip>.npy
#   testing/trajectories/<scene>-<clip>/<person>.csv,    testing/test_frame_mask/<clip>.npy
#   hr_bool_masks/{testing,validating}/test_frame_mask/<clip>.npy   (HR-UBnormal selection)
# One CSV per tracked person: frame, x1, y1, ..., x17, y17 (COCO-17, pixels of the 1080 x 720
# videos, an undetected joint at 0, 0); frames count from 1 in MoCoDAD's evaluation, hence
# frame_offset=1. Clips are named <scene>_<clip> as their masks (folder 01-0014 -> 01_0014).
# See mgenet_mm/datasets/trajectory_csv.py. Windows are normalised with STG-NF's (856, 480), as
# configs/_base_/datasets/ubnormal_pose.py (the official UBnormal checkpoint's): after centring
# and dividing by the y spread only the aspect ratio of the resolution matters.
_base_ = './sht_pose.py'
data_root = 'data/UBnormal_MoCoDAD'
seg_len = 16
video_resolution = (856, 480)
meta_keys = ('clip_name', 'scene_id', 'clip_id', 'person_id', 'start_frame', 'seg_len')
train_pipeline = [
    dict(type='NormalizePoseWindow', video_resolution=video_resolution),
    dict(type='RandomFlipPoseWindow', prob=0.5),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
test_pipeline = [
    dict(type='NormalizePoseWindow', video_resolution=video_resolution),
    dict(type='PackActionInputs', meta_keys=meta_keys)
]
csv = dict(type='TrajectoryCSVDataset', layout='flat', frame_offset=1, data_root=data_root,
           seg_len=seg_len, video_resolution=video_resolution)
train_dataloader = dict(dataset=dict(csv, pose_dir='training/trajectories',
                                     pipeline=train_pipeline, _delete_=True, stride=6))
val_dataloader = dict(dataset=dict(csv, pose_dir='testing/trajectories', pipeline=test_pipeline,
                                   _delete_=True, stride=1, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/testing/test_frame_mask', gt_format='shanghaitech',
                     seg_len=seg_len, clips=None)
test_evaluator = val_evaluator
