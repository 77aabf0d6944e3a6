# MGENet on ShanghaiTech (paper: 86.9 micro AUC): pose windows with their 64x64 person tubes and
# median-background scene images; the frame-level score mixes the min-max normalised components
# with lambda_app = lambda_mm = 0.1 (eq. 16).
_base_ = [
    '../_base_/models/mgenet.py', '../_base_/datasets/sht.py',
    '../_base_/schedules/mgenet.py', '../_base_/default_runtime.py'
]
val_evaluator = dict(score_weights=dict(mo=1.0, app=0.1, mm=0.1))
test_evaluator = val_evaluator
