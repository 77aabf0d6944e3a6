# configs/mgenet/demo_cached_paper.py with one change: the calibrated fusion of
# sht_calibrated.py. Each component is standardised by the median and IQR of the normal training
# windows (ScoreCalibration, fitted after training and stored in the checkpoint) and the
# standardised components are summed with the paper's weights (lambda_app = lambda_mm = 0.1,
# eq. 16), with no min-max over the test set. The ablation row "the calibrated fusion alone" of
# docs/benchmark.md.
_base_ = ['./demo_cached_paper.py']
model = dict(score_calibration=dict(_delete_=True, type='ScoreCalibration', spread='iqr'))
val_evaluator = dict(normalize=False)
test_evaluator = dict(normalize=False)
