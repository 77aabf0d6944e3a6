# Table 3: the first level alone, motion score ||f_sk - f_rgb|| (eq. 13). Paper: 86.1.
_base_ = './sht_no-lapp.py'
model = dict(test_cfg=dict(motion_score='diff'))
val_evaluator = dict(score_weights=dict(_delete_=True, mo=1.0))
test_evaluator = val_evaluator
