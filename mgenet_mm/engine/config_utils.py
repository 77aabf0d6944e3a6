"""Config adjustments shared by tools/train.py and tools/test.py."""
import atexit
import difflib
import inspect
import logging
import os
import os.path as osp
import sys
from typing import Any, Iterable, List, Mapping, Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

#: Marks a ``--cfg-options`` key as a new top-level name on purpose: ``+my_key=1``.
NEW_KEY_PREFIX = '+'

#: Top-level names mmengine's ``Runner`` (and this project's runner) read although a config
#: need not set them: its constructor's arguments, and what it looks up in ``cfg`` itself.
RUNNER_KEYS = frozenset(
    [name for name in inspect.signature(Runner.__init__).parameters if name not in ('self', 'cfg')]
    + ['model_wrapper_cfg', 'find_unused_parameters', 'compile', 'activation_checkpointing',
       'efficient_conv_bn_eval', 'sync_bn', 'runner_type', 'custom_imports',
       'allow_partial_checkpoint'])


def set_work_dir(cfg: Config, work_dir: str, config_path: str) -> None:
    """``--work-dir`` wins, then the config's own ``work_dir``, then ``work_dirs/<config>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def unknown_cfg_option(key: str, known: Iterable[str]) -> Optional[str]:
    """Why a ``--cfg-options`` key is refused (None when it is accepted).

    A key is accepted when its top-level name (the part before the first ``.``) is one of
    ``known``, or when it carries the :data:`NEW_KEY_PREFIX` (``+``) that marks it as new.

    Args:
        key (str): The key as given, e.g. ``'test_evaluater.gt_dir'`` or ``'+my_flag'``.
        known (Iterable[str]): The accepted top-level names.

    Returns:
        str, optional: The message naming the key, with a close match when there is one.
    """
    if key.startswith(NEW_KEY_PREFIX):
        return None
    top = key.split('.', 1)[0]
    known = sorted(set(known))
    if top in known:
        return None
    close = difflib.get_close_matches(top, known, n=1, cutoff=0.6)
    guess = f' (did you mean {close[0]!r}?)' if close else ''
    return (f'--cfg-options {key}: the config has no top-level key {top!r}{guess}; a misspelt '
            f"key would be silently ignored. To add a new top-level key on purpose, prefix it "
            f'with {NEW_KEY_PREFIX!r}: {NEW_KEY_PREFIX}{key}=...')


def merge_cfg_options(cfg: Config, options: Optional[Mapping[str, Any]],
                      known: Iterable[str] = RUNNER_KEYS) -> Config:
    """Merge ``--cfg-options`` into ``cfg``, refusing keys under an unknown top-level name.

    mmengine's ``Config.merge_from_dict`` adds any key it is given, so a misspelt top-level name
    (``test_evaluater.gt_dir=...``) becomes a new entry that nothing reads, and the run goes on
    with the config's value. Here every key's top-level name must be in the config (after its
    ``_base_`` files are merged) or in ``known`` (names the runner reads that a config may leave
    out); a key written with a leading ``+`` (``+my_key=1``) is new on purpose and is added, the
    ``+`` removed. Nothing is merged when a key is refused.

    Args:
        cfg (Config): The config, changed in place.
        options (Mapping[str, Any], optional): The parsed ``--cfg-options`` (``DictAction``);
            None or empty does nothing.
        known (Iterable[str]): Top-level names accepted besides the config's own. Defaults to
            :data:`RUNNER_KEYS`.

    Returns:
        Config: ``cfg``.

    Raises:
        ValueError: A key's top-level name is unknown; the message names the key, the closest
            known name and the ``+`` marker.
    """
    if not options:
        return cfg
    names = set(cfg.keys()) | set(known)
    problems: List[str] = [p for p in (unknown_cfg_option(key, names) for key in options) if p]
    if problems:
        raise ValueError('\n'.join(problems))
    cfg.merge_from_dict({key[len(NEW_KEY_PREFIX):] if key.startswith(NEW_KEY_PREFIX) else key:
                         value for key, value in options.items()})
    return cfg


def resolve_dist_backend(cfg: Config) -> None:
    """Make a multi-process config runnable on a machine without CUDA.

    Three things stand in the way of CPU-only runs under a launcher (e.g. torchrun through
    ``tools/dist_train.sh``), each handled only when CUDA is unavailable:

    - a config's nccl backend: gloo is used instead;
    - mmengine 0.10.7's ``_init_dist_pytorch`` calls ``torch.cuda.set_device(local_rank)``
      unconditionally ("Found no NVIDIA driver"): see :func:`install_cpu_dist_init`;
    - mmengine's ``Runner.wrap_model`` passes ``device_ids=[local_rank]`` to
      ``DistributedDataParallel``, which torch rejects for a CPU module: the config gets a
      ``model_wrapper_cfg`` with ``device_ids=None`` (mmengine's defaults otherwise:
      ``MMDistributedDataParallel``, ``broadcast_buffers=False``, ``find_unused_parameters``
      from the config).

    With any launcher, the process group is also destroyed at exit
    (:func:`register_process_group_cleanup`).
    """
    if cfg.get('launcher', 'none') == 'none':
        return
    register_process_group_cleanup()
    if torch.cuda.is_available():
        return
    install_cpu_dist_init()
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    else:
        wrapper.setdefault('device_ids', None)
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', None)
    if dist_cfg is None:
        return
    if dist_cfg.get('backend') == 'nccl':
        dist_cfg['backend'] = 'gloo'
        print_log('CUDA is not available: using the gloo backend instead of nccl',
                  logger='current', level=logging.WARNING)


def install_cpu_dist_init() -> bool:
    """Let mmengine's pytorch launcher initialise the process group without CUDA.

    Upstream defect: ``mmengine.dist.utils._init_dist_pytorch`` (0.10.7) calls
    ``torch.cuda.set_device(local_rank)`` before ``init_process_group`` whenever no MLU/NPU/MUSA
    is present, so ``tools/dist_train.sh`` dies with "Found no NVIDIA driver" on a CPU machine.
    The replacement skips only that call, and only when CUDA is unavailable; with CUDA, or with
    another ``init_backend``, mmengine's own function runs. Idempotent.

    Returns:
        bool: Whether the replacement is (now) installed.
    """
    from mmengine.dist import utils as dist_utils
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_mgenet_cpu_safe', False):
        return True

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
        accelerators = (dist_utils.is_mlu_available(), dist_utils.is_npu_available(),
                        dist_utils.is_musa_available())
        if torch.cuda.is_available() or init_backend != 'torch' or any(accelerators):
            return original(backend, init_backend=init_backend, **kwargs)
        torch.distributed.init_process_group(backend=backend, **kwargs)

    _init_dist_pytorch._mgenet_cpu_safe = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch
    return True


_CLEANUP_REGISTERED = False


def _destroy_process_group() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def register_process_group_cleanup() -> None:
    """Destroy the default process group when the process exits (once per process).

    mmengine's ``Runner`` never destroys it. A rank that finishes first (e.g. rank 1 while rank 0
    still writes the last checkpoint) then tears the gloo group down during interpreter shutdown,
    which aborts now and then ("terminate called without an active exception", exit -6), and
    torchrun answers by killing the other ranks, rank 0 in the middle of its checkpoint. No
    barrier is added: a rank leaving after an error must not wait for the others.
    """
    global _CLEANUP_REGISTERED
    if not _CLEANUP_REGISTERED:
        atexit.register(_destroy_process_group)
        _CLEANUP_REGISTERED = True


def finish_distributed() -> None:
    """End a distributed run that succeeded: every rank waits for the others, the process group
    is destroyed, logs are flushed, and the process leaves at once (``os._exit(0)``).

    Leaving through the interpreter's normal shutdown still aborted now and then after the
    group was destroyed (a C++ thread torn down by a static destructor: "terminate called
    without an active exception", exit -6), and torchrun then reports the whole run as failed.
    All results are written by then (checkpoints and result files atomically), so nothing is
    lost by skipping the shutdown. Does nothing outside a distributed run.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
