# MGENet on the synthetic benchmark (data/synthetic, made by tools/data/make_synthetic.py), sized
# for two CPU cores: 32x32 person tubes -> a (12, 4, 4) token grid, narrow encoders, a ResNet-18
# scene encoder on 112x112 scene images. No pretrained weights can be fetched here, so the frozen
# Swin-T and ResNet-18 stages keep their (seeded) random initialisation: random convolutions still
# separate colours, shapes and textures. The guidance flow is the demo's own STG-NF
# (configs/stgnf/stgnf_demo.py). Used through demo_cached.py, which reads the frozen features
# from a cache. The level settings are those of sht_calibrated.py (chosen on the benchmark's
# validation split); demo_cached_paper.py is the same demo with the paper's settings.
_base_ = ['./sht_calibrated.py']
data_root = 'data/synthetic'
window_len = 24
tube_size = 32
scene_size = 112
token_grid = (12, 4, 4)
encoder_channels = 96
app_channels = 64
guidance_checkpoint = 'work_dirs/demo/stgnf/epoch_6.pth'

encoder = dict(type='SpaceTimeViT', in_channels=192, embed_dims=encoder_channels,
               token_grid=token_grid, depth=2, num_heads=4, _delete_=True)
model = dict(
    guidance=dict(init_cfg=dict(checkpoint=guidance_checkpoint, prefix='backbone.')),
    # Random weights: a 2x4x4 attention window fits the small token grid (the K400 window of
    # 8x7x7 would pad a 12x8x8 grid to 16x14x14 and triple the cost).
    cube_embed=dict(init_cfg=None, window_size=(2, 4, 4)),
    scene_encoder=dict(backbone=dict(depth=18), init_cfg=None),
    backbone=encoder,
    mask_encoder=dict(encoder, use_mask_token=True),
    motion_head=dict(in_channels=encoder_channels, token_grid=token_grid, num_lsta=1),
    behaviour_memory=dict(dim=encoder_channels),
    scene_memory=dict(dim=512),
    appearance_head=dict(in_channels=encoder_channels, out_channels=app_channels,
                         token_grid=token_grid),
    mask_head=dict(in_channels=encoder_channels, out_channels=app_channels,
                   token_grid=token_grid),
    mask_generator=dict(input_size=token_grid[1:]))

rgb_steps = [
    dict(type='PersonTubeCrop', size=tube_size, margin=0.1, score_thr=0.2,
         max_person_ratio=1.5),
    dict(type='SceneImage', mode='median', num_frames=15, size=scene_size),
    dict(type='NormalizePoseWindow', video_resolution=(856, 480)),
    dict(type='PackMGENetInputs', meta_keys=('scene_key', 'tube_box'))
]
train_pipeline = [dict(type='WindowFrameIndices'), dict(type='DecordInit'),
                  dict(type='DecordDecode'), *rgb_steps]
test_pipeline = [dict(type='WindowFrameIndices'), dict(type='RawFrameDecode'), *rgb_steps]
train_dataloader = dict(num_workers=2, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=2, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(gt_dir=data_root + '/gt/test_frame_mask',
                     kind_dir=data_root + '/gt/test_frame_kinds',
                     event_dir=data_root + '/gt/test_frame_events')
# RBDC / TBDC beside the AUCs: each window's score on its tube box (gt/test_region_tracks)
test_evaluator = dict(val_evaluator, type='VADRegionMetric')
train_cfg = dict(max_epochs=10, val_interval=100)  # tested by tools/demo.py afterwards
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
