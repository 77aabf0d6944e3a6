"""Shared test fixtures: where the read-only reference data lives and how to run the tools."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('MGENET_SHARED', REPO.parent / 'shared'))
FIXTURES = SHARED / 'fixtures'


@pytest.fixture(scope='session')
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f'reference fixtures not found at {FIXTURES} (set MGENET_SHARED)')
    return FIXTURES


def run_tool(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python tools/<args>`` as a user would, from ``cwd``, and fail with its output."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO), str(REPO / 'tests' / 'plugins'),
                                         env.get('PYTHONPATH', '')])
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}'
                    f'\n--- stderr\n{proc.stderr[-6000:]}')
    return proc
