"""GuidanceCache on a hand-made flow: hits, misses, changed poses and weights, the bound."""
import pytest
import torch

from mgenet_mm.models.utils.guidance_cache import GuidanceCache, pose_digests, window_identity


class Doubling(torch.nn.Module):
    """features = 2 * weight * pose, summed over joints and channels; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()), requires_grad=False)
        self.calls = []

    def features(self, pose: torch.Tensor) -> torch.Tensor:
        self.calls.append(pose.shape[0])
        return 2 * self.weight * pose.sum(dim=(2, 3))  # (B, T)


def _samples(*starts):
    return [dict(clip_name='c', person_id=1, start_frame=s) for s in starts]


def _cache_run(cache, flow, pose, samples):
    return cache.features(flow, pose, samples, flow.features)


def test_window_identity() -> None:
    assert window_identity(dict(clip_name='01_0014', person_id=torch.tensor(3),
                                start_frame=12)) == ('01_0014', 3, 12)
    assert window_identity(dict(clip_name='a', person_id=1)) is None
    assert window_identity(object()) is None


def test_pose_digests() -> None:
    pose = torch.arange(24.).reshape(2, 3, 4)
    same, other = pose_digests(pose), pose_digests(pose * torch.tensor([-1., 1., 1., 1.]))
    assert same == pose_digests(pose.clone()) and len(same) == 2 and same[0] != same[1]
    assert other[0] != same[0] and other[1] != same[1]
    assert pose_digests(pose.double())[0] != same[0]  # dtype is part of the digest


def test_hits_misses_and_changed_poses() -> None:
    flow, cache = Doubling().eval(), GuidanceCache()
    pose = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    first = _cache_run(cache, flow, pose, _samples(0, 5))
    # By hand: window 0 frame 0 holds 0, 1, 2, 3 -> 2 * 6 = 12.
    assert first[0, 0].item() == 12.0
    again = _cache_run(cache, flow, pose, _samples(0, 5))
    assert torch.equal(again, first) and flow.calls == [2]
    # Batch order and composition may change: rows follow the windows.
    swapped = _cache_run(cache, flow, pose.flip(0), _samples(5, 0))
    assert torch.equal(swapped, first.flip(0)) and flow.calls == [2]
    # A changed pose of the same window is computed (the whole batch), then kept apart.
    mirrored = pose.clone()
    mirrored[0, ..., 0] *= -1
    _cache_run(cache, flow, mirrored, _samples(0, 5))
    assert flow.calls == [2, 2] and len(cache) == 3
    assert (cache.hits, cache.misses, cache.flow_calls) == (4, 4, 2)


def test_weights_change_and_training_mode() -> None:
    flow, cache = Doubling().eval(), GuidanceCache()
    pose = torch.ones(1, 2, 2, 2)
    assert _cache_run(cache, flow, pose, _samples(0))[0, 0].item() == 8.0
    with torch.no_grad():
        flow.weight.fill_(3.0)  # in place: the version counter moves
    assert _cache_run(cache, flow, pose, _samples(0))[0, 0].item() == 24.0
    flow.train()  # batch statistics or dropout: never cached
    _cache_run(cache, flow, pose, _samples(0))
    assert flow.calls == [1, 1, 1]


def test_the_bound_and_bad_values() -> None:
    flow, cache = Doubling().eval(), GuidanceCache(max_windows=2)
    pose = torch.randn(3, 2, 2, 2)
    _cache_run(cache, flow, pose, _samples(0, 1, 2))
    assert len(cache) == 2
    _cache_run(cache, flow, pose[:2], _samples(0, 1))
    _cache_run(cache, flow, pose, _samples(0, 1, 2))  # the third is not cached
    assert flow.calls == [3, 3]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match='guidance_cache_windows'):
            GuidanceCache(max_windows=bad)
