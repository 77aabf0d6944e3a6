"""Tests of the pieces of the fused STG-NF evaluation pass (the pass itself is compared with the
step-by-step one in tests/models/backbones/test_stgnf.py)."""
import torch

from mgenet_mm.models.layers.stgnf_fused import temporal_conv_matrix


def test_temporal_conv_matrix_matches_conv():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 2, (9, 1), padding=(4, 0))
    g = torch.rand(32, 2, 16, 1) * 3 - 1
    matrix = temporal_conv_matrix(conv, 16)
    rows = g[..., 0].transpose(1, 2).reshape(32, 32)  # (b, 2, T) -> (b, T, 2) -> (b, 2T)
    out = torch.addmm(conv.bias.repeat_interleave(16), rows, matrix).view(32, 2, 16, 1)
    with torch.no_grad():
        torch.testing.assert_close(out, conv(g), atol=1e-6, rtol=0)
    assert temporal_conv_matrix(torch.nn.Conv2d(2, 2, (9, 1), stride=(2, 1)), 16) is None
