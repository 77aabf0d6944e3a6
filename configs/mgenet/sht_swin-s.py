# Cube embedding F_B from Video Swin-S (Kinetics-400), same 192-channel stage-2 tokens.
_base_ = './sht.py'
model = dict(cube_embed=dict(
    arch='small',
    init_cfg=dict(checkpoint='https://download.openmmlab.com/mmaction/v1.0/recognition/swin/'
                  'swin-small-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb/'
                  'swin-small-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb_'
                  '20220930-e91ab986.pth')))
