# configs/mgenet/demo_cached_paper.py with one change: the level-2 branch of sht_calibrated.py.
# f_u and f_m per token, L_app on the masked tokens and S_app the mean of the 8 largest per-token
# distances, each token scored in the pass that masks it; the teacher e_b instead of the memory
# read-out; the mask encoder and its head at 100 times the learning rate. The ablation row "the
# token-level appearance branch alone" of docs/benchmark.md.
_base_ = ['./demo_cached_paper.py']
app_top_k = 8
app_lr_mult = 100.
model = dict(
    appearance_teacher='embedding',
    appearance_head=dict(pool='none'),
    mask_head=dict(pool='none', score_reduction='topk', score_top_k=app_top_k))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'mask_encoder': dict(lr_mult=app_lr_mult), 'mask_head': dict(lr_mult=app_lr_mult)}))
