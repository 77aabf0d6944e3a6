"""The runner of ``tools/train.py`` and ``tools/test.py``: mmengine's, with two things made safe.

- **Strict checkpoints.** mmengine loads ``load_from`` and ``--resume`` checkpoints with
  ``strict=False`` and only logs the keys that do not fit: an STG-NF checkpoint missing one
  coupling block then scores with that block's random weights, and exits 0. For this project's
  models (classes under ``mgenet_mm``) the checkpoint must fit key for key
  (:func:`~mgenet_mm.models.utils.checkpoint.load_model_checkpoint`), unless the config sets
  ``allow_partial_checkpoint=True``. A checkpoint path that is a folder is named as such.
  Other models (e.g. mmaction's own) keep mmengine's behaviour.
- **One folder per run.** mmengine names the run folder ``<work_dir>/<YYYYmmdd_HHMMSS>`` (its
  timestamp) and creates it with ``exist_ok``, so two runs started in the same second shared
  it: one result file was lost and the logs interleaved. Here rank 0 creates it exclusively
  (:func:`~mgenet_mm.fileio.make_unique_folder`: ``_1``, ``_2`` ... appended when taken) and
  the other ranks take its name; the log file, the config dump and ``vis_data`` follow.

Its environment log is mmengine's, line for line, but does not import torchvision to read
its version (about a second and some memory, for a run that need not use it; see
:func:`torchvision_version_only`), and a data loader built only of this project's types does not
import mmaction's datasets (:mod:`~mgenet_mm.engine.registry_imports`).
"""
from __future__ import annotations

import ast
import gc
import importlib.util
import os.path as osp
import sys
import types
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Union

from mmengine.dist import broadcast_object_list, get_dist_info
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from mmaction.registry import RUNNERS
from ..fileio import make_unique_folder
from ..models.utils.checkpoint import (PARTIAL_CHECKPOINT_KEY, check_checkpoint_path,
                                       is_project_model, load_model_checkpoint)
from .registry_imports import mmaction_datasets_deferred

__all__ = ['CheckedRunner', 'torchvision_version_only']


def _torchvision_version() -> Optional[str]:
    """``torchvision.__version__`` read from its ``version.py``, without importing torchvision.

    Returns:
        str | None: The version, or None when torchvision is absent or its file unreadable.
    """
    spec = importlib.util.find_spec('torchvision')  # locates the package; imports nothing
    if spec is None or not spec.submodule_search_locations:
        return None
    path = osp.join(list(spec.submodule_search_locations)[0], 'version.py')
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:  # the first ``__version__ = '...'`` assignment
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == '__version__'
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return None


@contextmanager
def torchvision_version_only() -> Iterator[None]:
    """Within the block, ``import torchvision`` gives a module holding only ``__version__``.

    mmengine's ``collect_env`` (the runner's environment log) imports torchvision only to
    print its version; importing it takes about a second (its models and ops, triton) for a
    run that may never use it. Where torchvision is imported already, or its version cannot
    be read from its ``version.py``, nothing changes. The stand-in is removed on exit, so a
    later ``import torchvision`` imports the real package.
    """
    version = None if 'torchvision' in sys.modules else _torchvision_version()
    if version is None:
        yield
        return
    stand_in = types.ModuleType('torchvision', 'Version only (mgenet_mm environment log).')
    stand_in.__version__ = version
    sys.modules['torchvision'] = stand_in
    try:
        yield
    finally:
        if sys.modules.get('torchvision') is stand_in:
            del sys.modules['torchvision']


@RUNNERS.register_module()
class CheckedRunner(Runner):
    """mmengine's ``Runner`` with strict checkpoint loading and exclusive run folders.

    Built like mmengine's (``CheckedRunner.from_cfg(cfg)``, or ``runner_type='CheckedRunner'``
    in a config). Extra top-level config key: ``allow_partial_checkpoint`` (bool, default
    False): load a checkpoint that fits the model only in part, with a warning.

    A model may name keys a checkpoint can lack with a method ``checkpoint_optional_keys()``
    returning regular expressions (e.g. frozen parts rebuilt from their own checkpoints).
    """

    def setup_env(self, env_cfg: dict) -> None:
        """mmengine's setup, then claim a run folder of our own (see the module docstring)."""
        super().setup_env(env_cfg)
        rank, world_size = get_dist_info()
        name = [make_unique_folder(self._work_dir, self._timestamp) if rank == 0 else None]
        if world_size > 1:
            broadcast_object_list(name)  # every rank logs into rank 0's folder
        self._timestamp = name[0]

    def test(self) -> dict:
        """mmengine's ``test``, with what is alive before it left out of full collections.

        Everything built so far (modules, config, model: a few million objects) lives until
        the process ends, yet each full pass of the garbage collector walks it again: about
        2 s over an STG-NF test on the ShanghaiTech test set (reading its JSON files and the
        loop start several). ``gc.freeze`` moves those objects to a generation that the
        collector skips (after one last collection, so that no garbage is kept); what the
        test creates is collected as before, and on return the frozen objects are handed
        back to the collector.

        Returns:
            dict: The metrics of the test loop.
        """
        gc.collect()
        gc.freeze()
        try:
            return super().test()
        finally:
            gc.unfreeze()  # back to the collector: a runner dropped later is freed

    @staticmethod
    def build_dataloader(dataloader, seed: Optional[int] = None,
                         diff_rank_seed: bool = False):
        """mmengine's ``build_dataloader``; a loader of this project's types alone is built
        without importing mmaction's datasets (see :mod:`~mgenet_mm.engine.registry_imports`)."""
        with mmaction_datasets_deferred(dataloader):
            return Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)

    def _log_env(self, env_cfg: dict) -> None:
        """mmengine's environment log, without importing torchvision for its version."""
        with torchvision_version_only():
            super()._log_env(env_cfg)

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):  # noqa: B006  mmengine's
        """Load a checkpoint into the model; strictly for this project's models.

        Args:
            filename (str): Path or URL.
            map_location (str | Callable): Where to map the tensors. Defaults to 'cpu'.
            strict (bool): mmengine's flag, used only for models of other projects (this
                project's load strictly unless ``allow_partial_checkpoint``).
            revise_keys (list): ``(pattern, replacement)`` pairs applied to the keys.

        Returns:
            dict: The loaded checkpoint (``meta``, ``optimizer`` ... for ``resume``).
        """
        check_checkpoint_path(filename)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        if not is_project_model(model):
            return super().load_checkpoint(filename, map_location, strict, revise_keys)
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        optional = getattr(model, 'checkpoint_optional_keys', lambda: ())()
        load_model_checkpoint(model, checkpoint, source=filename,
                              allow_partial=bool(self.cfg.get(PARTIAL_CHECKPOINT_KEY, False)),
                              optional=optional, revise_keys=revise_keys,
                              logger=self.logger.warning)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint
