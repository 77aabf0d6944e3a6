"""The checkpoint trust policy: which checkpoint files are unpickled, and how users opt in.

Unpickling a checkpoint can run any code stored in it. mmengine's loaders are replaced (local
files, ``http(s)://``; see :func:`mgenet_mm._compat.install_checkpoint_loaders`) by
:func:`load_from_local` and :func:`load_from_http`, which unpickle with
``torch.load(weights_only=True)`` plus a short allowlist of the plain-data objects that
mmengine's own checkpoints and the official STG-NF ``.tar`` files hold
(:func:`safe_checkpoint_globals`). Those load with no flag. A file that needs anything else is
refused with :class:`UntrustedCheckpointError`, which names the file, the object it wanted and
how to opt in. Trust is granted, in order of precedence, by

- ``with trust_checkpoints():`` (or ``trust_checkpoints(False)`` to force the safe path) around
  the code that loads;
- ``set_checkpoint_trust(True)`` for the rest of the process (``None`` returns to the default);
- the environment variable ``MGENET_TRUST_CHECKPOINTS=1`` (inherited by dataloader workers and
  launched subprocesses).

Trusted files are unpickled in full (``weights_only=False``). Command-line tools take
``--trust-checkpoint``; a new tool wires it in two lines::

    from mgenet_mm.utils import add_trust_argument, trust_from_args
    add_trust_argument(parser)          # while building the argparse parser
    with trust_from_args(args):         # around everything that loads checkpoints
        ...

Python code that reads a checkpoint file itself calls :func:`load_checkpoint_file` (the same
policy) instead of ``torch.load``.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import pickle
import re
from typing import Any, Callable, Iterator, List, Optional

import torch

__all__ = [
    'UntrustedCheckpointError', 'TRUST_ENV', 'TRUST_FLAG', 'checkpoint_trust_enabled',
    'set_checkpoint_trust', 'trust_checkpoints', 'add_trust_argument', 'trust_from_args',
    'safe_checkpoint_globals', 'load_checkpoint_file', 'load_from_local', 'load_from_http'
]


#: Environment variable that trusts every checkpoint (``1``, ``true``, ``yes`` or ``on``).
TRUST_ENV = 'MGENET_TRUST_CHECKPOINTS'
#: The command-line flag of the tools.
TRUST_FLAG = '--trust-checkpoint'

_trust_override: Optional[bool] = None


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs full unpickling (it holds objects outside the allowlist) and checkpoint
    trust is not enabled. Subclasses :class:`pickle.UnpicklingError`, which is what
    ``torch.load(weights_only=True)`` raises for the same files."""


def checkpoint_trust_enabled() -> bool:
    """Whether checkpoints are unpickled in full: the innermost :func:`trust_checkpoints` or
    :func:`set_checkpoint_trust` value, else the environment variable :data:`TRUST_ENV`."""
    if _trust_override is not None:
        return _trust_override
    return os.environ.get(TRUST_ENV, '').strip().lower() in ('1', 'true', 'yes', 'on')


def set_checkpoint_trust(enabled: Optional[bool]) -> None:
    """Trust (``True``) or refuse (``False``) checkpoints that need full unpickling for the rest
    of the process; ``None`` returns to the default (the environment variable)."""
    global _trust_override
    _trust_override = None if enabled is None else bool(enabled)


@contextlib.contextmanager
def trust_checkpoints(enabled: bool = True) -> Iterator[None]:
    """Context manager: checkpoints loaded inside are trusted (``enabled=True``) or not.

    Example:
        >>> with trust_checkpoints():
        ...     model = init_model(config, 'someone_elses.pth')
    """
    global _trust_override
    previous = _trust_override
    _trust_override = bool(enabled)
    try:
        yield
    finally:
        _trust_override = previous


def add_trust_argument(parser) -> None:
    """Add ``--trust-checkpoint`` to an ``argparse`` parser (read by :func:`trust_from_args`)."""
    parser.add_argument(
        TRUST_FLAG, dest='trust_checkpoint', action='store_true',
        help='unpickle checkpoints in full even when they hold objects other than tensors, '
        'numpy data and mmengine\'s own log buffers. Unpickling runs code stored in the file: '
        f'use only for files you would run as a script (same as {TRUST_ENV}=1)')


@contextlib.contextmanager
def trust_from_args(args) -> Iterator[None]:
    """Context manager for a tool's main body: with ``args.trust_checkpoint`` set, checkpoints
    are trusted inside and :data:`TRUST_ENV` is exported (so dataloader workers and subprocesses
    started inside inherit it); both are restored on exit. Without the flag it changes nothing."""
    if not getattr(args, 'trust_checkpoint', False):
        yield
        return
    previous = os.environ.get(TRUST_ENV)
    os.environ[TRUST_ENV] = '1'
    try:
        with trust_checkpoints(True):
            yield
    finally:
        if previous is None:
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = previous


_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_statistic(owner: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` during a weights-only load, for one use only.

    mmengine pickles ``HistoryBuffer._statistics_methods`` (``HistoryBuffer.__getstate__``) at
    pickle protocol 2, where a function defined in a class is stored as
    ``getattr(HistoryBuffer, 'min')``. The real ``getattr`` would hand a checkpoint any attribute
    of any allowlisted object, so only these four lookups are answered.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(owner, "__qualname__", type(owner).__name__)}, {name!r}) is not '
        'allowed: only getattr(HistoryBuffer, min|max|current|mean) is')


def _numpy_multiarray():
    import numpy as np
    if hasattr(np, '_core') and hasattr(np._core, 'multiarray'):  # numpy >= 2
        return np._core.multiarray
    from numpy.core import multiarray  # numpy 1.x
    return multiarray


def safe_checkpoint_globals() -> List[Any]:
    """The allowlist added to torch's weights-only unpickler, each entry with why it is safe.

    Found by saving checkpoints with ``tools/train.py`` (STG-NF and MGENet configs: Adamax/SGD,
    ExponentialLR, message hub), mmdet/mmpose checkpoints with their ``dataset_meta``, and the
    official STG-NF ``.tar`` files, and listing the globals their pickles reference. Everything
    else (tensors, ``OrderedDict``, ``set``, bytes via ``_codecs.encode``) is allowed by torch.

    - ``mmengine.logging.history_buffer.HistoryBuffer``: the message hub's log buffers
      (``message_hub.log_scalars``); built from a dict of numbers and arrays.
    - ``builtins.getattr``, *replaced* by :func:`_history_buffer_statistic`: only
      ``getattr(HistoryBuffer, 'min'|'max'|'current'|'mean')``.
    - numpy ``ndarray``, ``dtype`` (and its per-type classes in ``numpy.dtypes``, which a
      ``dtype`` is an instance of when its state is set), ``multiarray._reconstruct`` and
      ``multiarray.scalar``: numpy arrays and scalars in ``meta`` and ``dataset_meta`` (``seed``,
      ``eta``, mmpose's sigmas and colours). They only build arrays from bytes and from objects
      that passed the same allowlist. Registered under the numpy 1 (``numpy.core``) and numpy 2
      (``numpy._core``) names, so checkpoints written under either load.
    - ``argparse.Namespace``: the ``args`` of the official STG-NF checkpoints; a plain attribute
      bag.
    """
    import argparse

    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = _numpy_multiarray()
    safe: List[Any] = [HistoryBuffer, (_history_buffer_statistic, 'builtins.getattr'),
                       argparse.Namespace, np.ndarray, np.dtype]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        safe.append((multiarray._reconstruct, f'{module}._reconstruct'))
        safe.append((multiarray.scalar, f'{module}.scalar'))
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in dir(dtypes):
            member = getattr(dtypes, name)
            if isinstance(member, type) and issubclass(member, np.dtype):
                safe.append(member)
    return safe


# Messages of torch's weights-only unpickler that mean "needs an object outside the allowlist",
# as opposed to a damaged file.
_REFUSAL = re.compile(r'Unsupported global|not an allowed global|Can only (?:build|create)|'
                      r'Trying to call reduce|whose module \S+ is blocked|is not allowed: only '
                      r'getattr|must be imported to load|would be replaced by objects')


def _refusal_detail(message: str) -> str:
    detail = message.split('WeightsUnpickler error:')[-1]
    detail = re.sub(r'\x1b\[[0-9;]*m', '', detail).strip()
    for line in detail.splitlines():
        if _REFUSAL.search(line):
            line = line.strip()
            cut = line.find(' Please use `torch.serialization.add_safe_globals')
            return (line[:cut] if cut > 0 else line).rstrip('.')
    return (detail.splitlines()[0].strip() if detail else message.strip()).rstrip('.')


def _restore_history_buffer_statistics(before: dict) -> None:
    from mmengine.logging.history_buffer import HistoryBuffer
    methods = HistoryBuffer._statistics_methods
    if methods != before:
        methods.clear()
        methods.update(before)


def _check_history_buffer_statistics(before: dict) -> None:
    """``HistoryBuffer.__setstate__`` merges the loaded statistics into a class-level dict that
    ``statistics()`` later calls: put it back and refuse the file if a load changed it to anything
    but HistoryBuffer's own methods."""
    from mmengine.logging.history_buffer import HistoryBuffer
    methods = HistoryBuffer._statistics_methods
    changed = [name for name, fn in methods.items()
               if before.get(name) is not fn and fn is not vars(HistoryBuffer).get(name)]
    if changed:
        _restore_history_buffer_statistics(before)
        raise pickle.UnpicklingError(
            f'HistoryBuffer statistics {changed} would be replaced by objects from the file')


def _guarded_load(load: Callable[[bool], Any], source: str) -> Any:
    """Run ``load(weights_only)`` under the trust policy; refusals and damaged files become
    errors that name ``source``."""
    if checkpoint_trust_enabled():
        return load(False)
    from mmengine.logging.history_buffer import HistoryBuffer
    statistics_before = dict(HistoryBuffer._statistics_methods)
    try:
        try:
            with torch.serialization.safe_globals(safe_checkpoint_globals()):
                checkpoint = load(True)
        except BaseException:
            _restore_history_buffer_statistics(statistics_before)  # a refusal after a buffer
            raise
        _check_history_buffer_statistics(statistics_before)
        return checkpoint
    except pickle.UnpicklingError as error:
        message = str(error)
        if not _REFUSAL.search(message):
            raise RuntimeError(f'{source}: cannot read the checkpoint (damaged or not a torch '
                               f'checkpoint): {_refusal_detail(message)}') from error
        raise UntrustedCheckpointError(
            f'{source}: refused to unpickle this checkpoint: {_refusal_detail(message)}. Without '
            'trust, checkpoints may hold only tensors, numpy data, mmengine log buffers and '
            'argparse namespaces, because unpickling anything else can run code stored in the '
            f'file. If you trust this file, rerun with {TRUST_FLAG}, or set {TRUST_ENV}=1, or '
            'load it inside `with mgenet_mm.utils.trust_checkpoints():`.') from None


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """``torch.load`` of a local file under the trust policy (see the module docstring).

    Raises:
        FileNotFoundError: No such file (the message names it).
        UntrustedCheckpointError: The file needs full unpickling and trust is not enabled.
        RuntimeError: The file is damaged (e.g. truncated) or not a torch checkpoint.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')

    def load(weights_only: bool) -> Any:
        return torch.load(filename, map_location=map_location, weights_only=weights_only)

    try:
        return _guarded_load(load, filename)
    except (RuntimeError, EOFError) as error:
        if str(error).startswith(filename):
            raise
        # torch's messages for a truncated or foreign file do not name it
        raise RuntimeError(f'{filename}: cannot load the checkpoint: '
                           f'{str(error) or type(error).__name__}') from error


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's ``CheckpointLoader`` scheme for local paths, under the trust policy."""
    return load_checkpoint_file(filename, map_location)


def load_from_http(filename: str, map_location: Any = None, model_dir: Optional[str] = None,
                   progress: bool = os.isatty(0)) -> Any:
    """mmengine's ``http(s)://`` loader (download to torch's hub cache on rank 0 first, then the
    other ranks) with the downloaded file unpickled under the trust policy."""
    from mmengine.dist import get_dist_info
    from torch.hub import load_state_dict_from_url

    def load() -> Any:
        return _guarded_load(
            lambda weights_only: load_state_dict_from_url(
                filename, model_dir=model_dir, map_location=map_location, progress=progress,
                weights_only=weights_only), filename)

    rank, world_size = get_dist_info()
    if rank == 0:
        checkpoint = load()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = load()
    return checkpoint
