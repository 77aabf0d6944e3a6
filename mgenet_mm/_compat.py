"""Narrow shims for known defects of the pinned OpenMMLab stack.

Imported first by :mod:`mgenet_mm`, before anything imports ``mmaction.models``. Each shim names
the upstream defect it covers, changes nothing when the defect is absent, and edits no installed
file. numpy 2 removals (``np.Inf``, ``np.float``, ``np.trapz`` ... in mmaction/mmcv/mmdet) are not
shimmed: ``requirements/runtime.txt`` pins ``numpy<2``, which avoids all of them at once and keeps
the xtcocotools wheel usable.

- :func:`install_drn_stub`: the mmaction2 wheel lacks ``mmaction.models.localizers.drn``.
- :func:`install_checkpoint_loaders`: mmengine's checkpoint loaders under the project's
  checkpoint trust policy, whose public API is :mod:`mgenet_mm.utils.checkpoint_trust`.
- :func:`defer_mmdet_for_mmaction`: ``import mmaction.models`` without importing mmdet.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import os.path as osp
import sys
import types
from typing import Optional, Sequence

import torch

from .utils.checkpoint_trust import load_from_http, load_from_local

__all__ = ['install_drn_stub', 'install_checkpoint_loaders', 'defer_mmdet_for_mmaction',
           'MMDET_FOR_MMACTION_ENV']


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


#: Set to 1 to let ``mmaction.models`` import mmdet (and register mmaction's AVA heads).
MMDET_FOR_MMACTION_ENV = 'MGENET_MMACTION_IMPORTS_MMDET'
# The mmaction modules whose optional mmdet import is deferred: each wraps it in
# ``try: ... except ImportError`` and only registers AVA spatio-temporal detection parts.
_MMDET_OPTIONAL_IN = ('mmaction.models.roi_heads', 'mmaction.models.task_modules')


class _DeferMMDetFinder(importlib.abc.MetaPathFinder):
    """Refuses ``mmdet`` to the optional imports of :data:`_MMDET_OPTIONAL_IN` only."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[types.ModuleType] = None) -> None:
        if fullname != 'mmdet' and not fullname.startswith('mmdet.'):
            return None  # not ours: the other finders go on
        importer = _importing_module()
        if importer is not None and importer.startswith(_MMDET_OPTIONAL_IN):
            raise ModuleNotFoundError(
                f'{fullname} deferred by mgenet_mm for {importer} (its AVA heads are not '
                f'registered; set {MMDET_FOR_MMACTION_ENV}=1 or import mmdet first to have '
                'them)', name=fullname)
        return None


def _importing_module() -> Optional[str]:
    """Name of the module whose code runs the current import statement."""
    frame = sys._getframe(2)  # skip find_spec and this function
    while frame is not None:
        name = frame.f_globals.get('__name__', '')
        if not name.startswith(('importlib', '_frozen_importlib')):
            return name
        frame = frame.f_back
    return None


def defer_mmdet_for_mmaction() -> bool:
    """Import ``mmaction.models`` without importing mmdet, unless mmdet is wanted.

    ``mmaction.models`` imports mmdet (about a second, with matplotlib and shapely, and some
    50 MB) only to register mmaction's AVA spatio-temporal detection heads and assigner into
    mmdet's registries, inside ``try: ... except ImportError``. No config of this project uses
    them, and a pose-only run (``tools/test.py`` on STG-NF) needs neither mmdet nor mmpose. A
    finder refuses mmdet to exactly those two optional imports (``mmaction.models.roi_heads``
    and ``mmaction.models.task_modules``): mmaction then skips the AVA parts, as it does where
    mmdet is not installed. Any other import of mmdet (pose extraction's detector) is
    untouched and works as before, before or after.

    Nothing is deferred when mmdet is imported already, when ``mmaction.models`` is, or with
    the environment variable ``MGENET_MMACTION_IMPORTS_MMDET=1``: then mmaction registers its
    AVA parts as usual (for a config that uses them).

    Returns:
        bool: Whether the finder was installed.
    """
    if (os.environ.get(MMDET_FOR_MMACTION_ENV, '') not in ('', '0') or 'mmdet' in sys.modules
            or 'mmaction.models' in sys.modules
            or any(isinstance(f, _DeferMMDetFinder) for f in sys.meta_path)):
        return False
    sys.meta_path.insert(0, _DeferMMDetFinder())
    return True


install_drn_stub()
install_checkpoint_loaders()
defer_mmdet_for_mmaction()
