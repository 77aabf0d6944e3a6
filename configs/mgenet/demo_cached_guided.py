# configs/mgenet/demo_cached.py with the behaviour half of the BSMM query (eq. 8) taken from the
# guidance flow's skeleton features f_sk (bsmm_behaviour='guidance', a memory of its own over
# f_sk) instead of the paper's W_b of the RGB tokens e_b: on the benchmark's validation split the
# RGB features hardly tell a jogger from a walker (docs/benchmark.md, "The behaviour side of the
# scene level"). With it, the scene memory's queries centred, the BSMM's two parts balanced and
# scored by their nearest pair, and the fusion weights chosen again on the validation split
# (a 6 x 6 grid, VADAUCMetric(weight_grid=...)): mo 1, app 0.1, mm 0.5.
_base_ = ['./demo_cached.py']
score_weights = dict(mo=1.0, app=0.1, mm=0.5)
model = dict(
    bsmm_behaviour='guidance',
    guidance_memory=dict(type='MemoryBank', num_items=128, temperature=0.05),
    scene_memory=dict(center_queries=True),
    bsmm=dict(balance_parts=True, score_mode='nearest'))
val_evaluator = dict(score_weights=score_weights)
test_evaluator = dict(score_weights=score_weights)
