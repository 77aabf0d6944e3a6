"""tools/analysis/get_flops.py, tools/visualizations/browse_dataset.py, tools/misc/print_config.py:
--help, and each run on the demo configs (on tiny hand-made data where a dataset is needed)."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from tests.conftest import REPO, load_tool, run_tool

FLOPS = load_tool('tools/analysis/get_flops.py')
BROWSE = load_tool('tools/visualizations/browse_dataset.py')
PRINT = load_tool('tools/misc/print_config.py')
NUM_FRAMES = 30


@pytest.mark.parametrize('tool', ['tools/analysis/get_flops.py',
                                  'tools/visualizations/browse_dataset.py',
                                  'tools/misc/print_config.py'])
def test_help(tool: str, tmp_path: Path) -> None:
    proc = run_tool(str(REPO / tool), '--help', cwd=tmp_path)
    assert proc.stdout.startswith('usage:') and 'config' in proc.stdout


# ------------------------------------------------------------------ get_flops
def test_stage_counts_of_a_known_layer() -> None:
    """A linear layer 4 -> 3 on one row: 12 multiply-adds, 15 parameters."""
    linear = torch.nn.Linear(4, 3)
    rows = FLOPS.count_stages([('linear', linear, (torch.randn(1, 4), ), [linear])])
    assert rows[0]['flops'] == 12 and rows[0]['params'] == 15
    broken = FLOPS.count_stages([('broken', lambda x: x.numpy(), (torch.randn(1, 4), ), [])])
    assert 'error' in broken[0]


@pytest.mark.parametrize('config', ['configs/stgnf/stgnf_demo.py',
                                    'configs/mgenet/demo_cached.py'])
def test_get_flops_on_demo_configs(config: str, capsys) -> None:
    assert FLOPS.main([str(REPO / config)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert 'not traced' not in out
    if 'stgnf' in config:
        assert any(line.startswith('STG-NF flow') for line in lines)
        # K = 8 steps over the 18-joint graph: 616 parameters (as the official checkpoint).
        assert lines[-2].split()[-1] == '616'
    else:
        for stage in ('guidance flow f_sk', 'RGB encoder e_b', 'LSTA head f_rgb',
                      'masked pass 1 of S_app', 'masked pass 2 of S_app',
                      'addressing + BSMM read S_mm'):
            assert any(line.startswith(stage) for line in lines), stage
        # The two masked passes run the same encoder on one token grid: the same count.
        passes = [line.split()[-4:-2] for line in lines if line.startswith('masked pass')]
        assert passes[0] == passes[1]
        assert lines[-2].split()[-2:] == ['569.868', 'K']  # every parameter of the model


def test_get_flops_counts_the_cube_embedding_of_pixel_masking(capsys) -> None:
    """mask_input='pixels': each masked pass embeds the masked frames again."""
    def stage_flops(options):
        assert FLOPS.main([str(REPO / 'configs/mgenet/demo.py')] + options) == 0
        lines = capsys.readouterr().out.splitlines()
        units = dict(K=1e3, M=1e6, G=1e9)

        def flops(prefix):
            row = next(line for line in lines if line.startswith(prefix)).split()
            return float(row[-4]) * units[row[-3]]
        return flops('cube embedding'), flops('masked pass 1 of S_app')

    embed, token_pass = stage_flops([])
    _, pixel_pass = stage_flops(['--cfg-options', 'model.mask_input=pixels'])
    assert pixel_pass == pytest.approx(embed + token_pass, abs=2e3)  # printed to 4 digits


def test_get_flops_scene_stage_follows_the_bsmm_behaviour_source(capsys) -> None:
    """bsmm_behaviour='guidance': S_mm addresses f_sk (T x C_mo) in the guidance memory,
    not the P tokens of e_b in the behaviour memory."""
    def smm_flops(config):
        assert FLOPS.main([str(REPO / 'configs/mgenet' / config)]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines()
                   if line.startswith('addressing + BSMM read S_mm')).split()
        return float(row[-3]) * dict(K=1e3, M=1e6, G=1e9)[row[-2]]

    rgb = smm_flops('demo_cached_rgb-bsmm.py')
    guided = smm_flops('demo_cached.py')  # a 128-item guidance memory
    # W_g alone: 24 frames x 128 items x 36 channels of cosines; W_b alone is 192 x 128 x 96
    assert 24 * 128 * 36 <= guided < 192 * 128 * 96 < rgb


# ------------------------------------------------------------------ print_config
def test_print_config(tmp_path: Path, capsys) -> None:
    config = str(REPO / 'configs/stgnf/stgnf_hr-avenue.py')
    saved = tmp_path / 'merged.py'
    assert PRINT.main([config, '--keys', 'test_evaluator.gt_format', 'model.backbone.seg_len',
                       '--cfg-options', 'model.backbone.seg_len=12', '--save-path',
                       str(saved)]) == 0
    out = capsys.readouterr().out
    assert "test_evaluator.gt_format = 'avenue'" in out and 'model.backbone.seg_len = 12' in out
    merged = Config.fromfile(str(saved))
    assert merged.model.backbone.seg_len == 12
    assert merged.test_evaluator.frame_selection.runs['16'] == [[1, 728], [0, 12]]
    assert PRINT.main([config]) == 0
    assert capsys.readouterr().out.startswith('Config:\n')
    with pytest.raises(KeyError, match="the config has no 'model.neck'"):
        PRINT.main([config, '--keys', 'model.neck.type'])
    with pytest.raises(ValueError, match="no top-level key 'modle'"):
        PRINT.main([config, '--cfg-options', 'modle.backbone.seg_len=12'])
    with pytest.raises(FileNotFoundError, match='config not found'):
        PRINT.main([str(tmp_path / 'none.py')])


# ------------------------------------------------------------------ browse_dataset
def test_fit_to_cell() -> None:
    # Box 2 x 4 into a 100-px cell with a 10-px margin: scale 80 / 4 = 20, x centred.
    points = np.array([[1.0, 1.0], [3.0, 5.0]])
    np.testing.assert_allclose(BROWSE.fit_to_cell(points, cell=100, margin=10),
                               [[30.0, 10.0], [70.0, 90.0]])


def _frame_colour(frame: int):
    return (8 * frame, 100, 230 - 6 * frame)  # RGB, different in every frame


def _write_tiny_split(root: Path) -> None:
    """One clip of 30 frames, each of one colour (320 x 240), one person walking."""
    frames = root / 'testing' / 'frames' / '01_0001'
    frames.mkdir(parents=True)
    for frame in range(NUM_FRAMES):
        image = np.empty((240, 320, 3), dtype=np.uint8)
        image[:] = _frame_colour(frame)[::-1]  # BGR on disk
        cv2.imwrite(str(frames / f'{frame:03d}.jpg'), image, [cv2.IMWRITE_JPEG_QUALITY, 100])
    joints = np.arange(17)
    track = {}
    for frame in range(NUM_FRAMES):
        xy = np.stack([120 + 2 * frame + 4 * np.sin(joints + frame), 40 + 9 * joints], axis=1)
        keypoints = np.concatenate([xy, np.full((17, 1), 0.9)], axis=1)
        track[f'{frame:03d}'] = dict(keypoints=keypoints.round(2).ravel().tolist(), scores=0.9)
    (root / 'pose' / 'test').mkdir(parents=True)
    (root / 'pose' / 'test' / '01_0001_alphapose_tracked_person.json').write_text(
        json.dumps({'1': track}))


def test_browse_mgenet_demo_windows(tmp_path: Path, capsys) -> None:
    _write_tiny_split(tmp_path)
    out = tmp_path / 'browse'
    assert BROWSE.main([str(REPO / 'configs/mgenet/demo.py'), '--split', 'test', '--indices',
                        '0', '5', '--output-dir', str(out), '--zoom', '2', '--cfg-options',
                        f'test_dataloader.dataset.data_root={tmp_path}']) == 0
    assert 'window 5: clip 01_0001, person 1, frame 5' in capsys.readouterr().out
    pose = cv2.imread(str(out / '000005_01_0001_p1_f5_pose.png'))
    tube = cv2.imread(str(out / '000005_01_0001_p1_f5_tube.png'))
    scene = cv2.imread(str(out / '000005_01_0001_p1_f5_scene.png'))
    assert pose.shape == (3 * BROWSE.CELL, 8 * BROWSE.CELL, 3)
    assert (pose != 255).any()  # skeletons drawn
    # The demo's 32 x 32 tube, zoomed 2x, 8 frames a row, 3 rows for T = 24.
    assert tube.shape == (3 * 64, 8 * 64, 3) and scene.shape == (224, 224, 3)
    for index in range(24):
        row, column = divmod(index, 8)
        cell = tube[row * 64:(row + 1) * 64, column * 64:(column + 1) * 64]
        # Frame 5 + index of the clip, as the tube shows it (BGR as written).
        expected = np.array(_frame_colour(5 + index)[::-1], dtype=float)
        np.testing.assert_allclose(cell.reshape(-1, 3).mean(axis=0), expected, atol=4)


def test_browse_stgnf_demo_and_bad_indices(tmp_path: Path) -> None:
    _write_tiny_split(tmp_path)
    out = tmp_path / 'browse'
    args = [str(REPO / 'configs/stgnf/stgnf_demo.py'), '--split', 'test', '--output-dir',
            str(out), '--cfg-options', f'test_dataloader.dataset.data_root={tmp_path}']
    assert BROWSE.main(args + ['--num-windows', '2']) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ['000000_01_0001_p1_f0_pose.png', '000005_01_0001_p1_f5_pose.png']
    with pytest.raises(ValueError, match=r'--indices \[6\] outside the 6 windows'):
        BROWSE.main(args + ['--indices', '6'])
