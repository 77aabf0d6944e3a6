"""CPU-only multi-process runs: config fixes of resolve_dist_backend, BSMM write-pass gathering."""
import torch
from mmengine.config import Config

import mgenet_mm  # noqa: F401
from mgenet_mm.engine import config_utils
from mgenet_mm.engine.config_utils import install_cpu_dist_init, resolve_dist_backend
from mgenet_mm.engine.hooks import bsmm_write_hook


def _config(**fields) -> Config:
    return Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl')), **fields))


def test_single_process_configs_are_left_alone():
    cfg = _config(launcher='none')
    resolve_dist_backend(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and 'model_wrapper_cfg' not in cfg


def test_cpu_launch_gets_gloo_and_a_ddp_wrapper_without_device_ids(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = _config(launcher='pytorch', find_unused_parameters=True)
    resolve_dist_backend(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', device_ids=None,
                                         broadcast_buffers=False, find_unused_parameters=True)
    own = _config(launcher='pytorch', model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                                             broadcast_buffers=True))
    resolve_dist_backend(own)
    assert own.model_wrapper_cfg.device_ids is None and own.model_wrapper_cfg.broadcast_buffers
    assert config_utils._CLEANUP_REGISTERED


def test_cpu_dist_init_skips_set_device_only_without_cuda(monkeypatch):
    from mmengine.dist import utils as dist_utils
    calls = []
    monkeypatch.setattr(dist_utils, '_init_dist_pytorch',
                        lambda backend, init_backend='torch', **kw: calls.append('mmengine'))
    monkeypatch.setattr(torch.distributed, 'init_process_group',
                        lambda backend, **kw: calls.append(f'torch {backend}'))
    assert install_cpu_dist_init() and install_cpu_dist_init()  # idempotent
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    dist_utils._init_dist_pytorch('gloo')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    dist_utils._init_dist_pytorch('nccl')
    assert calls == ['torch gloo', 'mmengine']


def test_write_pass_gathers_ranks_in_sampler_order_and_drops_padding(monkeypatch):
    """5 windows on 2 ranks, batch 2: DefaultSampler deals [0 2 4 | 1 3 0(pad)]."""
    shards = {0: torch.tensor([[0.], [2.], [4.]]), 1: torch.tensor([[1.], [3.], [0.]])}
    monkeypatch.setattr(bsmm_write_hook, 'get_dist_info', lambda: (0, 2))
    batches = []

    def fake_all_gather(tensor):
        batch = len(batches)
        if tensor.dtype == torch.long:  # the batch sizes
            return [tensor, tensor.clone()]
        return [shards[rank][2 * batch:2 * batch + 2] for rank in range(2)]

    monkeypatch.setattr(bsmm_write_hook, 'all_gather', fake_all_gather)
    seen = [0, 0]
    for start in (0, 2):
        (gathered,), seen = bsmm_write_hook.gather_in_sampler_order(
            [shards[0][start:start + 2]], seen, total=5)
        batches.append(gathered.flatten().tolist())
    assert batches == [[0., 1., 2., 3.], [4.]] and seen == [3, 3]
