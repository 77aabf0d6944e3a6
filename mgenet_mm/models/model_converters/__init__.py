"""Conversion of published checkpoints into this project's models."""
from .stgnf_converter import (PERMUTATION_ALIASES, canonical_permutation, check_official_args,
                              official_args_to_kwargs, official_keys_to_recognizer,
                              read_stgnf_checkpoint, select_state_dict)

__all__ = [
    'PERMUTATION_ALIASES', 'canonical_permutation', 'check_official_args',
    'official_args_to_kwargs', 'official_keys_to_recognizer', 'read_stgnf_checkpoint',
    'select_state_dict'
]
