"""Shared test fixtures: where the read-only reference data lives and how to run the tools."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('MGENET_SHARED', REPO.parent / 'shared'))
FIXTURES = SHARED / 'fixtures'


@pytest.fixture(scope='session')
def _initial_default_scopes() -> dict:
    from mmengine.registry import DefaultScope
    return dict(DefaultScope._instance_dict)


@pytest.fixture(autouse=True)
def restore_default_scope(_initial_default_scopes):
    """After each test, put mmengine's global default scope back as the session found it: mmdet
    and mmpose models (also those of module-scoped fixtures) switch it to theirs, and a later
    test's registry lookups must not depend on the order tests run in."""
    from mmengine.registry import DefaultScope
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(_initial_default_scopes)


@pytest.fixture(scope='session')
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f'reference fixtures not found at {FIXTURES} (set MGENET_SHARED)')
    return FIXTURES


def run_tool(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python tools/<args>`` as a user would, from ``cwd``, and fail with its output.

    The tools import ``mgenet_mm`` from the environment, as a user's would (``.venv/bin/python``
    imports this checkout's); only the test plugins' folder is added to the path."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO / 'tests' / 'plugins'),
                                         env.get('PYTHONPATH', '')])
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}'
                    f'\n--- stderr\n{proc.stderr[-6000:]}')
    return proc


def load_tool(relative: str):
    """Import a script under the repository (e.g. ``'tools/infer_video.py'``) as a module, to
    call its functions and ``main`` in-process."""
    spec = importlib.util.spec_from_file_location(
        'tool_' + relative.replace('/', '_').replace('.', '_'), REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
