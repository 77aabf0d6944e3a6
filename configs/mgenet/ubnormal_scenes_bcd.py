# Table 4, setting [B, C, D] (see ubnormal_scenes_abcd.py for the protocol and the guessed
# scene groups): running and jumping are normal in B only. Paper: 68.2 (66.8 without BSMM).
_base_ = './ubnormal_scenes_abcd.py'
train_dataloader = dict(dataset=dict(split=dict(groups='BCD')))
val_dataloader = dict(dataset=dict(split=dict(groups='BCD')))
test_dataloader = dict(dataset=dict(split=dict(groups='BCD')))
