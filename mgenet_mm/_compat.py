"""Narrow shims for known defects of the pinned OpenMMLab stack.

Imported first by :mod:`mgenet_mm`, before anything imports ``mmaction.models``. Each shim names
the upstream defect it covers, changes nothing when the defect is absent, and edits no installed
file. numpy 2 removals (``np.Inf``, ``np.float``, ``np.trapz`` ... in mmaction/mmcv/mmdet) are not
shimmed: ``requirements/runtime.txt`` pins ``numpy<2``, which avoids all of them at once and keeps
the xtcocotools wheel usable.
"""
from __future__ import annotations

import importlib.util
import os.path as osp
import sys
import types

import torch

__all__ = ['install_drn_stub', 'install_trusted_local_loader', 'TRUSTED_LOCAL_CHECKPOINTS']


def _mmaction_root() -> str | None:
    spec = importlib.util.find_spec('mmaction')  # does not import mmaction.models
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def install_drn_stub() -> bool:
    """Provide ``mmaction.models.localizers.drn`` when the installed wheel lacks it.

    Upstream defect: the mmaction2 1.2.0 wheel on PyPI ships without the package
    ``mmaction/models/localizers/drn`` although ``localizers/__init__.py`` imports
    ``from .drn.drn import DRN``, so ``import mmaction.models`` fails with
    ``ModuleNotFoundError``. The stub is placed in ``sys.modules`` only when the package is really
    absent from disk; its ``DRN`` raises if anyone tries to build it.

    Returns:
        bool: Whether the stub was installed.
    """
    root = _mmaction_root()
    if root is None or osp.isdir(osp.join(root, 'models', 'localizers', 'drn')):
        return False
    name = 'mmaction.models.localizers.drn'
    if name in sys.modules:
        return False

    class DRN:  # noqa: D401  (placeholder with a clear error)
        """Unavailable: the installed mmaction2 wheel does not contain DRN."""

        def __init__(self, *args, **kwargs) -> None:
            raise ImportError('DRN is missing from the installed mmaction2 wheel '
                              '(mmaction/models/localizers/drn was not packaged); '
                              'install mmaction2 from source to use it.')

    package = types.ModuleType(name)
    package.__path__ = []  # a package, so that `.drn.drn` resolves
    module = types.ModuleType(name + '.drn')
    module.DRN = DRN
    package.drn = module
    sys.modules[name] = package
    sys.modules[name + '.drn'] = module
    return True


#: Local checkpoint files are unpickled in full (``weights_only=False``). See
#: :func:`install_trusted_local_loader` for why.
TRUSTED_LOCAL_CHECKPOINTS = True


def load_from_trusted_local(filename: str, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location,
                      weights_only=not TRUSTED_LOCAL_CHECKPOINTS)


def install_trusted_local_loader() -> bool:
    """Make mmengine load local checkpoints under torch >= 2.6.

    Upstream defect: mmengine 0.10.7 calls ``torch.load(filename)`` without ``weights_only``;
    torch >= 2.6 defaults to ``weights_only=True``, which refuses mmengine's own checkpoints (their
    ``meta`` holds numpy scalars and ``HistoryBuffer`` objects, and the pickle reaches builtins
    that ``torch.serialization.add_safe_globals`` cannot cover), so ``--resume``, ``load_from``,
    ``init_cfg=dict(type='Pretrained')`` and mmpose ``init_model`` fail. Fixed on mmengine's main
    branch (PR #1670), not in a release.

    Choice: a replacement loader for local paths (mmengine's ``CheckpointLoader`` scheme ``''``)
    that passes ``weights_only`` explicitly and treats local files as trusted, as every torch < 2.6
    did: they are files the user named in a config or on the command line. Unpickling runs code,
    so never point a config at a checkpoint you would not run as a script. Other schemes (http,
    s3) keep mmengine's behaviour. ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` was rejected as
    process-wide.

    Returns:
        bool: Whether the loader was (re)registered.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    major, minor = (int(part) for part in torch.__version__.split('.')[:2])
    if (major, minor) < (2, 6):
        return False
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_trusted_local)
    return True


install_drn_stub()
install_trusted_local_loader()
