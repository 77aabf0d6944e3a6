# Runtime shared by every config: mmaction's default scope and hooks, checkpoints every epoch
# (AtomicCheckpointHook: mmengine's CheckpointHook with kill-safe writes; RandomStateHook: the
# random states in each checkpoint, so that --resume continues exactly; see mgenet_mm/engine).
# dist_cfg says nccl; tools/train.py and tools/test.py fall back to gloo on machines without CUDA.
default_scope = 'mmaction'
custom_imports = dict(imports=['mgenet_mm'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'),
    random_state=dict(type='RandomStateHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
vis_backends = [dict(type='LocalVisBackend')]
# LazyFigureVisualizer: mmengine's Visualizer, its matplotlib figure built on first drawing (a
# run that only logs scalars never imports matplotlib: about 0.5 s and 25 MB less).
visualizer = dict(type='LazyFigureVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
