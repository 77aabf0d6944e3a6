"""Model helpers that are not layers: the skeleton graph, checked loading, freezing."""
from .checkpoint import (InitCfg, StateDictReport, init_weights_without_pretrained,
                         load_pretrained_state_dict, load_state_dict_checked, split_init_cfg)
from .freezing import FrozenModuleMixin, freeze_module
from .graph import OPENPOSE18_BONES, OPENPOSE18_CENTER, build_adjacency, uniform_graph_weight

__all__ = [
    'InitCfg', 'StateDictReport', 'init_weights_without_pretrained', 'load_pretrained_state_dict',
    'load_state_dict_checked', 'split_init_cfg', 'FrozenModuleMixin', 'freeze_module',
    'OPENPOSE18_BONES', 'OPENPOSE18_CENTER', 'build_adjacency', 'uniform_graph_weight'
]
