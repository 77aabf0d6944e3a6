# SGD, lr 1e-4, momentum 0.5 (paper, section 4.2). The paper gives no epoch count; 10 is ours.
# The BSMM is written after the last epoch by BSMMWriteHook; GapWhiteningHook then fits the
# whitened level-1 gap and ScoreCalibrationHook the calibrated fusion (each a no-op for models
# without that part, as the paper-literal ones).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=1e-4, momentum=0.5))
param_scheduler = []
custom_hooks = [dict(type='BSMMWriteHook'), dict(type='GapWhiteningHook'),
                dict(type='ScoreCalibrationHook')]
