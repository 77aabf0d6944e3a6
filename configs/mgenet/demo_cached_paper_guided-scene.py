# configs/mgenet/demo_cached_paper.py with one change: the guided scene level of
# sht_calibrated.py. The behaviour half of the BSMM query comes from a memory over the guidance
# flow's skeleton features f_sk instead of W_b of the RGB tokens; the scene memory's queries are
# centred, the BSMM's two parts balanced and scored by the nearest written pair. Temperatures
# stay at the paper's 1 (the new guidance memory has its own, 0.05). The ablation row "the
# guided scene level alone" of docs/benchmark.md.
_base_ = ['./demo_cached_paper.py']
model = dict(
    scene_memory=dict(center_queries=True),
    bsmm=dict(balance_parts=True, score_mode='nearest'),
    bsmm_behaviour='guidance',
    guidance_memory=dict(_delete_=True, type='MemoryBank', num_items=128, temperature=0.05,
                         init_seed='run'))
