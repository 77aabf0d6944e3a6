# Table 4, setting [B, C, D] (see ubnormal_scenes_abcd.py for the protocol and the guessed
# scene groups): running and jumping are normal in B only. Paper: 68.2 (66.8 without BSMM).
_base_ = './ubnormal_scenes_abcd.py'
val_list = 'work_dirs/ubnormal_scenes_bcd/val_clips.txt'
test_list = 'work_dirs/ubnormal_scenes_bcd/test_clips.txt'
train_dataloader = dict(dataset=dict(split=dict(groups='BCD')))
val_dataloader = dict(dataset=dict(split=dict(groups='BCD', list_file=val_list)))
test_dataloader = dict(dataset=dict(split=dict(groups='BCD', list_file=test_list)))
val_evaluator = dict(clips=val_list)
test_evaluator = dict(clips=test_list)
