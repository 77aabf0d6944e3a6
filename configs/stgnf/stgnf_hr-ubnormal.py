# STG-NF on HR-UBnormal (MoCoDAD, Flaborea et al., ICCV 2023): UBnormal's test set without the
# frames whose anomaly is not human-related. The selection is MoCoDAD's, distributed with its
# UBnormal skeletons as hr_bool_masks/testing/test_frame_mask/<clip>.npy (True = kept; a clip
# without a file keeps every frame), read as in MoCoDAD's models/mocodad.py (get_hr_ubnormal_mask)
# and COSKAD's eval_COSKAD.py. Dropped frames leave scores and GT before smoothing, as there.
_base_ = './stgnf_ubnormal_csv.py'
data_root = 'data/UBnormal_MoCoDAD'
val_evaluator = dict(frame_selection=dict(
    dir=data_root + '/hr_bool_masks/testing/test_frame_mask',
    source='HR-UBnormal, MoCoDAD hr_bool_masks'))
test_evaluator = val_evaluator
