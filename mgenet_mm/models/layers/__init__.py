"""Building blocks of the models that are not registered components: the STG-NF flow layers
and its fused evaluation pass."""
from .stgnf_fused import fused_flow_applies, fused_flow_forward, temporal_conv_matrix
from .stgnf_layers import (ActNorm, ChannelPermutation, FlowStep, GraphConv, InvertibleConv1x1,
                           STGCNBlock)

__all__ = [
    'ActNorm', 'ChannelPermutation', 'FlowStep', 'GraphConv', 'InvertibleConv1x1', 'STGCNBlock',
    'fused_flow_applies', 'fused_flow_forward', 'temporal_conv_matrix'
]
