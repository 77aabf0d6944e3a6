"""Bad inputs of the inference API: errors that name the file or argument."""
import json

import pytest

from mgenet_mm.apis.inference import Calibration, InferenceError, load_pose_file, score_video


def test_calibration_must_be_an_object(tmp_path):
    path = tmp_path / 'vad_results.json'
    path.write_text('[1, 2, 3]')
    with pytest.raises(InferenceError, match=r'vad_results.json: the top level is a JSON array'):
        Calibration.from_results(str(path))
    with pytest.raises(InferenceError, match='top level is a JSON string'):
        Calibration.from_results(_write(tmp_path / 'text.json', '"text"'))
    with pytest.raises(InferenceError, match='calibration dict: the top level is a JSON array'):
        Calibration.from_results([{'fill_value': 0.0}])


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_load_pose_file(tmp_path):
    good = {'1': {'0000': {'keypoints': [0.0] * 51, 'scores': 0.9}}}
    assert load_pose_file(_write(tmp_path / 'good.json', json.dumps(good))) == good
    with pytest.raises(InferenceError, match=r'cut.json is not valid JSON .* line 1, column'):
        load_pose_file(_write(tmp_path / 'cut.json', json.dumps(good)[:20]))
    with pytest.raises(InferenceError, match=r'list.json: the top level is a JSON array'):
        load_pose_file(_write(tmp_path / 'list.json', '[]'))
    with pytest.raises(FileNotFoundError, match='gone.json'):
        load_pose_file(str(tmp_path / 'gone.json'))


@pytest.mark.parametrize('batch_size', [0, -1, 1.5, True])
def test_batch_size(batch_size):
    # checked before the model is looked at
    with pytest.raises(InferenceError, match=f'batch_size must be .* got {batch_size!r}'):
        score_video(None, None, {}, batch_size=batch_size)


def test_misspelt_cfg_option_is_refused_by_init_model():
    from pathlib import Path

    from mgenet_mm.apis import init_model
    config = str(Path(__file__).resolve().parents[2] / 'configs' / 'stgnf' / 'stgnf_demo.py')
    with pytest.raises(ValueError, match="did you mean 'test_evaluator'"):
        init_model(config, None, cfg_options={'test_evaluater.seg_len': 24})
