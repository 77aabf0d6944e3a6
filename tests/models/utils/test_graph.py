"""Tests of the OpenPose skeleton graph: partitioned adjacency, uniform-graph detection."""
import numpy as np
import pytest
import torch

import mgenet_mm  # noqa: F401  registers the modules
from mgenet_mm.models.backbones.stgnf import STGNF
from mgenet_mm.models.utils.graph import build_adjacency, uniform_graph_weight


def test_uniform_graph_is_mean_over_joints():
    adj = build_adjacency('uniform', max_hop=8)
    assert adj.shape == (1, 18, 18)
    np.testing.assert_allclose(adj, 1.0 / 18)
    # partitions of the other strategies split the same normalised adjacency
    for strategy, parts in (('distance', 3), ('spatial', 5)):
        split = build_adjacency(strategy, max_hop=2)
        assert split.shape == (parts, 18, 18)
        np.testing.assert_allclose(split.sum(0), build_adjacency('uniform', max_hop=2)[0])
    np.testing.assert_allclose(build_adjacency('uniform', max_hop=1)[0].sum(0), 1.0)


def test_uniform_graph_weight():
    model = STGNF()
    assert uniform_graph_weight(model.adjacency) == float(model.adjacency[0, 0, 0])
    assert uniform_graph_weight(model.adjacency) == pytest.approx(1.0 / 18)
    for strategy, max_hop in (('uniform', 1), ('uniform', 6), ('distance', 8), ('spatial', 8)):
        adjacency = torch.from_numpy(build_adjacency(strategy, max_hop)).float()
        assert uniform_graph_weight(adjacency) is None  # several partitions or unequal entries
