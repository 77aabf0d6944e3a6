"""tools/analysis/benchmark_stgnf.py: the pose set, the children's reports and the table."""
import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_tool


@pytest.fixture(scope='module')
def bench():
    return load_tool('tools/analysis/benchmark_stgnf.py')


def small_gt(folder: Path) -> Path:
    folder.mkdir(parents=True)
    np.save(folder / '01_0001.npy', np.zeros(40, dtype=np.int64))
    np.save(folder / '02_0003.npy', np.r_[np.zeros(20), np.ones(10)].astype(np.int64))
    return folder


def fake_checkout(root: Path) -> Path:
    """The official code's interface, nothing else: train_eval.py builds the data through
    dataset.get_dataset_and_loader and scores through utils.scoring_utils.score_dataset."""
    (root / 'utils').mkdir(parents=True)
    (root / 'utils' / '__init__.py').write_text('')
    (root / 'dataset.py').write_text(textwrap.dedent('''
        import time
        def get_dataset_and_loader(args):
            time.sleep(0.2)
            return {'test': list(range(5))}
    '''))
    (root / 'utils' / 'scoring_utils.py').write_text(textwrap.dedent('''
        import numpy as np
        def score_dataset(scores):
            return 0.625, np.asarray(scores, dtype=float)
    '''))
    (root / 'train_eval.py').write_text(textwrap.dedent('''
        import sys
        from dataset import get_dataset_and_loader
        from utils.scoring_utils import score_dataset
        assert sys.argv[1:3] == ['--dataset', 'ShanghaiTech'], sys.argv
        data = get_dataset_and_loader(None)
        auc, _ = score_dataset(data['test'])
        print('Done with', auc * 100)
    '''))
    return root


def test_layout_is_the_official_one(bench, tmp_path):
    gt_dir = small_gt(tmp_path / 'gt')
    layout = bench.make_layout(str(tmp_path / 'race'), str(gt_dir), persons=2, seed=0)
    pose_dir = Path(layout['pose_dir'])
    assert pose_dir == tmp_path / 'race' / 'data' / 'ShanghaiTech' / 'pose' / 'test'
    assert sorted(p.name for p in pose_dir.iterdir()) == [
        '01_0001_alphapose_tracked_person.json', '02_0003_alphapose_tracked_person.json']
    masks = Path(layout['gt_dir'])
    assert masks == tmp_path / 'race' / 'data' / 'ShanghaiTech' / 'gt' / 'test_frame_mask'
    np.testing.assert_array_equal(np.load(masks / '02_0003.npy'), np.load(gt_dir / '02_0003.npy'))
    poses = json.loads((pose_dir / '02_0003_alphapose_tracked_person.json').read_text())
    assert sorted(poses) == ['1', '2']
    frames = [int(k) for k in poses['1']]
    # 1-based, zero-padded to 3 digits as in STG-NF's ShanghaiTech files, inside the clip
    assert all(len(k) == 3 for k in poses['1']) and 1 <= min(frames) and max(frames) <= 30
    assert len(poses['1']['%03d' % frames[0]]['keypoints']) == 51


def test_reference_child_reports_its_evaluation(bench, tmp_path):
    checkout = fake_checkout(tmp_path / 'STG-NF')
    command = bench.reference_command(str(checkout), 'ckpt.tar', workers=0, device='cpu')
    assert command[-6:] == ['--checkpoint', 'ckpt.tar', '--device', 'cpu', '--num_workers', '0']
    command[command.index('--dataset') - 1:] = ['--', '--dataset', 'ShanghaiTech']
    result = bench.run_child(command, str(tmp_path), dict(os.environ), str(tmp_path / 'log'))
    assert result['auc'] == 0.625
    assert 0.2 <= result['evaluation_s'] < result['wall_s']  # dataset build to AUC
    assert result['peak_rss_mb'] > 10 and result['threads'] >= 1
    # measured inside the child before it exits, so never above what wait4 saw
    assert 10 < result['peak_rss_before_exit_mb'] <= result['peak_rss_mb']
    assert 'Done with 62.5' in (tmp_path / 'log').read_text()


def test_failed_child_names_its_log(bench, tmp_path):
    checkout = fake_checkout(tmp_path / 'STG-NF')
    command = bench.reference_command(str(checkout), 'ckpt.tar', workers=0, device='cpu')
    command[command.index('--dataset') - 1:] = ['--', '--dataset', 'UBnormal']
    with pytest.raises(RuntimeError, match=r'failed \(exit 1\); log .*child.log'):
        bench.run_child(command, str(tmp_path), dict(os.environ), str(tmp_path / 'child.log'))


def test_table(bench):
    ours = dict(wall_s=10.0, evaluation_s=4.0, peak_rss_mb=900.0, peak_rss_before_exit_mb=800.0,
                auc=0.7, threads=1)
    official = dict(wall_s=50.0, evaluation_s=48.0, peak_rss_mb=3600.0,
                    peak_rss_before_exit_mb=3400.0, auc=0.7000001, threads=1)
    table = bench.format_table(ours, official).splitlines()
    assert table[1].endswith('5.00x') and table[2].endswith('12.00x')
    assert table[3].endswith('4.00x') and table[4].endswith('4.25x')
    assert '0.700000000' in table[5] and '800 MB' in table[4]
    assert table[-1] == '|AUC difference| 1.00e-07'
    alone = bench.format_table(ours, None).splitlines()
    assert 'official' not in alone[0] and len(alone) == 7 and alone[1].endswith('10.00 s')


def test_bad_arguments(bench, tmp_path):
    with pytest.raises(SystemExit, match='not a checkout of the official STG-NF code'):
        bench.parse_args(['--reference', str(tmp_path)])
    with pytest.raises(SystemExit, match='checkpoint not found'):
        bench.parse_args(['--checkpoint', str(tmp_path / 'gone.tar')])
    with pytest.raises(SystemExit, match='--persons must be at least 1'):
        bench.parse_args(['--persons', '0'])
    (tmp_path / 'taken').mkdir()
    with pytest.raises(SystemExit, match=r'--keep .*taken already exists'):
        bench.parse_args(['--keep', str(tmp_path / 'taken')])


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get('STGNF_REFERENCE'),
                    reason='set STGNF_REFERENCE to a checkout of the official STG-NF code')
def test_race_against_the_official_code(bench, tmp_path, capsys):
    gt_dir = small_gt(tmp_path / 'gt')
    bench.main(['--reference', os.environ['STGNF_REFERENCE'], '--gt-dir', str(gt_dir),
                '--reference-workers', '0', '--keep', str(tmp_path / 'race')])
    race = json.loads((tmp_path / 'race' / 'race.json').read_text())
    assert abs(race['ours']['auc'] - race['official']['auc']) < 1e-6
    assert 'official / ours' in capsys.readouterr().out
