# Table 4, setting [A, C, D] (see ubnormal_scenes_abcd.py for the protocol and the guessed
# scene groups): running and jumping are normal in A only. Paper: 64.1 (63.5 without BSMM).
_base_ = './ubnormal_scenes_abcd.py'
train_dataloader = dict(dataset=dict(split=dict(groups='ACD')))
val_dataloader = dict(dataset=dict(split=dict(groups='ACD')))
test_dataloader = dict(dataset=dict(split=dict(groups='ACD')))
