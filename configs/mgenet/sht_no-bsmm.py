# Table 2, group 1: without the Behavior-Scene Matching Memory (score = S_mo + 0.1 S_app).
# Paper: 86.5 (SHT).
_base_ = './sht.py'
model = dict(bsmm=None)
val_evaluator = dict(score_weights=dict(_delete_=True, mo=1.0, app=0.1))
test_evaluator = val_evaluator
