"""The dataset configs of Avenue, HR-Avenue, UBnormal validation, HR-UBnormal and the peers' CSV
trajectories each build their test dataset and metric from a tiny fixture in the published
layout, and the metric evaluates the frames the subset defines."""
import json
import shutil
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mgenet_mm  # noqa: F401
from mmaction.registry import DATASETS, METRICS
from tests.evaluation.functional.test_gt_formats import write_avenue_mat

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'stgnf'


def _rebase(value: Any, old: str, new: str) -> Any:
    """Every string of a config (nested dicts/lists) starting with ``old``, moved to ``new``."""
    if isinstance(value, str):
        return new + value[len(old):] if value.startswith(old) else value
    if isinstance(value, dict):
        return {k: _rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_rebase(v, old, new) for v in value)
    return value


def _build(config: str, old_root: str, new_root: Path):
    """The config's test dataset and test metric, with its data root moved to the fixture."""
    init_default_scope('mmaction')
    cfg = Config.fromfile(str(CONFIGS / config))
    dataset_cfg = _rebase(cfg.test_dataloader.dataset.to_dict(), old_root, str(new_root))
    metric_cfg = _rebase(cfg.test_evaluator.to_dict(), old_root, str(new_root))
    metric_cfg['out_dir'] = str(new_root / 'out')
    return DATASETS.build(dataset_cfg), METRICS.build(metric_cfg)


def _evaluate(dataset, metric) -> Dict[str, float]:
    """The metric over every window of the dataset, with arbitrary but fixed scores."""
    rng = np.random.default_rng(0)
    metric.dataset_meta = dataset.metainfo
    metric.process(None, [dict(clip_name=d['clip_name'], person_id=d['person_id'],
                               start_frame=d['start_frame'],
                               anomaly_scores=dict(nll=float(rng.normal())))
                          for d in (dataset.get_data_info(i) for i in range(len(dataset)))])
    return metric.compute_metrics(metric.results)


def _walker(num_frames: int, x0: float = 100.0) -> np.ndarray:
    """(F, 17, 2) pixel keypoints of a person walking right, limbs swinging (no degenerate
    window)."""
    frames = np.arange(num_frames, dtype=np.float64)[:, None]  # (F, 1)
    joints = np.arange(17, dtype=np.float64)[None]  # (1, 17)
    x = x0 + 2.0 * frames + 3.0 * np.sin(joints + 0.3 * frames)
    y = 50.0 + 8.0 * joints + 2.0 * np.cos(joints + 0.2 * frames)
    return np.stack([x, y], axis=-1)  # (F, 17, 2)


def _write_pose_json(path: Path, tracks: Dict[int, np.ndarray]) -> None:
    """STG-NF layout: {person: {frame: {keypoints: [x, y, c] * 17, scores}}}."""
    content = {}
    for person, xy in tracks.items():
        with_conf = np.concatenate([xy, np.full(xy.shape[:2] + (1, ), 0.9)], axis=-1)
        content[str(person)] = {f'{frame:04d}': dict(keypoints=with_conf[frame].round(3).ravel()
                                                     .tolist(), scores=0.9)
                                for frame in range(len(xy))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def _write_csv(path: Path, xy: np.ndarray, first_frame: int) -> None:
    """The peers' layout: frame, x1, y1, ..., x17, y17 per row, as %.4f."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.arange(first_frame, first_frame + len(xy))[:, None]
    np.savetxt(path, np.hstack([frames, xy.reshape(len(xy), -1)]), fmt='%.4f', delimiter=',')


def _abnormal(num_frames: int, start: int, stop: int) -> np.ndarray:
    mask = np.zeros(num_frames, dtype=np.uint8)
    mask[start:stop] = 1
    return mask


# CUHK Avenue test videos 04 (32 frames) and 16 (740 frames, 12 of them not human-related).
AVENUE = {'04': 32, '16': 740}


def _avenue_fixture(root: Path) -> None:
    for clip, length in AVENUE.items():
        abnormal = set(range(length // 2, length // 2 + 10))
        write_avenue_mat(root / 'ground_truth_demo' / 'testing_label_mask' /
                         f'{int(clip)}_label.mat', abnormal, length, shape=(2, 3))
        _write_pose_json(root / 'pose' / 'test' / f'{clip}_alphapose_tracked_person.json',
                         {1: _walker(length)})


def test_avenue(tmp_path: Path) -> None:
    _avenue_fixture(tmp_path)
    dataset, metric = _build('stgnf_avenue.py', 'data/Avenue', tmp_path)
    # One person per clip, every frame, T = 24, stride 1: ceil(F - 24) windows.
    assert len(dataset) == (32 - 24) + (740 - 24)
    assert dataset.metainfo['clips'] == ('04', '16')
    result = _evaluate(dataset, metric)
    assert result['num_clips'] == 2 and result['num_frames'] == 32 + 740


def test_hr_avenue_drops_the_non_human_frames(tmp_path: Path) -> None:
    _avenue_fixture(tmp_path)
    dataset, metric = _build('stgnf_hr-avenue.py', 'data/Avenue', tmp_path)
    result = _evaluate(dataset, metric)
    # Video 16 loses its last 12 frames (MoCoDAD's selection); video 04 keeps all of them.
    assert result['num_frames'] == 32 + 740 - 12


def _npy_tracks(folder: Path) -> List[str]:
    """Videos whose ``<video>_tracks.txt`` in the fixture is STG-NF's numpy frame mask (the
    folder also holds UBnormal's own object-track text files)."""
    return sorted(p.name[:-len('_tracks.txt')] for p in folder.glob('*_tracks.txt')
                  if p.read_bytes()[:6] == b'\x93NUMPY')


def test_ubnormal_validation(tmp_path: Path, fixtures_dir: Path) -> None:
    """The validation config reads pose/validation and evaluates exactly its clips, though the
    GT folder holds the masks of other videos too (real STG-NF-format masks)."""
    clip, other = _npy_tracks(fixtures_dir / 'ubnormal_gt')[:2]
    (tmp_path / 'gt').mkdir()
    for name in (clip, other):
        shutil.copy(fixtures_dir / 'ubnormal_gt' / f'{name}_tracks.txt', tmp_path / 'gt')
    length = len(np.load(tmp_path / 'gt' / f'{clip}_tracks.txt'))
    _write_pose_json(tmp_path / 'pose' / 'validation' / f'{clip}_alphapose_tracked_person.json',
                     {0: _walker(length), 3: _walker(length, x0=400.0)})
    _write_pose_json(tmp_path / 'pose' / 'test' / f'{other}_alphapose_tracked_person.json',
                     {0: _walker(40)})
    dataset, metric = _build('stgnf_ubnormal_val.py', 'data/UBnormal', tmp_path)
    assert dataset.metainfo['clips'] == (clip, )
    assert len(dataset) == 2 * (length - 16)
    result = _evaluate(dataset, metric)
    assert result['num_clips'] == 1 and result['num_frames'] == length


def _mocodad_ubnormal_fixture(root: Path) -> List[str]:
    """MoCoDAD's UBnormal: <scene>-<clip>/<person>.csv counting frames from 1, masks by clip,
    HR boolean masks for some clips."""
    lengths = {'02_0001': 60, '05_0003': 40}
    for clip, length in lengths.items():
        folder = root / 'testing' / 'trajectories' / clip.replace('_', '-')
        _write_csv(folder / '00001.csv', _walker(length), first_frame=1)
        _write_csv(folder / '00002.csv', _walker(length - 10, x0=300.0), first_frame=1)
        mask_dir = root / 'testing' / 'test_frame_mask'
        mask_dir.mkdir(parents=True, exist_ok=True)
        np.save(mask_dir / f'{clip}.npy', _abnormal(length, 20, 30))
    hr = root / 'hr_bool_masks' / 'testing' / 'test_frame_mask'
    hr.mkdir(parents=True)
    keep = np.ones(60, dtype=bool)
    keep[40:55] = False
    np.save(hr / '02_0001.npy', keep)
    return sorted(lengths)


def test_ubnormal_csv_trajectories(tmp_path: Path) -> None:
    clips = _mocodad_ubnormal_fixture(tmp_path)
    dataset, metric = _build('stgnf_ubnormal_csv.py', 'data/UBnormal_MoCoDAD', tmp_path)
    assert dataset.metainfo['clips'] == tuple(clips)
    # Persons of 60/50 and 40/30 frames, T = 16: F - 16 windows each.
    assert len(dataset) == (44 + 34) + (24 + 14)
    first = dataset.get_data_info(0)
    assert first['clip_name'] == '02_0001' and first['start_frame'] == 0  # file frame 1
    result = _evaluate(dataset, metric)
    assert result['num_frames'] == 100


def test_hr_ubnormal_drops_the_non_human_frames(tmp_path: Path) -> None:
    _mocodad_ubnormal_fixture(tmp_path)
    dataset, metric = _build('stgnf_hr-ubnormal.py', 'data/UBnormal_MoCoDAD', tmp_path)
    result = _evaluate(dataset, metric)
    assert result['num_frames'] == 100 - 15  # clip 05_0003 has no HR mask: all frames kept


def test_hr_shanghaitech_csv_trajectories(tmp_path: Path, fixtures_dir: Path) -> None:
    """MPED-RNN/TrajREC's HR-ShanghaiTech: camera/video/person.csv, masks by camera."""
    real_mask = np.load(fixtures_dir / 'shanghaitech_gt' / 'test_frame_mask' / '01_0014.npy')
    length = len(real_mask)
    _write_csv(tmp_path / 'testing' / 'trajectories' / '01' / '0014' / '0001.csv',
               _walker(length), first_frame=0)
    (tmp_path / 'testing' / 'frame_level_masks' / '01').mkdir(parents=True)
    np.save(tmp_path / 'testing' / 'frame_level_masks' / '01' / '01_0014.npy', real_mask)
    _write_csv(tmp_path / 'training' / 'trajectories' / '00' / '01_001' / '0001.csv',
               _walker(80), first_frame=0)
    dataset, metric = _build('stgnf_sht-hr_csv.py', 'data/HR-ShanghaiTech', tmp_path)
    assert dataset.metainfo['clips'] == ('01_0014', )
    assert len(dataset) == length - 24
    assert _evaluate(dataset, metric)['num_frames'] == length
    init_default_scope('mmaction')
    cfg = Config.fromfile(str(CONFIGS / 'stgnf_sht-hr_csv.py'))
    train = DATASETS.build(_rebase(cfg.train_dataloader.dataset.to_dict(),
                                   'data/HR-ShanghaiTech', str(tmp_path)))
    # Training: folder 00/01_001 keeps its name; 80 frames, stride 6: ceil(56 / 6) windows.
    assert train.metainfo['clips'] == ('01_001', ) and len(train) == 10
