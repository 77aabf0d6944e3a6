"""MGENet (Multilevel Guidance-Exploration Network with Behavior-Scene Matching) for MMAction2.

Importing the package registers every component into mmaction's registries.
"""
from . import _compat  # noqa: F401,I001  must run before anything imports mmaction.models
from .version import __version__
from . import datasets, engine, evaluation, models  # noqa: F401,E402  registration

__all__ = ['__version__']
