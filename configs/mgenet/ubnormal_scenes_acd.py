# Table 4, setting [A, C, D] (see ubnormal_scenes_abcd.py for the protocol and the guessed
# scene groups): running and jumping are normal in A only. Paper: 64.1 (63.5 without BSMM).
_base_ = './ubnormal_scenes_abcd.py'
val_list = 'work_dirs/ubnormal_scenes_acd/val_clips.txt'
test_list = 'work_dirs/ubnormal_scenes_acd/test_clips.txt'
train_dataloader = dict(dataset=dict(split=dict(groups='ACD')))
val_dataloader = dict(dataset=dict(split=dict(groups='ACD', list_file=val_list)))
test_dataloader = dict(dataset=dict(split=dict(groups='ACD', list_file=test_list)))
val_evaluator = dict(clips=val_list)
test_evaluator = dict(clips=test_list)
