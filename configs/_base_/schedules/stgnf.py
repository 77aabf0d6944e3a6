# STG-NF pretraining: Adamax 5e-4, x0.99 per epoch, 8 epochs, gradient clipping at 100.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='Adamax', lr=5e-4),
    clip_grad=dict(max_norm=100, norm_type=2))
param_scheduler = [dict(type='ExponentialLR', gamma=0.99, by_epoch=True)]
