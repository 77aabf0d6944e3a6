"""AppearancePredictor: the mask-side MLP (Linear, norm, GELU, Linear), against hand computation."""
import pytest
import torch
import torch.nn.functional as F

from mgenet_mm.models.heads.appearance_predictor import AppearancePredictor
from mmaction.registry import MODELS


def _predictor(**kwargs) -> AppearancePredictor:
    torch.manual_seed(0)
    predictor = MODELS.build(dict(type='AppearancePredictor', in_channels=4, hidden_channels=6,
                                  **kwargs))
    predictor.init_weights()
    return predictor


def test_layer_norm_per_vector_keeps_the_shape():
    predictor = _predictor()
    features = torch.randn(2, 5, 4)  # (B, P, C_app)
    out = predictor(features)
    assert out.shape == (2, 5, 4)
    hidden = features @ predictor.fc1.weight.T + predictor.fc1.bias
    # LayerNorm by hand: each 6-vector to mean 0, variance 1 (biased), then the affine
    mean = hidden.mean(dim=-1, keepdim=True)
    var = hidden.var(dim=-1, unbiased=False, keepdim=True)
    normed = (hidden - mean) / torch.sqrt(var + 1e-5) * predictor.norm.weight + predictor.norm.bias
    expected = F.gelu(normed) @ predictor.fc2.weight.T + predictor.fc2.bias
    torch.testing.assert_close(out, expected)
    # the vectors are independent: one window's output does not depend on the other
    torch.testing.assert_close(predictor(features[:1]), out[:1])


def test_batch_norm_takes_statistics_over_all_vectors_of_the_batch():
    predictor = _predictor(norm='batch')
    features = torch.randn(2, 3, 4)
    out = predictor(features)
    hidden = (features @ predictor.fc1.weight.T + predictor.fc1.bias).reshape(6, 6)
    normed = (hidden - hidden.mean(0)) / torch.sqrt(hidden.var(0, unbiased=False) + 1e-5)
    expected = F.gelu(normed) @ predictor.fc2.weight.T + predictor.fc2.bias  # weight 1, bias 0
    torch.testing.assert_close(out, expected.reshape(2, 3, 4))
    predictor.eval()  # running statistics now: a single vector is predicted alone
    assert predictor(features[:1, :1]).shape == (1, 1, 4)


def test_no_norm_and_default_hidden_width():
    predictor = AppearancePredictor(in_channels=3, norm='none')
    assert predictor.fc1.out_features == 3 and isinstance(predictor.norm, torch.nn.Identity)
    x = torch.randn(4, 3)
    torch.testing.assert_close(predictor(x), predictor.fc2(F.gelu(predictor.fc1(x))))


def test_bad_settings():
    with pytest.raises(ValueError, match='norm must be one of'):
        AppearancePredictor(in_channels=4, norm='group')
    with pytest.raises(ValueError, match='in_channels must be >= 1'):
        AppearancePredictor(in_channels=0)
    with pytest.raises(ValueError, match='takes 4 channels'):
        AppearancePredictor(in_channels=4)(torch.randn(2, 5))
