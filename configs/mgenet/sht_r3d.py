# A non-Swin cube embedding: mmaction2's ResNet3d (I3D-style, first two stages), frozen. Its
# stage-2 map has strides (2, 8, 8) and 512 channels, projected to 192 by a fixed 1x1x1 conv.
# Give it Kinetics-400 I3D weights through init_cfg (prefix 'backbone.').
_base_ = './sht.py'
model = dict(cube_embed=dict(
    _delete_=True,
    type='MMActionCubeEmbedding',
    backbone=dict(type='ResNet3d', depth=50, num_stages=2, out_indices=(1, ),
                  dilations=(1, 1), spatial_strides=(1, 2),
                  temporal_strides=(1, 1), inflate=((1, 1, 1), (1, 0, 1, 0)),
                  conv1_kernel=(5, 7, 7), conv1_stride_t=2, pool1_stride_t=1,
                  pretrained2d=False, pretrained=None),
    out_channels=192,
    cube_size=(2, 8, 8)))
