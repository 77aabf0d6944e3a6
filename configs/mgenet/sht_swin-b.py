# Cube embedding F_B from Video Swin-B (Kinetics-400): stage-2 tokens are 256 channels wide.
_base_ = './sht.py'
model = dict(
    cube_embed=dict(
        arch='base',
        init_cfg=dict(checkpoint='https://download.openmmlab.com/mmaction/v1.0/recognition/'
                      'swin/swin-base-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb/'
                      'swin-base-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb_'
                      '20220930-182ec6cc.pth')),
    backbone=dict(in_channels=256),
    mask_encoder=dict(in_channels=256))
