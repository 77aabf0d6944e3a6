"""Checked loading of weights: every key and shape a module needs, or an error that lists them.

mmengine's ``Pretrained`` initialiser and ``load_checkpoint`` only log keys that do not fit,
which would leave part of a model (a frozen stage that no training step fixes, a pose
estimator) randomly initialised without anyone noticing. Every place of the project that loads
a state dict goes through :func:`load_state_dict_checked`; what a place tolerates (keys the
model may lack, checkpoint keys to ignore, only warning) is said by its arguments. The helpers
around it read a ``Pretrained`` entry of an ``init_cfg`` and its state dict.

A whole model's checkpoint (``load_from``, ``--resume``, ``tools/test.py``) goes through
:func:`load_model_checkpoint`, which mmengine's runner replaced by
:class:`~mgenet_mm.engine.CheckedRunner` calls for this project's models: every key must fit,
unless the config opts in to partial loading with ``allow_partial_checkpoint=True``.
"""
from __future__ import annotations

import ast
import logging
import os
import os.path as osp
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

__all__ = [
    'InitCfg', 'StateDictReport', 'load_state_dict_checked', 'split_init_cfg',
    'load_pretrained_state_dict', 'init_weights_without_pretrained', 'StateDictMismatchError',
    'PARTIAL_CHECKPOINT_KEY', 'check_checkpoint_path', 'is_project_model', 'guess_checkpoint_kind',
    'load_model_checkpoint', 'strip_wrapper_prefix'
]

InitCfg = Optional[Union[dict, List[dict]]]


def strip_wrapper_prefix(state_dict: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """The state dict with the ``module.`` prefix of a DDP / DataParallel wrapper removed from
    the keys that have it (the others unchanged)."""
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state_dict.items()}

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
        kept = OrderedDict((key, value) for key, value in state_dict.items() if key not in skipped)
        metadata = getattr(state_dict, '_metadata', None)
        if metadata is not None:  # the per-module versions that some load hooks read
            kept._metadata = metadata
        result = module.load_state_dict(kept, strict=False)
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


# ------------------------------------------------------------------------------ whole models
#: The top-level config key that lets a run load a checkpoint that fits the model only in part.
PARTIAL_CHECKPOINT_KEY = 'allow_partial_checkpoint'

#: Module keys that a checkpoint may lack without an error (mmengine ignores them too:
#: checkpoints of older torch versions have no BatchNorm batch counter).
ALWAYS_OPTIONAL = (r'(^|\.)num_batches_tracked$', )


class StateDictMismatchError(RuntimeError):
    """A checkpoint whose keys do not match the model it is loaded into."""


def check_checkpoint_path(path: str) -> None:
    """Refuse a local checkpoint path that is a folder or does not exist, naming what is there.

    URLs and other schemes (``http://``, ``torchvision://`` ...) are left to their loaders.

    Args:
        path (str): The checkpoint path as given.

    Raises:
        IsADirectoryError: ``path`` is a folder; the message lists its checkpoint files (and
            the one its ``last_checkpoint`` names).
        FileNotFoundError: Nothing is at ``path``.
    """
    if '://' in path:
        return
    if osp.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith(('.pth', '.pt', '.tar', '.ckpt')))
        shown = ', '.join(names[:MAX_LISTED_KEYS]) + (', ...' if len(names) > MAX_LISTED_KEYS
                                                       else '')
        found = (f'it holds {len(names)} checkpoint files: {shown}' if names else
                 'it holds no .pth/.pt/.tar/.ckpt file')
        last = osp.join(path, 'last_checkpoint')
        if osp.isfile(last):
            with open(last) as f:
                found += f'; its last_checkpoint names {f.read().strip()}'
        raise IsADirectoryError(f'checkpoint {path} is a folder, not a checkpoint file ({found}); '
                                'give the path of one checkpoint file')
    if not osp.exists(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')


def is_project_model(model: nn.Module) -> bool:
    """Whether ``model``'s class is one of this project's (defined under ``mgenet_mm``)."""
    return type(model).__module__.split('.')[0] == 'mgenet_mm'


def _model_type_of_config(text: str) -> Optional[str]:
    """The ``type`` of the ``model = dict(...)`` of a config's text, read without running it."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == 'model' for t in node.targets) \
                and isinstance(node.value, ast.Call):
            for keyword in node.value.keywords:
                if keyword.arg == 'type' and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
    return None


def guess_checkpoint_kind(checkpoint: Mapping) -> Optional[str]:
    """A short guess of what a checkpoint holds, for error messages (None when unknown).

    In this order: the model ``type`` of the config text that mmengine stores in
    ``meta['cfg']`` (parsed, never run); an official STG-NF file (``flow.*`` and ``prior_h``
    keys at the top level); otherwise the top-level names of its keys.

    Args:
        checkpoint (Mapping): The loaded checkpoint (with or without a ``state_dict`` entry).

    Returns:
        str, optional: E.g. ``'a MGENetRecognizer checkpoint (model type in its meta config)'``.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    if isinstance(meta, Mapping) and isinstance(meta.get('cfg'), str):
        kind = _model_type_of_config(meta['cfg'])
        if kind:
            return f'a {kind} checkpoint (model type in its meta config)'
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint,
                                                                        Mapping) else {}
    keys = [str(key) for key in state_dict] if isinstance(state_dict, Mapping) else []
    if 'prior_h' in keys and any(key.startswith('flow.') for key in keys):
        return 'an official STG-NF checkpoint'
    tops = sorted({key.split('.', 1)[0] for key in keys})
    if not tops:
        return None
    shown = ', '.join(tops[:MAX_LISTED_KEYS]) + (', ...' if len(tops) > MAX_LISTED_KEYS else '')
    return f'a checkpoint whose keys start with {shown}'


def load_model_checkpoint(model: nn.Module,
                          checkpoint: Mapping,
                          *,
                          source: str,
                          allow_partial: bool = False,
                          optional: Sequence[str] = (),
                          revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''), ),
                          logger: Optional[Callable[[str], None]] = None) -> StateDictReport:
    """Load a whole model's checkpoint strictly: what ``load_from`` and ``--resume`` do here.

    mmengine's runner loads with ``strict=False`` and only logs the keys that do not fit, so an
    STG-NF checkpoint with a coupling block's keys missing scored with random weights there,
    and a checkpoint of another model left every ActNorm uninitialised. Here the state dict
    (``checkpoint['state_dict']``, or the checkpoint itself), with ``revise_keys`` applied as
    mmengine does, must fit ``model`` key for key and shape for shape; the model's own load
    hooks run (e.g. the official STG-NF keys are adopted).

    Args:
        model (nn.Module): The (unwrapped) model.
        checkpoint (Mapping): The loaded checkpoint.
        source (str): The checkpoint's path or URL, named in the message.
        allow_partial (bool): Load only the fitting entries and log what did not fit (the rest
            keeps its current values). Defaults to False.
        optional (Sequence[str]): Regular expressions of model keys that may be absent, besides
            BatchNorm's ``num_batches_tracked``. Defaults to ().
        revise_keys (Sequence[tuple[str, str]]): ``(pattern, replacement)`` applied to every
            key (``re.sub``). Defaults to stripping a DDP ``module.`` prefix.
        logger (Callable[[str], None], optional): Where the partial-load warning goes; None
            logs to mmengine's current logger.

    Returns:
        StateDictReport: What did not fit (only non-empty with ``allow_partial``).

    Raises:
        StateDictMismatchError: Without ``allow_partial``, a key is missing or unexpected or a
            shape differs. The first line names the file, the model and the counts; then a few
            keys of each kind, a guess of what the checkpoint is, and the opt-in.
    """
    if not isinstance(checkpoint, Mapping):
        raise StateDictMismatchError(f'checkpoint {source} holds a {type(checkpoint).__name__}, '
                                     'not a state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise StateDictMismatchError(f'checkpoint {source}: its state_dict entry is a '
                                     f'{type(state_dict).__name__}, not a mapping')
    metadata = getattr(state_dict, '_metadata', None)
    revised = OrderedDict()
    for key, value in state_dict.items():
        for pattern, replacement in revise_keys:
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    if metadata is not None:
        revised._metadata = metadata
    target = type(model).__name__
    try:
        report = load_state_dict_checked(model, revised, strict=False,
                                         optional=tuple(optional) + ALWAYS_OPTIONAL)
    except RuntimeError as error:  # a load hook refused it (e.g. official STG-NF keys)
        raise StateDictMismatchError(f'checkpoint {source} does not fit {target}: {error}') \
            from error
    if report.ok:
        return report
    message = _mismatch_message(report, revised, checkpoint, source, target, model)
    if not allow_partial:
        raise StateDictMismatchError(message)
    warning = (f'{PARTIAL_CHECKPOINT_KEY}=True: loaded only the fitting entries of checkpoint '
               f'{source}; the rest keeps its initial values. ' + message.split('\n', 1)[0])
    if logger is None:
        from mmengine.logging import print_log
        print_log(warning, logger='current', level=logging.WARNING)
    else:
        logger(warning)
    report.message = warning
    return report


def _mismatch_message(report: StateDictReport, state_dict: Mapping, checkpoint: Mapping,
                      source: str, target: str, model: nn.Module) -> str:
    """The error of :func:`load_model_checkpoint`: counts first, then examples and advice."""
    missing, unexpected = report.required_missing, report.unexpected
    own = len(model.state_dict())
    if missing and len(unexpected) == len(state_dict) and state_dict:
        head = (f'checkpoint {source} does not match the model {target}: none of its '
                f'{len(state_dict)} keys is a key of the model ({own} keys)')
    else:
        head = (f'checkpoint {source} does not match the model {target}: '
                f'{len(missing)} of the model\'s {own} keys missing, {len(unexpected)} '
                f'unexpected keys, {len(report.mismatched)} shape mismatches')
    lines = [head]
    if missing:
        lines.append('  ' + _listing('missing keys', missing))
    if unexpected:
        lines.append('  ' + _listing('unexpected keys', unexpected))
    if report.mismatched:
        lines.append('  ' + _listing('shape mismatches', [
            f'{key}: checkpoint {ckpt} vs model {mine}' for key, ckpt, mine in report.mismatched
        ]))
    kind = guess_checkpoint_kind(checkpoint)
    if kind:
        lines.append(f'  it looks like {kind}')
    lines.append(f'Give the checkpoint of this config\'s model. To load only the fitting keys '
                 f'anyway (the rest keeps its initial values), set {PARTIAL_CHECKPOINT_KEY}=True '
                 f'(tools: --cfg-options {PARTIAL_CHECKPOINT_KEY}=True).')
    return '\n'.join(lines)
