"""MGENetWindowDataset: the three layouts, load-time checks, the scene split, and a batch of the
configured pipelines through MGENetRecognizer.train_step."""
import copy
import json
from pathlib import Path
from typing import Dict, Sequence

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401
from mgenet_mm.datasets import MGENetWindowDataset
from mgenet_mm.datasets.mgenet_window_dataset import scan_frame_folder, split_clips
from mmaction.registry import DATASETS, METRICS, MODELS

init_default_scope('mmaction')

REPO = Path(__file__).resolve().parents[2]
W, H, T = 96, 72, 8


def _frames(count: int, seed: int = 0) -> np.ndarray:
    """(count, H, W, 3) BGR frames: a fixed gradient background and a person-sized block
    walking right by 2 pixels a frame."""
    rng = np.random.default_rng(seed)
    background = np.zeros((H, W, 3), np.uint8)
    background[..., 0] = np.linspace(40, 200, W, dtype=np.uint8)[None]
    background[..., 1] = np.linspace(30, 120, H, dtype=np.uint8)[:, None]
    background[..., 2] = rng.integers(60, 90)
    frames = np.repeat(background[None], count, axis=0)
    for i in range(count):
        x = 20 + 2 * i
        frames[i, 20:60, x:x + 16] = (250, 250, 250)
    return frames


def _write_video(path: Path, frames: np.ndarray, fourcc: str = 'MJPG') -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (W, H))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def _write_frames(folder: Path, frames: np.ndarray, width: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f'{i:0{width}d}.jpg'), frame)
    return folder


def _person(frames: Sequence[int], x_offset: float = 0.0) -> Dict:
    """17 keypoints inside the walking block of :func:`_frames` (pixels, confidence 0.9)."""
    track = {}
    for f in frames:
        x = 20 + 2 * f + x_offset
        xs = x + np.linspace(2, 14, 17)
        ys = 22 + np.abs(np.linspace(-1, 1, 17)) * 36
        keypoints = np.stack([xs, ys, np.full(17, 0.9)], axis=1)
        track[f'{f:04d}'] = {'keypoints': keypoints.round(2).ravel().tolist(), 'scores': 0.9}
    return track


def _write_pose(folder: Path, clip: str, persons: Dict[int, Dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f'{clip}_alphapose_tracked_person.json').write_text(
        json.dumps({str(pid): track for pid, track in persons.items()}))


def _write_mask(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'wb') as f:  # np.save(str) would append .npy to a _tracks.txt name
        np.save(f, mask)
    return path


def _shanghaitech(root: Path, num_frames: int = 20) -> Path:
    """training/videos/01_001.avi, testing/frames/01_0014/, poses of two persons each."""
    frames = _frames(num_frames)
    _write_video(root / 'training' / 'videos' / '01_001.avi', frames)
    _write_frames(root / 'testing' / 'frames' / '01_0014', frames)
    for split, clip in (('train', '01_001'), ('test', '01_0014')):
        _write_pose(root / 'pose' / split, clip,
                    {1: _person(range(num_frames)), 2: _person(range(4, num_frames), 3.0)})
    return root


def test_shanghaitech_layout(tmp_path: Path) -> None:
    root = _shanghaitech(tmp_path)
    train = MGENetWindowDataset('pose/train', layout='shanghaitech', data_root=str(root),
                                video_dir='training/videos', seg_len=T, stride=1)
    # person 1: 20 rows -> 12 windows; person 2: 16 rows -> 8 windows
    assert len(train) == 20 and train.skip_counts['windows_past_video_end'] == 0
    # Lean per-window entries: small ints only, the strings live once per clip.
    assert set(train.data_list[0]) == {'row', 'clip_index', 'person_id', 'start_frame'}
    item = train.get_data_info(13)
    assert item['filename'] == str(root / 'training' / 'videos' / '01_001.avi')
    assert item['total_frames'] == 20 and item['seg_len'] == T
    assert (item['clip_name'], item['scene_id'], item['clip_id'], item['scene_key']) == \
        ('01_001', 1, 1, '01')
    assert (item['person_id'], item['start_frame']) == (2, 5)
    assert item['keypoint'].shape == (T, 18, 3)
    assert train.window_keys()[13] == ('01_001', 2, 5)
    assert train.window_metadata()[13].tolist() == [1, 1, 2, 5]
    assert train.metainfo['clips'] == ('01_001', )

    test = MGENetWindowDataset('pose/test', layout='shanghaitech', data_root=str(root),
                               frame_dir='testing/frames', seg_len=T, test_mode=True)
    item = test.get_data_info(0)
    assert item['frame_dir'] == str(root / 'testing' / 'frames' / '01_0014')
    assert (item['filename_tmpl'], item['modality'], item['total_frames']) == \
        ('{:03d}.jpg', 'RGB', 20)
    assert 'filename' not in item


def test_ubnormal_and_own_layouts(tmp_path: Path) -> None:
    frames = _frames(12)
    clip = 'abnormal_scene_3_scenario_2_fog'
    _write_video(tmp_path / 'ub' / 'Scene3' / f'{clip}.mp4', frames, 'mp4v')
    _write_pose(tmp_path / 'ub' / 'pose' / 'test', clip, {0: _person(range(12))})
    ub = MGENetWindowDataset('pose/test', layout='ubnormal', data_root=str(tmp_path / 'ub'),
                             video_dir='', seg_len=T)
    item = ub.get_data_info(0)
    assert item['filename'].endswith(f'Scene3/{clip}.mp4') and item['total_frames'] == 12
    assert (item['scene_id'], item['clip_id'], item['scene_key']) == (3, 2, 'Scene3')
    by_index = MGENetWindowDataset('pose/test', layout='ubnormal', data_root=str(tmp_path / 'ub'),
                                   video_dir='', seg_len=T, frame_counter='decord')
    assert by_index.clip_infos[0]['total_frames'] == 12

    own = tmp_path / 'own'
    _write_video(own / 'videos' / 'lobby.mp4', frames, 'mp4v')
    _write_video(own / 'videos' / 'yard.avi', frames)
    _write_frames(own / 'frames' / 'lobby', frames, width=5)
    for name in ('lobby', 'yard'):
        _write_pose(own / 'pose', name, {1: _person(range(12))})
    videos = MGENetWindowDataset('pose', layout='own', data_root=str(own), video_dir='videos',
                                 seg_len=T)
    assert [Path(c['filename']).name for c in videos.clip_infos] == ['lobby.mp4', 'yard.avi']
    assert videos.get_data_info(0)['scene_key'] == 'lobby'
    folders = MGENetWindowDataset('pose', layout='own', data_root=str(own), frame_dir='frames',
                                  clips=['lobby'], seg_len=T)
    assert folders.get_data_info(0)['filename_tmpl'] == '{:05d}.jpg'
    with pytest.raises(ValueError, match='exactly one of video_dir'):
        MGENetWindowDataset('pose', layout='own', data_root=str(own), video_dir='videos',
                            frame_dir='frames')
    with pytest.raises(ValueError, match='layout must be one of'):
        MGENetWindowDataset('pose', layout='avenue', data_root=str(own), video_dir='videos')


def test_missing_or_unreadable_sources_are_named(tmp_path: Path) -> None:
    root = _shanghaitech(tmp_path)
    _write_pose(root / 'pose' / 'train', '02_002', {1: _person(range(20))})
    with pytest.raises(FileNotFoundError, match='clip 02_002: video not found') as error:
        MGENetWindowDataset('pose/train', data_root=str(root), video_dir='training/videos',
                            seg_len=T)
    assert str(root / 'training' / 'videos' / '02_002.avi') in str(error.value)

    bad = root / 'training' / 'videos' / '02_002.avi'
    bad.write_bytes(b'not a video' * 50)
    with pytest.raises(ValueError, match='cannot read video') as error:
        MGENetWindowDataset('pose/train', data_root=str(root), video_dir='training/videos',
                            seg_len=T)
    assert str(bad) in str(error.value)

    _write_pose(root / 'pose' / 'test', '01_0015', {1: _person(range(20))})
    with pytest.raises(FileNotFoundError, match='clip 01_0015: frame folder not found') as error:
        MGENetWindowDataset('pose/test', data_root=str(root), frame_dir='testing/frames',
                            seg_len=T)
    assert str(root / 'testing' / 'frames' / '01_0015') in str(error.value)
    empty = root / 'testing' / 'frames' / '01_0015'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='no frames'):
        MGENetWindowDataset('pose/test', data_root=str(root), frame_dir='testing/frames',
                            seg_len=T)
    _write_frames(empty, _frames(20))
    (empty / '007.jpg').unlink()
    with pytest.raises(ValueError, match=r'not numbered 0\.\.18 .*no 007\.jpg'):
        scan_frame_folder(str(empty))


def test_windows_past_the_end_are_skipped_and_counted(tmp_path: Path) -> None:
    # The video holds 18 frames, the pose file numbers 20: the container is short by two.
    _write_video(tmp_path / 'videos' / 'short.avi', _frames(18))
    _write_pose(tmp_path / 'pose', 'short', {1: _person(range(20))})
    dataset = MGENetWindowDataset('pose', layout='own', data_root=str(tmp_path),
                                  video_dir='videos', seg_len=T, stride=1)
    # 12 windows start at 0..11; those starting at 11 (frames 11..18) run one frame past the end
    assert dataset.skip_counts['windows_past_video_end'] == 1
    assert len(dataset) == dataset.skip_counts['windows'] == 11
    assert max(d['start_frame'] + T for d in dataset.data_list) <= 18


def test_pose_frames_past_the_video_are_an_error(tmp_path: Path) -> None:
    _write_video(tmp_path / 'videos' / 'other.avi', _frames(12))
    _write_pose(tmp_path / 'pose', 'other', {1: _person(range(40))})
    with pytest.raises(ValueError, match='clip other: pose frames run .* past the end') as error:
        MGENetWindowDataset('pose', layout='own', data_root=str(tmp_path), video_dir='videos',
                            seg_len=T)
    assert 'other_alphapose_tracked_person.json' in str(error.value)
    assert 'other.avi (12 frames' in str(error.value)


def _ubnormal_names():
    names = []
    for scene in (1, 3, 4, 11, 21):
        names += [f'normal_scene_{scene}_scenario_{i}' for i in range(1, 11)]
        names += [f'abnormal_scene_{scene}_scenario_{i}' for i in range(1, 6)]
    return names


@pytest.mark.parametrize('mask_frames', [25, 15, 5020])
def test_gt_mask_of_another_length_than_the_clip_is_an_error(tmp_path: Path,
                                                             mask_frames: int) -> None:
    root = _shanghaitech(tmp_path)  # testing/frames/01_0014 holds 20 frames
    mask = _write_mask(root / 'gt' / '01_0014.npy', (np.arange(mask_frames) > 12).astype(np.uint8))
    test = MGENetWindowDataset('pose/test', layout='shanghaitech', data_root=str(root),
                               frame_dir='testing/frames', seg_len=T, test_mode=True)
    assert test.metainfo['clip_frames'] == {'01_0014': 20}
    metric = METRICS.build(dict(type='VADAUCMetric', gt_dir=str(root / 'gt'), seg_len=T))
    # The evaluator hands dataset.metainfo over when the loop is built, before inference; the
    # extra frames of a longer mask would otherwise count as normal frames nobody is in.
    with pytest.raises(ValueError, match=f'clip 01_0014: ground-truth mask .* has {mask_frames} '
                       'frames, but .*01_0014 has 20') as error:
        metric.dataset_meta = test.metainfo
    assert str(mask) in str(error.value)
    _write_mask(mask, (np.arange(20) > 12).astype(np.uint8))
    metric.dataset_meta = test.metainfo  # the right length passes


def test_metric_window_length_must_be_the_datasets(tmp_path: Path) -> None:
    root = _shanghaitech(tmp_path)
    _write_mask(root / 'gt' / '01_0014.npy', np.zeros(20, dtype=np.uint8))
    test = MGENetWindowDataset('pose/test', layout='shanghaitech', data_root=str(root),
                               frame_dir='testing/frames', seg_len=T, test_mode=True)
    metric = METRICS.build(dict(type='VADAUCMetric', gt_dir=str(root / 'gt'), seg_len=T + 1))
    with pytest.raises(ValueError, match=f'seg_len={T + 1} but the dataset cuts windows of '
                       f'seg_len={T}'):
        metric.dataset_meta = test.metainfo


def test_training_set_whose_windows_all_run_past_the_video_is_an_error(tmp_path: Path) -> None:
    frames = _frames(10)
    _write_video(tmp_path / 'videos' / '01_001.avi', frames)
    # 2 windows, frames 4..11 and 5..12: past the last frame (9), within max_frame_overrun
    _write_pose(tmp_path / 'pose', '01_001', {1: _person(range(4, 14))})
    with pytest.raises(ValueError, match=r'no training windows in .*pose.*, 2 run past the end '
                       'of their video'):
        MGENetWindowDataset('pose', layout='shanghaitech', data_root=str(tmp_path),
                            video_dir='videos', seg_len=T, stride=1)


def test_split_clips_partitions_deterministically(tmp_path: Path) -> None:
    names = _ubnormal_names()
    groups = dict(A=[1, 3], B=[4], C=[11], D=[21])
    moved = ['abnormal_scene_1_scenario_1', 'abnormal_scene_4_scenario_2',
             'abnormal_scene_11_scenario_3']
    kwargs = dict(scene_groups=groups, groups='ACD', moved_clips=moved, moved_groups='AB')
    subsets = {s: split_clips(names, s, **kwargs) for s in ('train', 'val', 'test')}
    chosen = set().union(*subsets.values())
    assert sum(map(len, subsets.values())) == len(chosen)  # disjoint
    assert chosen == {n for n in names if '_scene_4_' not in n}  # group B left out
    train = set(subsets['train'])
    # moved into training only where running is normal (A); in C it stays abnormal and is tested
    assert 'abnormal_scene_1_scenario_1' in train
    assert 'abnormal_scene_11_scenario_3' not in train
    assert train - {'abnormal_scene_1_scenario_1'} == {n for n in train
                                                       if n.startswith('normal_')}
    # 5:2:3 of the ten normal videos of every scene
    for scene in (1, 3, 11, 21):
        counts = [sum(n.startswith(f'normal_scene_{scene}_') for n in subsets[s])
                  for s in ('train', 'val', 'test')]
        assert counts == [5, 2, 3]
    assert split_clips(names, 'test', **kwargs) == subsets['test']
    assert split_clips(names, 'test', seed=1, **kwargs) != subsets['test']
    moved_file = tmp_path / 'moved.txt'
    moved_file.write_text('\n'.join(moved) + '\n')
    assert split_clips(names, 'train', **dict(kwargs, moved_clips=str(moved_file))) == \
        subsets['train']
    with pytest.raises(KeyError, match='unknown scene groups'):
        split_clips(names, 'train', scene_groups=groups, groups='AE')


def test_dataset_scene_selection_and_split(tmp_path: Path) -> None:
    frames = _frames(10)
    names = [n for n in _ubnormal_names() if '_scene_1_' in n or '_scene_11_' in n][::2]
    folders = ('train', 'validation', 'test')
    for i, name in enumerate(names):
        scene = name.split('_scene_')[1].split('_')[0]
        _write_video(tmp_path / f'Scene{scene}' / f'{name}.mp4', frames, 'mp4v')
        _write_pose(tmp_path / 'pose' / folders[i % 3], name, {1: _person(range(10))})
        _write_mask(tmp_path / 'gt' / f'{name}.npy', np.zeros(10, dtype=np.uint8))
    pose_dirs = [f'pose/{f}' for f in folders]
    only_11 = MGENetWindowDataset(pose_dirs, layout='ubnormal', data_root=str(tmp_path),
                                  video_dir='', seg_len=T, scenes=[11])
    assert {c['scene_id'] for c in only_11.clip_infos} == {11}
    split = dict(scene_groups=dict(A=[1], C=[11]), seed=3)
    subsets = {}
    for subset in ('train', 'val', 'test'):
        options = dict(split, subset=subset)
        dataset = MGENetWindowDataset(pose_dirs, layout='ubnormal', data_root=str(tmp_path),
                                      video_dir='', seg_len=T, split=options)
        subsets[subset] = set(dataset.metainfo['clips'])
        # The metric evaluates the chosen clips, read from the metainfo (no list file).
        metric = METRICS.build(dict(type='VADAUCMetric', gt_dir=str(tmp_path / 'gt'), seg_len=T,
                                    use_dataset_clips=True))
        metric.dataset_meta = dataset.metainfo
        assert metric._dataset_clips() == sorted(subsets[subset])
    assert not list(tmp_path.rglob('*clips*.txt'))
    assert set().union(*subsets.values()) == set(names)
    assert all(n.startswith('normal_') for n in subsets['train'])
    with pytest.raises(ValueError, match='split needs a subset'):
        MGENetWindowDataset(pose_dirs, layout='ubnormal', data_root=str(tmp_path),
                            video_dir='', split=dict(seed=0))
    with pytest.raises(ValueError, match='split.list_file is gone'):
        MGENetWindowDataset(pose_dirs, layout='ubnormal', data_root=str(tmp_path), video_dir='',
                            split=dict(split, subset='test', list_file='clips.txt'))


# ---------------------------------------------------------------------- through the model
TOKEN_GRID, C_IN, C_B = (4, 4, 4), 16, 32
TINY_MGENET = dict(
    type='MGENetRecognizer',
    guidance=dict(type='STGNF', seg_len=T),
    # A 2-stage ResNet3d-18 (strides 2x8x8) as cube embedding: 32x32 tubes -> 4x4x4 tokens.
    cube_embed=dict(type='MMActionCubeEmbedding', out_channels=C_IN, cube_size=(2, 8, 8),
                    feat_channels=32,
                    backbone=dict(type='ResNet3d', depth=18, pretrained=None,
                                  pretrained2d=False, base_channels=16, num_stages=2,
                                  out_indices=(1, ), spatial_strides=(1, 2),
                                  temporal_strides=(1, 1), dilations=(1, 1), inflate=(1, 1))),
    # ResNet-18 scene encoder (C_s = 512); giving the widths skips the probing forward passes
    scene_encoder=dict(type='SceneEncoder', backbone=dict(type='ResNet', depth=18),
                       out_channels=512),
    backbone=dict(type='SpaceTimeViT', in_channels=C_IN, embed_dims=C_B, token_grid=TOKEN_GRID,
                  depth=1, num_heads=2),
    motion_head=dict(type='LSTAHead', in_channels=C_B, out_channels=36, token_grid=TOKEN_GRID,
                     num_lsta=1, lsta_kernel_size=5, lsta_dilation=2),
    behaviour_memory=dict(type='MemoryBank', num_items=6, dim=C_B),
    scene_memory=dict(type='MemoryBank', num_items=3, dim=512),
    bsmm=dict(type='BSMM', num_items=4, top_k=2),
    mask_encoder=dict(type='SpaceTimeViT', in_channels=C_IN, embed_dims=C_B,
                      token_grid=TOKEN_GRID, depth=1, num_heads=2, use_mask_token=True),
    appearance_head=dict(type='ProjectionHead', in_channels=C_B, out_channels=8,
                         token_grid=TOKEN_GRID),
    mask_head=dict(type='ProjectionHead', in_channels=C_B, out_channels=8,
                   token_grid=TOKEN_GRID, loss_weight=0.1),
    mask_generator=dict(type='BlockMaskGenerator', input_size=TOKEN_GRID[1:], mask_ratio=0.5,
                        min_num_patches=2))


def _small(pipeline: list) -> list:
    """The configured pipeline at test sizes: 32x32 tubes, 64x64 scene images."""
    pipeline = copy.deepcopy(pipeline)
    for step in pipeline:
        if step['type'] == 'PersonTubeCrop':
            step['size'] = 32
        elif step['type'] == 'SceneImage':
            step.update(size=64, num_frames=5)
    return pipeline


def test_configured_pipelines_feed_train_step(tmp_path: Path) -> None:
    root = _shanghaitech(tmp_path)
    cfg = Config.fromfile(str(REPO / 'configs' / 'mgenet' / 'sht.py'))
    datasets = {}
    for name in ('train', 'test'):
        dataset_cfg = copy.deepcopy(cfg[f'{name}_dataloader']['dataset'])
        dataset_cfg.update(data_root=str(root), seg_len=T,
                           pipeline=_small(dataset_cfg['pipeline']))
        datasets[name] = DATASETS.build(dataset_cfg)
    item = datasets['train'][0]
    inputs = item['inputs']
    assert inputs['pose'].shape == (T, 18, 3) and inputs['pose'].dtype == torch.float32
    assert inputs['imgs'].shape == (3, T, 32, 32) and inputs['scene'].shape == (3, 64, 64)
    meta = item['data_samples'].metainfo
    assert (meta['clip_name'], meta['person_id'], meta['start_frame']) == ('01_001', 1, 0)
    assert meta['scene_key'] == '01' and meta['seg_len'] == T and len(meta['tube_box']) == 4

    model_cfg = dict(TINY_MGENET, data_preprocessor=cfg.model.data_preprocessor.to_dict())
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.guidance.set_actnorm_initialized()
    assert len(datasets['train']) == 4  # stride 6: two windows per person
    batch = pseudo_collate([datasets['train'][i] for i in (0, 1, 3)])
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5))
    log_vars = model.train_step(batch, wrapper)
    assert {'loss_mo', 'loss_app', 'loss_sep_b', 'loss_sep_s'} <= set(log_vars)
    assert all(torch.isfinite(v).all() for v in log_vars.values())
    # The test side reads frame folders with RawFrameDecode; same shapes, and the model scores.
    test_batch = pseudo_collate([datasets['test'][i] for i in (0, 1)])
    assert test_batch['inputs']['imgs'][0].shape == (3, T, 32, 32)
    outputs = model.val_step(test_batch)
    assert set(outputs[0].anomaly_scores) == {'mo', 'app'}


def test_table4_scene_split_configs_build(tmp_path: Path) -> None:
    """The UBnormal scene-experiment configs build their datasets on a UBnormal-like tree."""
    frames = _frames(10)
    names = [f'{kind}_scene_{scene}_scenario_{i}' for scene in (1, 4, 11, 21, 7)
             for kind, count in (('normal', 4), ('abnormal', 2)) for i in range(1, count + 1)]
    for i, name in enumerate(names):
        scene = name.split('_scene_')[1].split('_')[0]
        _write_video(tmp_path / f'Scene{scene}' / f'{name}.mp4', frames, 'mp4v')
        folder = ('train', 'validation', 'test')[i % 3]
        _write_pose(tmp_path / 'pose' / folder, name, {1: _person(range(10))})
        # UBnormal masks as STG-NF ships them: numpy arrays named .txt, 1 = normal
        _write_mask(tmp_path / 'gt' / f'{name}_tracks.txt', np.ones(10, dtype=np.uint8))
    moved = tmp_path / 'scene_split' / 'running_jumping_only.txt'
    moved.parent.mkdir()
    moved.write_text('abnormal_scene_1_scenario_1\nabnormal_scene_4_scenario_1\n')
    chosen = {}
    for setting in ('abcd', 'acd', 'bcd'):
        cfg = Config.fromfile(str(REPO / 'configs' / 'mgenet' / f'ubnormal_scenes_{setting}.py'))
        for subset in ('train', 'val', 'test'):
            dataset_cfg = copy.deepcopy(cfg[f'{subset}_dataloader']['dataset'])
            dataset_cfg.update(data_root=str(tmp_path), seg_len=T, pipeline=[])
            dataset_cfg['split'].update(moved_clips=str(moved))
            assert 'list_file' not in dataset_cfg['split']
            dataset = DATASETS.build(dataset_cfg)
            chosen[setting, subset] = set(dataset.metainfo['clips'])
            if subset != 'train':
                # what the runner does: the evaluator hands dataset.metainfo to the metric
                metric = METRICS.build(dict(cfg[f'{subset}_evaluator'], seg_len=T,
                                            gt_dir=str(tmp_path / 'gt')))
                metric.dataset_meta = dataset.metainfo
                assert sorted(chosen[setting, subset]) == metric._dataset_clips()
    # scene 7 is in no group; scene 4 (group B under the guessed grouping) only in abcd and bcd
    assert not any('_scene_7_' in n for clips in chosen.values() for n in clips)
    assert 'abnormal_scene_1_scenario_1' in chosen['acd', 'train']
    assert 'abnormal_scene_4_scenario_1' in chosen['bcd', 'train']
    assert not any('_scene_4_' in n for s in ('train', 'val', 'test') for n in chosen['acd', s])
    assert not any('_scene_1_' in n for s in ('train', 'val', 'test') for n in chosen['bcd', s])
