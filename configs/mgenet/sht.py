# MGENet on ShanghaiTech (paper: 86.9 micro AUC). Model, schedule and metric; the frame-level
# score mixes the min-max normalised components with lambda_app = lambda_mm = 0.1 (eq. 16).
_base_ = [
    '../_base_/models/mgenet.py', '../_base_/schedules/mgenet.py',
    '../_base_/default_runtime.py'
]
data_root = 'data/ShanghaiTech'
val_evaluator = dict(type='VADAUCMetric', gt_dir=data_root + '/gt/test_frame_mask',
                     gt_format='shanghaitech', seg_len=24,
                     score_weights=dict(mo=1.0, app=0.1, mm=0.1))
test_evaluator = val_evaluator
