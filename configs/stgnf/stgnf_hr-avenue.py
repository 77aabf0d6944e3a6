# STG-NF on HR-Avenue: CUHK Avenue's test set without the frames whose anomaly is not
# human-related (MPED-RNN, Morais et al., CVPR 2019). The frames are those of MoCoDAD's
# evaluation (Flaborea et al., ICCV 2023; github.com/aleflabo/MoCoDAD,
# utils/eval_utils.py::get_avenue_mask, also used by COSKAD): runs of [kept (1) / dropped (0),
# number of frames] of test videos 01, 02, 03, 06 and 16; the other 16 videos keep every frame.
# Dropped frames leave scores and GT before smoothing, as in MoCoDAD's evaluation.
_base_ = './stgnf_avenue.py'
hr_avenue_runs = {
    '01': [[1, 75], [0, 46], [1, 269], [0, 47], [1, 427], [0, 47], [1, 20], [0, 70],
           [1, 438]],  # 1439 frames
    '02': [[1, 272], [0, 48], [1, 403], [0, 41], [1, 447]],  # 1211 frames
    '03': [[1, 293], [0, 48], [1, 582]],  # 923 frames
    '06': [[1, 561], [0, 64], [1, 189], [0, 193], [1, 276]],  # 1283 frames
    '16': [[1, 728], [0, 12]],  # 740 frames
}
val_evaluator = dict(frame_selection=dict(
    runs=hr_avenue_runs, source='HR-Avenue, MoCoDAD utils/eval_utils.py get_avenue_mask'))
test_evaluator = val_evaluator
