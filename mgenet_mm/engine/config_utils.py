"""Config adjustments shared by tools/train.py and tools/test.py."""
import logging
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.logging import print_log


def set_work_dir(cfg: Config, work_dir: str, config_path: str) -> None:
    """``--work-dir`` wins, then the config's own ``work_dir``, then ``work_dirs/<config>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def resolve_dist_backend(cfg: Config) -> None:
    """Use gloo when a config asks for nccl on a machine without CUDA (CPU-only multi-process
    runs would otherwise fail inside ``init_process_group``)."""
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', None)
    if cfg.get('launcher', 'none') == 'none' or dist_cfg is None:
        return
    if dist_cfg.get('backend') == 'nccl' and not torch.cuda.is_available():
        dist_cfg['backend'] = 'gloo'
        print_log('CUDA is not available: using the gloo backend instead of nccl',
                  logger='current', level=logging.WARNING)
