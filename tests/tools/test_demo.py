"""The demo tool: seed folders, arguments, reading a test run's frame scores for the bootstrap,
and the pipeline end to end on the tiny synthetic preset (1 epoch each). Its tables:
tests/evaluation/test_seed_report.py."""
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, load_tool, run_tool
from tests.evaluation.seed_report_inputs import bootstrap_arrays

demo = load_tool('tools/demo.py')
refit_tool = load_tool('tools/misc/refit_final_passes.py')


def test_seed_paths() -> None:
    assert demo.seed_paths('/a/data', '/a/work', 0) == ('/a/data', '/a/work')
    assert demo.seed_paths('/a/data/', '/a/work', 2) == ('/a/data_seed2', '/a/work_seed2')
    assert demo.seed_paths('data', 'w', 11) == ('data_seed11', 'w_seed11')


def test_parse_args(capsys) -> None:
    args = demo.parse_args(['--seeds', '0', '1', '2'])
    assert args.seeds == [0, 1, 2] and args.bootstrap_resamples == 1000
    assert demo.parse_args([]).seeds is None and demo.parse_args([]).seed == 0
    for bad in (['--seed', '1', '--seeds', '0', '1'], ['--seeds', '1', '1']):
        with pytest.raises(SystemExit):
            demo.parse_args(bad)
    with pytest.raises(SystemExit):
        demo.parse_args(['--help'])
    assert '<data>_seed<S>' in ' '.join(capsys.readouterr().out.split())


def test_load_bootstrap_inputs(tmp_path: Path) -> None:
    masks, kinds, final, alone = bootstrap_arrays()
    for sub, arrays in (('test_frame_mask', masks), ('test_frame_kinds', kinds)):
        (tmp_path / 'data' / 'gt' / sub).mkdir(parents=True)
        for clip, array in arrays.items():
            np.save(tmp_path / 'data' / 'gt' / sub / f'{clip}.npy', array)
    for run, arrays in (('mgenet', final), ('stgnf', final)):
        (tmp_path / run).mkdir()
        np.savez(tmp_path / run / 'vad_frame_scores.npz', **arrays)
    np.savez(tmp_path / 'mgenet' / 'vad_component_frame_scores.npz', **alone)
    scores, loaded_masks, loaded_kinds = demo.load_bootstrap_inputs(
        str(tmp_path / 'mgenet'), str(tmp_path / 'stgnf'), str(tmp_path / 'data'))
    assert list(scores) == ['MGENet (eq. 16)', 'S_mo alone', 'S_mm alone', 'STG-NF alone']
    np.testing.assert_array_equal(scores['S_mm alone']['01_0002'], alone['mm/01_0002'])
    np.testing.assert_array_equal(loaded_kinds['01_0001'], kinds['01_0001'])
    assert sorted(loaded_masks) == sorted(masks) and sorted(loaded_kinds) == sorted(kinds)
    for clip in masks:  # what tests/evaluation/test_seed_report.py bootstraps in memory
        np.testing.assert_array_equal(loaded_masks[clip], masks[clip])


@pytest.mark.slow
def test_variant_names() -> None:
    assert demo.variant_name('configs/mgenet/demo_cached.py') == 'mgenet'
    assert demo.variant_name('./configs/mgenet/demo_cached.py') == 'mgenet'
    assert demo.variant_name('configs/mgenet/demo_cached_rgb-bsmm.py') == 'demo_cached_rgb-bsmm'
    assert demo.variant_name('configs/mgenet/demo_cached_rgb-bsmm.py', 'g') == 'g'
    assert demo.variant_file('mgenet') == 'vad_results.json'
    assert demo.variant_file('g') == 'vad_results_g.json'
    for bad in (['--variant', 'stgnf'], ['--variant', 'a/b'],
                ['--mgenet-config', 'configs/mgenet/no_such.py']):
        with pytest.raises(SystemExit):
            demo.parse_args(bad)


def test_report_only_reads_finished_seeds(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        demo.parse_args(['--report-only'])  # needs --seeds
    with pytest.raises(SystemExit, match='seed 1 has no finished run'):
        demo.load_summary(str(tmp_path / 'vad_results.json'), 1)
    (tmp_path / 'vad_results.json').write_text(json.dumps(dict(seed=2, table=[])))
    with pytest.raises(SystemExit, match='the run of seed 2, not of seed 1'):
        demo.load_summary(str(tmp_path / 'vad_results.json'), 1)
    assert demo.load_summary(str(tmp_path / 'vad_results.json'), 2)['seed'] == 2


def test_tiny_demo(tmp_path: Path, capsys) -> None:
    proc = run_tool(str(REPO / 'tools' / 'demo.py'), '--preset', 'tiny', '--data',
                    str(tmp_path / 'data'), '--work-dir', str(tmp_path / 'work'),
                    '--stgnf-epochs', '1', '--mgenet-epochs', '1', cwd=tmp_path, timeout=600)
    assert 'MGENet (eq. 16)' in proc.stdout and 'STG-NF alone' in proc.stdout
    summary = json.loads((tmp_path / 'work' / 'vad_results.json').read_text())
    names = [row['name'] for row in summary['table']]
    assert names[0] == 'MGENet (eq. 16)' and names[-1] == 'STG-NF alone'
    assert {'S_mo alone', 'S_app alone', 'S_mm alone'} <= set(names)
    for row in summary['table']:
        assert 0.0 <= row['micro_auc'] <= 1.0
    mgenet = summary['mgenet']['metrics']
    assert mgenet['num_frames'] > 0 and summary['mgenet']['missing_components'] == []
    for name in ('mgenet', 'stgnf'):
        for png in ('score_curves.png', 'score_histogram.png'):
            assert (tmp_path / 'work' / 'plots' / name / png).stat().st_size > 10_000

    # One test clip through the video-scoring API, with the test run's calibration: the same
    # frame scores as tools/test.py (tokens recomputed from the frames instead of the fp16
    # cache; the frozen stages rebuilt from the cache's seed).
    from mgenet_mm.apis import init_model, score_video
    run = Path(summary['mgenet']['run_dir'])
    reference = np.load(run / 'vad_frame_scores.npz')
    clip = sorted(reference.files)[0]
    checkpoint = next((tmp_path / 'work' / 'mgenet').glob('epoch_*.pth'))
    model = init_model(str(REPO / 'configs' / 'mgenet' / 'demo.py'), str(checkpoint),
                       cfg_options={'model.guidance.init_cfg': None,
                                    'model.bsmm.num_items': demo.TINY_BSMM_ITEMS})
    data = tmp_path / 'data'
    scores = score_video(model, str(data / 'testing' / 'frames' / clip),
                         str(data / 'pose' / 'test' / f'{clip}_alphapose_tracked_person.json'),
                         calibration=str(run / 'vad_results.json'), show_progress=False)
    # The calibrated fusion keeps the training windows' scale (here hundreds, not min-max's
    # [0, 1]), so the float16-cache vs recomputed-token difference is bounded relatively.
    np.testing.assert_allclose(scores.frame_scores, reference[clip], rtol=1e-5, atol=1e-4)

    # Another MGENet config on the same benchmark, STG-NF and cache: its own folders, the
    # default run's left as they were.
    proc = run_tool(str(REPO / 'tools' / 'demo.py'), '--preset', 'tiny', '--data',
                    str(tmp_path / 'data'), '--work-dir', str(tmp_path / 'work'),
                    '--stgnf-epochs', '1', '--mgenet-epochs', '1', '--mgenet-config',
                    'configs/mgenet/demo_cached_rgb-bsmm.py', '--variant', 'rgb',
                    cwd=tmp_path, timeout=600)
    assert '2 train STG-NF' not in proc.stdout and '5 train rgb' in proc.stdout
    rgb = json.loads((tmp_path / 'work' / 'vad_results_rgb.json').read_text())
    assert rgb['variant'] == 'rgb' and rgb['mgenet']['missing_components'] == []
    assert rgb['mgenet']['run_dir'].startswith(str(tmp_path / 'work' / 'rgb_test'))
    assert rgb['mgenet']['score_weights'] == dict(mo=1.0, app=0.25, mm=0.1)
    assert summary['mgenet']['score_weights'] == dict(mo=1.0, app=0.1, mm=0.1)
    assert (tmp_path / 'work' / 'rgb' / 'epoch_1.pth').is_file()
    assert (tmp_path / 'work' / 'plots' / 'rgb' / 'score_curves.png').is_file()
    assert json.loads((tmp_path / 'work' / 'vad_results.json').read_text()) == summary

    # tools/misc/refit_final_passes.py: the after-training passes run again under the run's own
    # config give back the same checkpoint (BSMM, gap whitening, calibration, bit for bit); under
    # another config they fit the parts it adds, and a checkpoint that lacks trained parts of
    # the config is refused.
    import torch
    default_dir, rgb_dir = tmp_path / 'work' / 'mgenet', tmp_path / 'work' / 'rgb'
    refit = tmp_path / 'refit.pth'
    assert refit_tool.main([str(default_dir / 'demo_cached.py'), str(checkpoint), '--out',
                            str(refit), '--seed', '0']) == 0
    original = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    again = torch.load(refit, map_location='cpu', weights_only=False)
    assert again['meta']['refit']['passes'] == ['bsmm', 'motion_whitening', 'score_calibration']
    assert again['state_dict'].keys() == original.keys()
    assert all(torch.equal(again['state_dict'][k], v) for k, v in original.items())
    assert int(original['motion_whitening.num_frames']) > 0
    rgb_checkpoint = rgb_dir / 'epoch_1.pth'
    assert refit_tool.main([str(rgb_dir / 'demo_cached_rgb-bsmm.py'), str(rgb_checkpoint),
                            '--out', str(refit), '--cfg-options',
                            'model.motion_whitening._delete_=True',
                            'model.motion_whitening.type=GapWhitening']) == 0
    rgb = torch.load(rgb_checkpoint, map_location='cpu', weights_only=False)['state_dict']
    whitened = torch.load(refit, map_location='cpu', weights_only=False)['state_dict']
    assert 'motion_whitening.mean' not in rgb and int(whitened['motion_whitening.num_frames']) > 0
    assert all(torch.equal(whitened[k], v) for k, v in rgb.items()
               if not k.startswith(('bsmm.', 'score_calibration.')))
    assert refit_tool.main([str(default_dir / 'demo_cached.py'), str(rgb_checkpoint),
                            '--out', str(refit)]) == 1
    assert 'guidance_memory' in capsys.readouterr().err
