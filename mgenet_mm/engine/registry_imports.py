"""Build a data loader without importing mmaction's own datasets when it uses none of them.

mmengine imports a registry's locations the first time anything is looked up in it: building
this project's ``PoseWindowDataset`` imports ``mmaction.datasets``, all of mmaction's datasets
and transforms, and through its pose transforms ``scipy.stats`` (about 0.7-1 s, most of it
``scipy.stats``), although a pose-only config uses none of them.

:func:`mmaction_datasets_deferred` skips that import while a data loader is built, but only
when every type the loader's dataset and sampler name is registered already (by this project,
or, for a sampler, by mmengine itself), so the same classes are built either way. The
registries are restored afterwards: the next lookup of anything else imports mmaction's
datasets as before. Anything it cannot vouch for (a type it does not know, a scope other than
mmaction's, a class instead of a name) leaves mmengine's behaviour unchanged.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator, List

from mmaction.registry import DATA_SAMPLERS, DATASETS, TRANSFORMS

__all__ = ['mmaction_datasets_deferred', 'uses_only_registered_types']

#: The registries whose locations are ``mmaction.datasets`` (and its transforms).
_DEFERRED = (DATASETS, DATA_SAMPLERS, TRANSFORMS)
_SCOPES = (None, 'mmaction')


def _type_names(cfg: Any) -> Iterator[Any]:
    """Every ``type`` value in a nested config (dicts and lists)."""
    if isinstance(cfg, dict):
        if 'type' in cfg:
            yield cfg['type']
        for value in cfg.values():
            yield from _type_names(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            yield from _type_names(value)


def _registered(name: Any, own: List[dict], inherited: List[dict]) -> bool:
    """Whether ``name`` is a plain or ``mmaction.``-scoped name found in ``own`` (mmaction's
    registries as they stand) or ``inherited`` (their mmengine parents)."""
    if not isinstance(name, str):
        return False
    scope, _, key = name.rpartition('.')
    if (scope or None) not in _SCOPES:
        return False
    return any(key in registry for registry in own + inherited)


def uses_only_registered_types(dataloader_cfg: Any) -> bool:
    """Whether a data loader config names only types that are registered already.

    The dataset's types (the dataset, its pipeline, any nested dataset) must be in mmaction's
    dataset or transform registry itself: mmaction's own transforms may replace mmengine's of
    the same name (``Resize``, ``CenterCrop``), so a type found only in mmengine's registry
    needs mmaction's import. A sampler may also be mmengine's: mmaction registers no sampler.

    Args:
        dataloader_cfg (dict | DataLoader): The loader config, or a built loader (False).

    Returns:
        bool: True when building it needs no import of ``mmaction.datasets``.
    """
    if not isinstance(dataloader_cfg, dict) or not isinstance(dataloader_cfg.get('dataset'),
                                                              dict):
        return False
    own = [DATASETS._module_dict, TRANSFORMS._module_dict]
    if not all(_registered(name, own, []) for name in _type_names(dataloader_cfg['dataset'])):
        return False
    samplers = [dataloader_cfg.get(key) for key in ('sampler', 'batch_sampler')]
    return all(_registered(name, [DATA_SAMPLERS._module_dict],
                           [DATA_SAMPLERS.parent._module_dict])
               for name in _type_names([s for s in samplers if s is not None]))


@contextmanager
def mmaction_datasets_deferred(dataloader_cfg: Any) -> Iterator[bool]:
    """Within the block, lookups in mmaction's dataset, sampler and transform registries do
    not import ``mmaction.datasets``, if the loader config needs nothing from it.

    Args:
        dataloader_cfg (dict | DataLoader): The config of the loader built in the block.

    Yields:
        bool: Whether the import is deferred.
    """
    deferred = [registry for registry in _DEFERRED if not registry._imported]
    if (not deferred or 'mmaction.datasets' in sys.modules
            or not uses_only_registered_types(dataloader_cfg)):
        yield False
        return
    for registry in deferred:
        registry._imported = True  # mmengine's flag: "locations imported"
    try:
        yield True
    finally:
        for registry in deferred:
            registry._imported = False  # the next lookup imports them, as it would have
