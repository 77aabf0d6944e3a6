# configs/mgenet/demo_cached_paper.py with the two after-training passes of sht_calibrated.py and
# no other change: the calibrated fusion (demo_cached_paper_calibrated-fusion.py) and S_mo as the
# whitened level-1 gap (GapWhitening, ridge 1e-3). Every trained weight is the paper-literal
# model's. The ablation row "the calibrated fusion and the whitened gap" of docs/benchmark.md.
_base_ = ['./demo_cached_paper_calibrated-fusion.py']
model = dict(motion_whitening=dict(_delete_=True, type='GapWhitening', ridge=1e-3))
