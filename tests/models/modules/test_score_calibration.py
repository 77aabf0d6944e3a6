"""ScoreCalibration: robust statistics of normal windows, standardisation, checkpoint buffers."""
import numpy as np
import pytest
import torch

from mgenet_mm.models.modules.score_calibration import ScoreCalibration, robust_center_spread
from mmaction.registry import MODELS


def test_robust_statistics_equal_numpy_percentiles():
    values = torch.tensor([5., 1., 9., 3., 7., 100.])
    array = values.numpy().astype(np.float64)
    center, iqr = robust_center_spread(values, 'iqr')
    assert center == pytest.approx(np.percentile(array, 50))
    assert iqr == pytest.approx(np.percentile(array, 75) - np.percentile(array, 25))
    center, upper = robust_center_spread(values, 'quantile', 0.9)
    assert upper == pytest.approx(np.percentile(array, 90) - np.percentile(array, 50))
    # by hand: sorted 1 3 5 7 9 100, median 6, q25 = 3.5, q75 = 8.5
    assert robust_center_spread(values) == pytest.approx((6., 5.))
    with pytest.raises(ValueError, match='non-finite'):
        robust_center_spread(torch.tensor([1., float('nan')]))
    with pytest.raises(ValueError, match='no scores'):
        robust_center_spread(torch.zeros(0))


def test_fit_then_standardise_every_component_on_its_own_scale():
    calibration = MODELS.build(dict(type='ScoreCalibration', components=('mo', 'app', 'mm')))
    assert not calibration.is_fitted
    normal = dict(mo=torch.tensor([10., 20., 30., 40., 50.]),
                  app=torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]),
                  mm=torch.tensor([1e-3, 2e-3, 3e-3, 4e-3, 5e-3]))
    fitted = calibration.fit(normal)
    assert calibration.is_fitted and int(calibration.num_windows) == 5
    assert fitted['mo'] == pytest.approx((30., 20.))  # median 30, q75 - q25 = 40 - 20
    scores = calibration(dict(mo=torch.tensor([70.]), app=torch.tensor([0.7]),
                              mm=torch.tensor([7e-3]), other=torch.tensor([5.])))
    # each is 2 IQRs above its median: the components now weigh alike
    for name in ('mo', 'app', 'mm'):
        torch.testing.assert_close(scores[name], torch.tensor([2.]))
    assert scores['other'].item() == 5.  # not configured: passed through
    assert calibration.stats()['app'] == pytest.approx(dict(center=0.3, spread=0.2))


def test_fit_refuses_constant_and_mismatched_components():
    calibration = ScoreCalibration(components=('mo', 'mm'))
    with pytest.raises(ValueError, match="'mm' is constant"):
        calibration.fit(dict(mo=torch.arange(4.), mm=torch.ones(4)))
    with pytest.raises(ValueError, match='same windows'):
        calibration.fit(dict(mo=torch.arange(4.), mm=torch.arange(3.)))
    with pytest.raises(ValueError):
        ScoreCalibration(spread='std')


def test_statistics_travel_in_the_state_dict():
    calibration = ScoreCalibration(components=('mo', 'app'), spread='quantile', quantile=0.75)
    calibration.fit(dict(mo=torch.arange(9.), app=torch.arange(9.) * 2))
    restored = ScoreCalibration(components=('mo', 'app'), spread='quantile', quantile=0.75)
    assert not restored.is_fitted
    restored.load_state_dict(calibration.state_dict())
    assert restored.is_fitted
    scores = dict(mo=torch.tensor([8.]), app=torch.tensor([16.]))
    torch.testing.assert_close(restored(scores)['mo'], calibration(scores)['mo'])
    # median 4, q75 = 6: (8 - 4) / 2
    torch.testing.assert_close(restored(scores)['mo'], torch.tensor([2.]))
