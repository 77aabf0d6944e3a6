"""tools/analysis/benchmark.py --quick: every figure of the report is printed, and positive."""
import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run_tool

NUMBER = r'([0-9]+(?:\.[0-9]+)?)'
WORKLOAD_FIGURES = {
    'data on the fly': rf'data +on the fly .*? {NUMBER} windows/s',
    'data from the cache': rf'data +feature cache read .*? {NUMBER} windows/s',
    'train cached': rf'train +cached features +{NUMBER} windows/s',
    'train on the fly': rf'train +on the fly .*? {NUMBER} windows/s',
    'inference cached, windows': rf'inference +cached features +{NUMBER} windows/s',
    'inference cached, frames': rf'inference +cached features .*= {NUMBER} frames/s',
    'inference on the fly, windows': rf'inference +on the fly +{NUMBER} windows/s',
    'inference on the fly, frames': rf'inference +on the fly .*= {NUMBER} frames/s',
    'ViT GFLOP per window': rf'ViT encoder forward: {NUMBER} GFLOP per window',
    'ViT GFLOP/s': rf'-> {NUMBER} GFLOP/s = {NUMBER} % of the matmul peak',
    'guidance per window': rf'on the poses, {NUMBER} ms per window',
    'peak memory': rf'peak memory \(.*\): {NUMBER} MB',
}


@pytest.mark.slow
def test_quick_report_prints_every_figure(tmp_path: Path) -> None:
    proc = run_tool(str(REPO / 'tools' / 'analysis' / 'benchmark.py'), '--quick', cwd=tmp_path,
                    timeout=300)
    out = proc.stdout
    assert re.search(r'^(CPU \(no GPU used\): .* with [0-9]+ threads|GPU: .+)', out, re.M)
    assert float(re.search(rf'float32 matmul peak .*: {NUMBER} GFLOP/s', out).group(1)) > 0
    sections = re.split(r'^== ', out, flags=re.M)[1:]
    assert [section.split(':')[0] for section in sections] == ['demo', 'sht']
    for section in sections:
        for name, pattern in WORKLOAD_FIGURES.items():
            match = re.search(pattern, section)
            assert match, f'{section.split(":")[0]}: no figure for {name}\n{section}'
            assert all(float(value) > 0 for value in match.groups()), (name, match.group(0))
        assert 'cube_embed and scene_encoder not built (0 calls' in section
        assert 'S_app, S_mm, S_mo' in section  # inference scored every component
