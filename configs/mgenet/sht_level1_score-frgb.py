# Table 3: the first level alone, motion score ||f_rgb|| (the RGB branch alone). Paper: 81.2.
_base_ = './sht_no-lapp.py'
model = dict(test_cfg=dict(motion_score='f_rgb'))
val_evaluator = dict(score_weights=dict(_delete_=True, mo=1.0))
test_evaluator = val_evaluator
