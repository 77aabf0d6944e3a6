# configs/mgenet/demo_cached_paper.py with one change: the sharper addressing of
# sht_calibrated.py, temperature 0.05 for the behaviour and scene memories (eq. 7) and 0.02 for
# the BSMM read (eq. 9-10), where at temperature 1 every softmax over cosines is near uniform.
# The ablation row "the temperatures alone" of docs/benchmark.md.
_base_ = ['./demo_cached_paper.py']
model = dict(
    behaviour_memory=dict(temperature=0.05),
    scene_memory=dict(temperature=0.05),
    bsmm=dict(temperature=0.02))
