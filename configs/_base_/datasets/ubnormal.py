# MGENet data on UBnormal (data/UBnormal), videos read as published:
#   Scene<s>/<video>.mp4                       (the scene folder is found from the video's name)
#   pose/{train,validation,test}/<video>_alphapose_tracked_person.json
#   gt/<video>_tracks.txt                      (numpy arrays despite the name, 1 = normal)
# Windows of T = 16 frames; test clips are videos too, so both pipelines decode with decord.
_base_ = './sht.py'
data_root = 'data/UBnormal'
window_len = 16
test_pipeline = {{_base_.train_pipeline}}
train_dataloader = dict(
    dataset=dict(layout='ubnormal', data_root=data_root, video_dir='', seg_len=window_len))
val_dataloader = dict(
    dataset=dict(layout='ubnormal', data_root=data_root, video_dir='', frame_dir=None,
                 seg_len=window_len, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/gt', gt_format='ubnormal', seg_len=window_len,
                     clips=data_root + '/pose/test')
test_evaluator = val_evaluator
