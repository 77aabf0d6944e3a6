"""tools/data/make_synthetic.py: generates, checks, keeps an identical benchmark, refuses others."""
import json

import cv2
import pytest

from mgenet_mm.synthetic import check_layout, generate_benchmark, preset_config
from tests.conftest import REPO, load_tool, run_tool
from tests.synthetic.helpers import file_hashes


def _load_tool():
    return load_tool('tools/data/make_synthetic.py')


@pytest.mark.slow
def test_cli_generates_checks_and_keeps(tmp_path, capsys) -> None:
    out = tmp_path / 'syn'
    tool = str(REPO / 'tools' / 'data' / 'make_synthetic.py')
    args = ('--out', str(out), '--preset', 'tiny', '--test-clips', '1', '--train-clips', '1',
            '--frames', '48', '--scenes', '3', '--quiet')
    proc = run_tool(tool, *args, '--montage', str(tmp_path / 'montage.png'), cwd=tmp_path)
    assert 'layout OK' in proc.stdout and 'windows_T24_stride6' in proc.stdout
    assert cv2.imread(str(tmp_path / 'montage.png')) is not None
    meta = json.loads((out / 'meta.json').read_text())
    assert all(c['frames'] == 48 for c in meta['test'].values())
    before = file_hashes(out)
    # The same benchmark again: kept as it is (in-process, to spare a second package import).
    main = _load_tool().main
    assert main(list(args)) == 0
    assert 'already holds this benchmark' in capsys.readouterr().out
    assert file_hashes(out) == before
    assert main(['--out', str(out), '--check']) == 0
    assert 'layout OK' in capsys.readouterr().out
    # Another configuration is refused unless overwriting, which leaves no stale files.
    assert main(['--out', str(out), '--preset', 'tiny', '--frames', '30', '--scenes', '2',
                 '--quiet']) == 2
    assert 'overwrite' in capsys.readouterr().err
    smaller = preset_config('tiny', frames=(30, 30), scenes=2)
    with pytest.raises(FileExistsError):
        generate_benchmark(smaller, str(out), log=None)
    generate_benchmark(smaller, str(out), log=None, overwrite=True)
    assert check_layout(str(out)) == []
    assert len(json.loads((out / 'meta.json').read_text())['test']) == 2
    (out / 'gt' / 'test_frame_mask' / '01_0001.npy').unlink()
    assert any('missing gt/test_frame_mask/01_0001.npy' in p for p in check_layout(str(out)))
    assert main(['--out', str(out), '--check']) == 1
    # --update replaces a different (here broken) benchmark and keeps an identical valid one.
    assert main(list(args) + ['--update']) == 0
    assert file_hashes(out) == before
    assert main(list(args) + ['--update']) == 0
    assert 'already holds this benchmark' in capsys.readouterr().out
    # ... and a benchmark of an older generator version counts as different.
    meta = json.loads((out / 'meta.json').read_text())
    (out / 'meta.json').write_text(json.dumps(dict(meta, version=1)))
    assert main(list(args) + ['--update']) == 0
    assert 'already holds' not in capsys.readouterr().out
    assert file_hashes(out) == before
