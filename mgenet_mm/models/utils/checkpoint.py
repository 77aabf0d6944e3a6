"""Checked loading of weights: every key and shape a module needs, or an error that lists them.

mmengine's ``Pretrained`` initialiser and ``load_checkpoint`` only log keys that do not fit,
which would leave part of a model (a frozen stage that no training step fixes, a pose
estimator) randomly initialised without anyone noticing. Every place of the project that loads
a state dict goes through :func:`load_state_dict_checked`; what a place tolerates (keys the
model may lack, checkpoint keys to ignore, only warning) is said by its arguments. The helpers
around it read a ``Pretrained`` entry of an ``init_cfg`` and its state dict.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

__all__ = [
    'InitCfg', 'StateDictReport', 'load_state_dict_checked', 'split_init_cfg',
    'load_pretrained_state_dict', 'init_weights_without_pretrained'
]

InitCfg = Optional[Union[dict, List[dict]]]

#: Keys shown per kind of mismatch in an error message (the count is always given).
MAX_LISTED_KEYS = 10


@dataclass
class StateDictReport:
    """How a state dict fits a module (key names relative to the module).

    Attributes:
        missing (list[str]): Module keys the state dict lacks, in the module's order, the
            optional ones (kept at their current value) included.
        unexpected (list[str]): State-dict keys the module does not have, sorted.
        mismatched (list[tuple]): ``(key, checkpoint shape, module shape)`` of the keys whose
            shapes differ (not loaded), in the module's order.
        optional (list[str]): The entries of ``missing`` that the call allowed to be absent.
        ignore_unexpected (bool): Whether ``unexpected`` keys were allowed.
        message (str): The description of the problems, empty when the state dict fits.
    """
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=list)
    optional: List[str] = field(default_factory=list)
    ignore_unexpected: bool = False
    message: str = ''

    @property
    def required_missing(self) -> List[str]:
        """The missing keys that were not allowed to be absent."""
        return [key for key in self.missing if key not in self.optional]

    @property
    def ok(self) -> bool:
        """True when nothing that the call refuses was found."""
        return not (self.required_missing or self.mismatched
                    or (self.unexpected and not self.ignore_unexpected))


def _listing(title: str, items: Sequence[str]) -> str:
    shown = ', '.join(items[:MAX_LISTED_KEYS]) + (', ...' if len(items) > MAX_LISTED_KEYS else '')
    return f'{len(items)} {title} ({shown})'


def _describe(report: StateDictReport, source: str, target: str) -> str:
    """``'<source> does not fit <target>: 2 missing keys (a, b); 1 shape mismatches (...)'``."""
    mismatches = [f'{key}: checkpoint {ckpt} vs model {own}'
                  for key, ckpt, own in report.mismatched]
    unexpected = [] if report.ignore_unexpected else report.unexpected
    parts = [_listing(title, items) for title, items in
             (('missing keys', report.required_missing), ('unexpected keys', unexpected),
              ('shape mismatches', mismatches)) if items]
    return f'{source} does not fit {target}: ' + '; '.join(parts)


def load_state_dict_checked(module: nn.Module,
                            state_dict: Mapping[str, Tensor],
                            *,
                            strict: bool = True,
                            optional: Sequence[str] = (),
                            ignore_unexpected: bool = False,
                            source: str = 'checkpoint',
                            target: Optional[str] = None,
                            error: Callable[[str], Exception] = RuntimeError,
                            load: bool = True) -> StateDictReport:
    """Load ``state_dict`` into ``module``, checking every key and shape.

    Every parameter and persistent buffer of ``module`` must be in the state dict with its
    shape, except those matching one of the ``optional`` patterns (they keep their current
    value); keys the module does not have are refused unless ``ignore_unexpected``. Entries
    whose shape differs are never loaded. The module's own load hooks run (``load_state_dict``
    with ``strict=False`` does the loading, e.g. a recognizer that renames official keys), and
    the missing and unexpected keys are those it reports. As with ``torch``'s strict loading,
    the fitting entries are loaded before the error is raised.

    Args:
        module (nn.Module): The module to fill.
        state_dict (Mapping[str, Tensor]): Names relative to ``module``.
        strict (bool): Raise ``error`` when something does not fit. With False, only the
            fitting entries are loaded and the report's ``message`` says what did not fit (the
            caller warns as it likes). Defaults to True.
        optional (Sequence[str]): Regular expressions (``re.search``) of module keys that may
            be absent. Defaults to ().
        ignore_unexpected (bool): Accept (and report) state-dict keys the module does not have,
            e.g. the stages a truncated model does not build. Defaults to False.
        source (str): What the weights are, the start of the message (e.g.
            ``'checkpoint a.pth'``). Defaults to 'checkpoint'.
        target (str, optional): What they are loaded into; None gives the class name.
        error (Callable[[str], Exception]): The exception type raised. Defaults to
            RuntimeError.
        load (bool): False only checks, against the module's own key names (no hooks run, the
            module is not changed). Defaults to True.

    Returns:
        StateDictReport: What did not fit (``missing`` holds the absent optional keys too).

    Raises:
        Exception: ``error(message)`` with ``strict`` when a required key is missing, an
        unexpected key is not ignored, or a shape differs; the message lists the keys.
    """
    own = module.state_dict()
    mismatched = [
        (key, tuple(state_dict[key].shape), tuple(value.shape)) for key, value in own.items()
        if key in state_dict and hasattr(state_dict[key], 'shape')
        and tuple(state_dict[key].shape) != tuple(value.shape)
    ]
    skipped = {key for key, _, _ in mismatched}
    if load:
        result = module.load_state_dict(
            {key: value for key, value in state_dict.items() if key not in skipped},
            strict=False)
        # The skipped entries are reported as shape mismatches, not as missing keys.
        missing = [key for key in result.missing_keys if key not in skipped]
        unexpected = sorted(result.unexpected_keys)
    else:
        missing = [key for key in own if key not in state_dict]
        unexpected = sorted(set(state_dict) - set(own))
    report = StateDictReport(
        missing=missing, unexpected=unexpected, mismatched=mismatched,
        optional=[key for key in missing if any(re.search(p, key) for p in optional)],
        ignore_unexpected=ignore_unexpected)
    if not report.ok:
        report.message = _describe(report, source, target or type(module).__name__)
        if strict:
            raise error(report.message)
    return report


# ------------------------------------------------------------------------------ init_cfg
def split_init_cfg(init_cfg: InitCfg) -> Tuple[Optional[dict], List[dict]]:
    """Separate a ``Pretrained`` entry from the other entries of an ``init_cfg``.

    Args:
        init_cfg (dict or list[dict], optional): An mmengine initialisation config.

    Returns:
        tuple: The ``Pretrained`` config (or None) and the list of the other configs.
    """
    if init_cfg is None:
        return None, []
    cfgs = [init_cfg] if isinstance(init_cfg, dict) else list(init_cfg)
    pretrained = [cfg for cfg in cfgs if cfg.get('type') == 'Pretrained']
    others = [cfg for cfg in cfgs if cfg.get('type') != 'Pretrained']
    if len(pretrained) > 1:
        raise ValueError(f'init_cfg holds {len(pretrained)} Pretrained entries; give one')
    if pretrained and 'checkpoint' not in pretrained[0]:
        raise ValueError(f'a Pretrained init_cfg needs a checkpoint, got {pretrained[0]}')
    return (dict(pretrained[0]) if pretrained else None), others


def init_weights_without_pretrained(module: nn.Module, others: List[dict],
                                    parent_init: Callable[[], None]) -> None:
    """Run ``parent_init`` (a base class ``init_weights``) with only the non-Pretrained cfgs.

    The ``Pretrained`` entry is loaded by the checked loader afterwards; mmengine must not load
    it leniently first.

    Args:
        module (nn.Module): An mmengine ``BaseModule`` whose ``init_cfg`` is swapped meanwhile.
        others (list[dict]): The entries to run (none: only the modules' own initialisation).
        parent_init (Callable[[], None]): E.g. ``super().init_weights``.
    """
    original = module.init_cfg
    module.init_cfg = others or None
    try:
        parent_init()
    finally:
        module.init_cfg = original


def load_pretrained_state_dict(checkpoint: str,
                               prefix: Optional[str] = None,
                               map_location: str = 'cpu') -> Dict[str, Tensor]:
    """Read a checkpoint through mmengine's loaders and keep the keys under ``prefix``.

    Every scheme mmengine knows works (local path, ``http(s)://``, ``torchvision://`` ...). Local
    files go through the loader that :mod:`mgenet_mm._compat` registers, under the checkpoint
    trust policy of :mod:`mgenet_mm.utils`.

    Args:
        checkpoint (str): Path or URL of the checkpoint.
        prefix (str, optional): Keep only the keys starting with it and strip it, e.g.
            ``'backbone.'`` for an mmaction recognizer checkpoint. Defaults to None.
        map_location (str): Where to map the tensors. Defaults to 'cpu'.

    Returns:
        dict[str, Tensor]: The (prefix-stripped) state dict.
    """
    loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location=map_location)
    if not isinstance(loaded, dict):
        raise TypeError(f'checkpoint {checkpoint} holds a {type(loaded).__name__}, '
                        'not a state dict')
    state_dict = loaded.get('state_dict', loaded)
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        state_dict = {
            key[len(prefix):]: value
            for key, value in state_dict.items() if key.startswith(prefix)
        }
        if not state_dict:
            raise KeyError(f'no key of checkpoint {checkpoint} starts with {prefix!r}')
    return dict(state_dict)
