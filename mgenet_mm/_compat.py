"""Narrow shims for known defects of the pinned OpenMMLab stack.

Imported first by :mod:`mgenet_mm`, before anything imports ``mmaction.models``. Each shim names
the upstream defect it covers, changes nothing when the defect is absent, and edits no installed
file. numpy 2 removals (``np.Inf``, ``np.float``, ``np.trapz`` ... in mmaction/mmcv/mmdet) are not
shimmed: ``requirements/runtime.txt`` pins ``numpy<2``, which avoids all of them at once and keeps
the xtcocotools wheel usable.

- :func:`install_drn_stub`: the mmaction2 wheel lacks ``mmaction.models.localizers.drn``.
- :func:`install_checkpoint_loaders`: mmengine's checkpoint loaders under the project's
  checkpoint trust policy, whose public API is :mod:`mgenet_mm.utils.checkpoint_trust`.
"""
from __future__ import annotations

import importlib.util
import os.path as osp
import sys
import types

import torch

from .utils.checkpoint_trust import load_from_http, load_from_local

__all__ = ['install_drn_stub', 'install_checkpoint_loaders']


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


def install_checkpoint_loaders() -> bool:
    """Load local and downloaded checkpoints under the trust policy.

    Upstream defects: mmengine 0.10.7 calls ``torch.load(filename)`` for local files without
    ``weights_only``; torch >= 2.6 defaults to ``weights_only=True``, which refuses mmengine's own
    checkpoints (numpy scalars and ``HistoryBuffer`` objects in them; the pickle even calls
    ``getattr``), so ``--resume``, ``load_from``, ``init_cfg=dict(type='Pretrained')`` and mmpose
    ``init_model`` fail. Fixed on mmengine's main branch (PR #1670), not in a release. Its
    ``http(s)://`` loader goes through ``torch.hub.load_state_dict_from_url``, whose default is
    ``weights_only=False``: files from the internet are unpickled in full.

    Choice: replace both (``CheckpointLoader`` schemes ``''`` and ``http://``/``https://``, and
    the module attribute ``load_from_http`` that the ``open-mmlab://``, ``torchvision://`` and
    ``mmcls://`` schemes call) with loaders that pass ``weights_only`` explicitly: ``True`` with
    the allowlist of :func:`~mgenet_mm.utils.safe_checkpoint_globals`, or ``False`` where trust
    is enabled (see :mod:`mgenet_mm.utils.checkpoint_trust`).
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` was rejected as process-wide and unsafe. Other
    schemes (pavi, ceph) keep mmengine's behaviour (torch's weights-only default, without the
    allowlist).

    Returns:
        bool: Whether the loaders were (re)registered (torch >= 2.6).
    """
    from mmengine.runner import checkpoint as mm_checkpoint
    major, minor = (int(part) for part in torch.__version__.split('.')[:2])
    if (major, minor) < (2, 6):
        return False
    loader = mm_checkpoint.CheckpointLoader
    loader.register_scheme(prefixes='', force=True)(load_from_local)
    loader.register_scheme(prefixes=('http://', 'https://'), force=True)(load_from_http)
    mm_checkpoint.load_from_http = load_from_http  # called directly by open-mmlab:// etc.
    return True


install_drn_stub()
install_checkpoint_loaders()
