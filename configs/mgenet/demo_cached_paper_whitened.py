# configs/mgenet/demo_cached_paper.py with one change: S_mo as the whitened level-1 gap
# (GapWhitening, ridge 1e-3, as in sht_calibrated.py); everything else, the min-max fusion with
# lambda_app = lambda_mm = 0.1 included, as the paper. The ablation row "the whitened gap alone"
# of docs/benchmark.md.
_base_ = ['./demo_cached_paper.py']
model = dict(motion_whitening=dict(_delete_=True, type='GapWhitening', ridge=1e-3))
