"""The whitened level-1 gap: S_mo^w = sqrt(sum_t (r_t - mu)^T P (r_t - mu)) (docs/model.md)."""
import numpy as np
import pytest
import torch

import mgenet_mm  # noqa: F401
from mgenet_mm.models.heads.lsta_head import motion_anomaly_score
from mgenet_mm.models.modules.gap_whitening import (GapWhitening, gap_moments, whitened_gap,
                                                    whitening_from_moments)


def _gaps(num: int = 50, frames: int = 6, dim: int = 4, seed: int = 0) -> torch.Tensor:
    """(num, frames, dim) correlated gaps with unequal variances and a mean."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.tensor([[3., 0., 0., 0.], [1., .5, 0., 0.], [0., 0., .05, 0.],
                           [.2, 0., .1, 1.]])[:dim, :dim]
    noise = torch.randn(num, frames, dim, generator=generator, dtype=torch.float64)
    return noise @ mixing.T.to(torch.float64) + torch.arange(dim, dtype=torch.float64)


def test_identity_whitening_is_eq_13():
    f_rgb, f_sk = torch.randn(3, 8, 36), torch.randn(3, 8, 36)
    score = whitened_gap(f_sk - f_rgb, torch.zeros(36, dtype=torch.float64),
                         torch.eye(36, dtype=torch.float64))
    torch.testing.assert_close(score, motion_anomaly_score(f_rgb, f_sk, 'diff'))


def test_whitened_gap_is_the_per_frame_mahalanobis_sum():
    rng = np.random.default_rng(0)
    residual = rng.normal(size=(2, 5, 3))
    mean = rng.normal(size=3)
    root = rng.normal(size=(3, 3))
    precision = root @ root.T + 0.1 * np.eye(3)
    expected = [np.sqrt(sum((r - mean) @ precision @ (r - mean) for r in window))
                for window in residual]
    score = whitened_gap(torch.from_numpy(residual), torch.from_numpy(mean),
                         torch.from_numpy(precision))
    np.testing.assert_allclose(score.numpy(), expected, rtol=1e-12)
    # the precision weighs directions: a gap along a low-precision axis scores less
    diagonal = torch.diag(torch.tensor([100., 1., 1.], dtype=torch.float64))
    along = torch.zeros(2, 1, 3, dtype=torch.float64)
    along[0, 0, 0], along[1, 0, 1] = 1., 1.
    torch.testing.assert_close(whitened_gap(along, torch.zeros(3, dtype=torch.float64),
                                            diagonal),
                               torch.tensor([10., 1.], dtype=torch.float64))


def test_moments_add_up_over_batches_and_give_the_regularised_covariance():
    gaps = _gaps()
    whole = gap_moments(gaps)
    parts = [gap_moments(gaps[:17]), gap_moments(gaps[17:])]
    for total, a, b in zip(whole, *parts):
        torch.testing.assert_close(total, a + b)
    assert float(whole[0]) == 50 * 6
    ridge = 0.01
    mean, precision = whitening_from_moments(*whole, ridge=ridge)
    frames = gaps.reshape(-1, 4).numpy()
    covariance = np.cov(frames.T, bias=True)
    regularised = covariance + ridge * np.trace(covariance) / 4 * np.eye(4)
    np.testing.assert_allclose(mean.numpy(), frames.mean(0), rtol=1e-12)
    np.testing.assert_allclose(precision.numpy(), np.linalg.inv(regularised), rtol=1e-9)


def test_without_ridge_the_normal_frames_come_out_white():
    gaps = _gaps(num=200)
    mean, precision = whitening_from_moments(*gap_moments(gaps), ridge=0.)
    # every frame alone: sum over the frames of the squared whitened norm is C per frame
    squared = whitened_gap(gaps.reshape(-1, 1, 4), mean, precision).pow(2)
    assert float(squared.mean()) == pytest.approx(4.0, rel=1e-9)
    # plain eq. 13 is ruled by the high-variance axis, the whitened gap is not
    shift = torch.zeros(1, 1, 4, dtype=torch.float64)
    shift[..., 2] = 1.0  # one unit along the axis of spread 0.05
    centre = mean.reshape(1, 1, 4)
    assert float(whitened_gap(centre + shift, mean, precision)) > 10
    assert float(torch.linalg.vector_norm(shift)) == 1.0


def test_bad_statistics_are_refused():
    with pytest.raises(ValueError, match='at least 2 frame vectors'):
        whitening_from_moments(*gap_moments(torch.ones(1, 1, 3)), ridge=0.1)
    with pytest.raises(ValueError, match='constant'):
        whitening_from_moments(*gap_moments(torch.ones(4, 3, 3)), ridge=0.1)
    # three distinct frames in 4 dimensions: singular without a ridge
    with pytest.raises(ValueError, match='singular .*raise motion_whitening.ridge'):
        whitening_from_moments(*gap_moments(_gaps(num=1, frames=3)), ridge=0.)
    with pytest.raises(ValueError, match='non-finite'):
        gap_moments(torch.tensor([[[1., float('nan')]]]))
    with pytest.raises(ValueError, match=r'\(B, T, C\)'):
        gap_moments(torch.ones(3, 4))


def test_module_fits_stores_and_scores():
    module = GapWhitening(dim=4, ridge=0.01)
    assert not module.is_fitted
    gaps = _gaps()
    module.fit(*gap_moments(gaps))
    assert module.is_fitted and int(module.num_frames) == 300
    restored = GapWhitening(dim=4, ridge=0.01)
    restored.load_state_dict(module.state_dict())
    batch = gaps[:3].float()
    torch.testing.assert_close(restored(batch), module(batch))
    assert module(batch).dtype == torch.float32 and module(batch).shape == (3, )
    with pytest.raises(ValueError, match=r'\(B, T, 4\)'):
        module(torch.ones(2, 3, 5))
    with pytest.raises(ValueError, match='dim 4'):
        module.fit(*gap_moments(torch.randn(3, 3, 5)))
    with pytest.raises(ValueError, match='ridge'):
        GapWhitening(dim=4, ridge=-1.)
