"""Official STG-NF checkpoints: reading them, their training arguments, their key layout.

The checkpoints published with Hirschorn & Avidan's code (``ShanghaiTech_85_9.tar``, ...) hold
``{'state_dict': ..., 'args': argparse.Namespace}``. Their weights already carry this
project's key names (``flow.layers.<k>.*``, ``prior_h*``); what needs translating is

* the ``args``: :func:`official_args_to_kwargs` gives the :class:`~mgenet_mm.models.STGNF`
  constructor arguments, :func:`check_official_args` refuses a model built differently;
* the permutation names: :func:`canonical_permutation` (the checkpoints' typo ``'invcov'``
  means plain reversal);
* the place of the weights in a recognizer: :func:`official_keys_to_recognizer` moves them
  under ``backbone.``, so that the files load as ``load_from`` of an STG-NF recognizer.
"""
from __future__ import annotations

import os.path as osp
from argparse import Namespace
from typing import Any, Dict, Mapping, MutableMapping, Optional, Union

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from ...utils import load_checkpoint_file

__all__ = [
    'PERMUTATION_ALIASES', 'canonical_permutation', 'official_args_to_kwargs',
    'check_official_args', 'read_stgnf_checkpoint', 'select_state_dict',
    'official_keys_to_recognizer'
]

# Names the official code accepts for its permutations. Anything that is neither 'invconv' nor
# 'shuffle' falls through to channel reversal there, which is how the checkpoints' typo 'invcov'
# ends up meaning plain reversal.
PERMUTATION_ALIASES = {
    'reverse': 'reverse',
    'invcov': 'reverse',
    'shuffle': 'shuffle',
    'inv1x1': 'inv1x1',
    'invconv': 'inv1x1',
}

# Key prefixes of the flow's own state dict (an official checkpoint's top level).
_OFFICIAL_KEY_PREFIXES = ('flow.', 'prior_h')


def canonical_permutation(name: str) -> str:
    """The canonical permutation name of an official or canonical one.

    Args:
        name (str): E.g. ``'invcov'`` (the checkpoints' spelling), ``'invconv'``, ``'reverse'``.

    Returns:
        str: ``'reverse'``, ``'shuffle'`` or ``'inv1x1'``.
    """
    try:
        return PERMUTATION_ALIASES[name]
    except KeyError:
        raise ValueError(f'unknown permutation {name!r}; use one of '
                         f'{sorted(PERMUTATION_ALIASES)}') from None


def official_args_to_kwargs(args: Union[Namespace, Mapping[str, Any]]) -> Dict[str, Any]:
    """Translate the official training arguments into STGNF constructor kwargs.

    Args:
        args (Namespace | Mapping): The ``args`` stored in an official checkpoint.

    Returns:
        dict: kwargs for :class:`~mgenet_mm.models.STGNF` (without ``init_cfg``).
    """
    a = dict(vars(args)) if isinstance(args, Namespace) else dict(args)
    if a.get('L', 1) != 1:
        raise NotImplementedError(f"only one flow level (L=1) is supported, got L={a['L']}")
    if a.get('edge_importance', False):
        raise NotImplementedError('edge importance weighting is not implemented')
    if a.get('confidence', False) or a.get('model_confidence', False):
        raise NotImplementedError('checkpoints trained on (x, y, confidence) are not supported')
    return dict(
        in_channels=2,
        num_joints=18,
        seg_len=int(a['seg_len']),
        num_steps=int(a.get('K', 8)),
        prior_mean=float(a.get('R', 3.0)),
        permutation=a.get('flow_permutation', 'reverse'),
        strategy=a.get('strategy', a.get('adj_strategy', 'uniform')),
        max_hop=int(a.get('max_hop', a.get('max_hops', 8))),
        temporal_kernel=a.get('temporal_kernel', None),
        hidden_channels=int(a.get('hidden_dim', a.get('model_hidden_dim', 0))),
    )


def check_official_args(args: Any, architecture: Mapping[str, Any], source: str) -> None:
    """Refuse official ``args`` that describe another architecture than a built model's.

    Args:
        args (Any): The ``args`` entry of a checkpoint; anything that is not official STG-NF
            training arguments is accepted without a check.
        architecture (Mapping[str, Any]): The model's settings, as the constructor kwargs of
            :func:`official_args_to_kwargs` (permutation canonical, temporal kernel resolved).
        source (str): The checkpoint, for the message.

    Raises:
        ValueError: Naming every setting that differs, with (model, checkpoint) values.
    """
    try:
        expected = official_args_to_kwargs(args)
    except (KeyError, TypeError):
        return  # not official STG-NF args
    expected['permutation'] = canonical_permutation(expected['permutation'])
    if expected['temporal_kernel'] is None:
        expected['temporal_kernel'] = expected['seg_len'] // 2 + 1
    diff = {k: (architecture[k], v) for k, v in expected.items() if architecture[k] != v}
    if diff:
        raise ValueError(f'{source} was trained with a different architecture; '
                         f'(model, checkpoint) per setting: {diff}')


def read_stgnf_checkpoint(path: str, map_location: Union[str, torch.device] = 'cpu') -> Any:
    """Read a checkpoint file under the project's checkpoint trust policy.

    Local files go through :func:`mgenet_mm.utils.load_checkpoint_file`: weights-only
    unpickling with an allowlist that covers the ``argparse.Namespace`` the official STG-NF
    checkpoints pickle next to their weights, and mmengine's own checkpoints; anything else needs
    ``--trust-checkpoint`` (see :mod:`mgenet_mm.utils`). Non-local paths (http, s3, ...) go
    through mmengine's ``CheckpointLoader`` (the same policy for http).

    Args:
        path (str): Checkpoint path or URL.
        map_location (str | torch.device): Where to put the tensors. Defaults to ``'cpu'``.

    Returns:
        Any: The loaded object (a dict for every checkpoint this project reads).
    """
    if osp.isfile(osp.expanduser(path)):
        return load_checkpoint_file(path, map_location=map_location)
    if '://' in path:
        return CheckpointLoader.load_checkpoint(path, map_location=map_location)
    raise FileNotFoundError(f'checkpoint not found: {path}')


def select_state_dict(checkpoint: Any, prefix: Optional[str]) -> Dict[str, torch.Tensor]:
    """Pick the weights out of a loaded checkpoint and strip wrapper / sub-module prefixes.

    Args:
        checkpoint (Any): A loaded checkpoint: with a ``state_dict`` entry, or a bare one.
        prefix (str, optional): Keep only the keys under it (e.g. ``'backbone.'``), stripped.

    Returns:
        dict[str, torch.Tensor]: The weights, named relative to the flow.
    """
    if isinstance(checkpoint, Mapping) and 'state_dict' in checkpoint:
        state_dict = checkpoint['state_dict']
    elif isinstance(checkpoint, Mapping) and all(torch.is_tensor(v) for v in checkpoint.values()):
        state_dict = checkpoint  # a bare state dict
    else:
        raise KeyError("checkpoint has no 'state_dict' entry and is not a state dict itself")
    state_dict = dict(state_dict)
    # (Distributed)DataParallel saves every key under 'module.'.
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not state_dict:
            raise KeyError(f'no checkpoint key starts with prefix {prefix!r}')
    return state_dict


def official_keys_to_recognizer(state_dict: MutableMapping[str, torch.Tensor],
                                prefix: str) -> Optional[Dict[str, torch.Tensor]]:
    """Take the official flow keys out of a recognizer's state dict being loaded.

    An official checkpoint given to a recognizer holds ``flow.*`` and ``prior_h*`` where the
    recognizer expects ``backbone.flow.*`` and ``backbone.prior_h*``.

    Args:
        state_dict (MutableMapping[str, torch.Tensor]): The state dict being loaded (as a
            ``load_state_dict`` pre-hook sees it); the official keys are popped from it.
        prefix (str): The recognizer's own prefix in it.

    Returns:
        dict | None: The popped weights, named relative to the flow; None (nothing popped)
        when the state dict has no official keys, or already has ``backbone.`` ones.
    """
    own = [k for k in state_dict if k.startswith(prefix)]
    official = [k for k in own if k[len(prefix):].startswith(_OFFICIAL_KEY_PREFIXES)]
    if not official or any(k[len(prefix):].startswith('backbone.') for k in own):
        return None
    return {k[len(prefix):]: state_dict.pop(k) for k in official}
