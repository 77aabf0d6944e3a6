"""Helpers shared by the transforms of this package."""
from typing import Dict

__all__ = ['describe_window']


def describe_window(results: Dict) -> str:
    """The window of ``results`` for an error message: clip, person and first frame."""
    return (f'clip {results.get("clip_name", "?")}, person {results.get("person_id", "?")}, '
            f'frame {results.get("start_frame", "?")}')
