"""The frozen feature extractors of MGENet (cube embedding, scene encoder), built on their own.

The feature cache (``tools/data/extract_features.py``) and the video scoring API
(:func:`mgenet_mm.apis.init_model`) must give these parts the same weights: from their
``Pretrained`` checkpoint, or, without one, randomly from one seed, in one order. Both build them
here.
"""
from __future__ import annotations

import copy
import logging
from typing import Dict, Mapping, Optional

import torch
from mmengine.logging import MMLogger, print_log

from mmaction.registry import MODELS
from .utils.checkpoint import split_init_cfg
from .utils.freezing import freeze_module

#: The frozen parts, in the order they are built (and draw random numbers).
FROZEN_PARTS = ('cube_embed', 'scene_encoder')


def quiet_init(module: torch.nn.Module) -> None:
    """``init_weights()`` without mmengine's per-parameter report (hundreds of lines)."""
    pretrained, _ = split_init_cfg(getattr(module, 'init_cfg', None))
    source = pretrained['checkpoint'] if pretrained else 'random initialisation'
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module.init_weights()
    except Exception as error:
        if pretrained is None:
            raise
        raise RuntimeError(f'cannot load the {type(module).__name__} weights from {source}: '
                           f'{type(error).__name__}: {error}. Without network access, download '
                           'the file elsewhere and point init_cfg.checkpoint at it in the model '
                           'config') from error
    finally:
        logger.setLevel(level)
    print_log(f'{type(module).__name__}: weights from {source}', logger='current')


def random_frozen_parts(model_cfg: Mapping) -> list:
    """Names of the configured frozen parts that have no ``Pretrained`` checkpoint."""
    return [name for name in FROZEN_PARTS if model_cfg.get(name) is not None
            and split_init_cfg(model_cfg[name].get('init_cfg'))[0] is None]


def build_frozen_parts(model_cfg: Mapping, seed: int) -> Dict[str, Optional[torch.nn.Module]]:
    """Build and initialise the frozen parts of a model config, in eval mode, without gradients.

    Args:
        model_cfg (Mapping): The recognizer config (``cube_embed``, ``scene_encoder``).
        seed (int): Seed of parts without a ``Pretrained`` checkpoint; the global torch RNG is
            seeded with it first.

    Returns:
        dict: Part name -> module (None where the config has none).
    """
    torch.manual_seed(seed)
    modules: Dict[str, Optional[torch.nn.Module]] = {}
    for name in FROZEN_PARTS:
        part = model_cfg.get(name)
        module = None
        if part is not None:
            module = MODELS.build(copy.deepcopy(part))
            quiet_init(module)
            freeze_module(module)
        modules[name] = module
    return modules
