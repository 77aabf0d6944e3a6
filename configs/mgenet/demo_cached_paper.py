# configs/mgenet/demo_cached.py with the paper-literal level settings (those of sht.py): the
# baseline of the benchmark's ablation (docs/benchmark.md). Min-max fusion over the evaluated
# set with lambda_app = lambda_mm = 0.1 (eq. 16), temperature 1 everywhere, S_mo by eq. 13, space-pooled
# appearance features with the memory read-out f_b as teacher, one learning rate.
_base_ = ['./demo_cached.py']
model = dict(
    appearance_teacher='readout',
    behaviour_memory=dict(temperature=1.0),
    scene_memory=dict(temperature=1.0, center_queries=False),
    bsmm=dict(temperature=1.0, balance_parts=False, score_mode='topk'),
    bsmm_behaviour='rgb',
    guidance_memory=None,
    appearance_head=dict(pool='space'),
    mask_head=dict(pool='space', score_reduction='mean'),
    motion_whitening=None,
    score_calibration=None)
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
val_evaluator = dict(score_weights=dict(mo=1.0, app=0.1, mm=0.1), normalize=True)
test_evaluator = dict(val_evaluator, type='VADRegionMetric')
