# SGD, lr 1e-4, momentum 0.5 (paper, section 4.2). The paper gives no epoch count; 10 is ours.
# The BSMM is written after the last epoch by BSMMWriteHook; ScoreCalibrationHook then fits the
# calibrated fusion (a no-op for models without score_calibration, as the paper-literal ones).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=1e-4, momentum=0.5))
param_scheduler = []
custom_hooks = [dict(type='BSMMWriteHook'), dict(type='ScoreCalibrationHook')]
