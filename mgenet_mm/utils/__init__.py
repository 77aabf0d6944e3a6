"""Public helpers that are not a model, dataset or metric: the checkpoint trust policy."""
from .checkpoint_trust import (TRUST_ENV, TRUST_FLAG, UntrustedCheckpointError,
                               add_trust_argument, checkpoint_trust_enabled, load_checkpoint_file,
                               load_from_http, load_from_local, safe_checkpoint_globals,
                               set_checkpoint_trust, trust_checkpoints, trust_from_args)

__all__ = [
    'TRUST_ENV', 'TRUST_FLAG', 'UntrustedCheckpointError', 'add_trust_argument',
    'checkpoint_trust_enabled', 'load_checkpoint_file', 'load_from_http', 'load_from_local',
    'safe_checkpoint_globals', 'set_checkpoint_trust', 'trust_checkpoints', 'trust_from_args'
]
