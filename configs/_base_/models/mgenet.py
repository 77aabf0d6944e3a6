# MGENet on ShanghaiTech geometry: windows of T = 24 frames, 64x64 person tubes, Video Swin-T
# cube tokens of 2x8x8 pixels -> a (t, h, w) = (12, 8, 8) token grid of 192 channels.
# Frozen parts load their weights from paths or URLs: the pretrained STG-NF (ours, or the
# official ShanghaiTech_85_9.tar), Swin-T Kinetics-400 and an ImageNet ResNet-50.
guidance_checkpoint = 'checkpoints/ShanghaiTech_85_9.tar'
swin_checkpoint = ('https://download.openmmlab.com/mmaction/v1.0/recognition/swin/'
                   'swin-tiny-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb/'
                   'swin-tiny-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb_'
                   '20220930-241016b2.pth')
scene_checkpoint = 'torchvision://resnet50'
seg_len = 24
token_grid = (12, 8, 8)
cube_channels = 192  # Swin-T/S stage-2 width
encoder_channels = 384
scene_channels = 2048  # ResNet-50

# Per modality: stack the batch; tubes and scene images (0..255 RGB) get the ImageNet mean/std
# that the Kinetics-400 Swin and the ImageNet ResNet were trained with. Poses arrive normalised,
# cached features need nothing.
rgb_mean = [123.675, 116.28, 103.53]
rgb_std = [58.395, 57.12, 57.375]
data_preprocessor = dict(
    type='MultiModalDataPreprocessor',
    preprocessors=dict(
        pose=dict(type='ActionDataPreprocessor'),
        imgs=dict(type='ActionDataPreprocessor', mean=rgb_mean, std=rgb_std,
                  format_shape='NCTHW'),
        scene=dict(type='ActionDataPreprocessor', mean=rgb_mean, std=rgb_std,
                   format_shape='NCHW'),
        tokens=dict(type='ActionDataPreprocessor'),
        scene_feat=dict(type='ActionDataPreprocessor')))

encoder = dict(type='SpaceTimeViT', in_channels=cube_channels, embed_dims=encoder_channels,
               token_grid=token_grid, depth=4, num_heads=6)
model = dict(
    type='MGENetRecognizer',
    guidance=dict(type='STGNF', seg_len=seg_len,
                  init_cfg=dict(type='Pretrained', checkpoint=guidance_checkpoint)),
    cube_embed=dict(type='SwinCubeEmbedding', arch='tiny',
                    init_cfg=dict(type='Pretrained', checkpoint=swin_checkpoint,
                                  prefix='backbone.')),
    scene_encoder=dict(type='SceneEncoder', backbone=dict(type='ResNet', depth=50),
                       init_cfg=dict(type='Pretrained', checkpoint=scene_checkpoint)),
    backbone=encoder,
    motion_head=dict(type='LSTAHead', in_channels=encoder_channels, out_channels=36,
                     token_grid=token_grid),
    behaviour_memory=dict(type='MemoryBank', num_items=128, dim=encoder_channels),
    scene_memory=dict(type='MemoryBank', num_items=32, dim=scene_channels),
    bsmm=dict(type='BSMM', num_items=64, top_k=4),
    mask_encoder=dict(encoder, use_mask_token=True),
    appearance_head=dict(type='ProjectionHead', in_channels=encoder_channels, out_channels=256,
                         token_grid=token_grid),
    # alpha = 0.1 of eq. 12 is the mask head's loss weight.
    mask_head=dict(type='ProjectionHead', in_channels=encoder_channels, out_channels=256,
                   token_grid=token_grid, loss_weight=0.1),
    mask_generator=dict(type='BlockMaskGenerator', input_size=token_grid[1:], mask_ratio=0.5),
    sep_loss_weight=0.001,  # beta of eq. 12
    train_cfg=dict(levels=('motion', 'appearance')),
    test_cfg=dict(motion_score='diff', mask_seed=0),
    data_preprocessor=data_preprocessor)
# Under DDP: some trainable parameters get no gradient in a step (H_u, since f_u is detached in
# L_app; the parts of a level that train_cfg.levels leaves out), which DDP must be told about.
find_unused_parameters = True
