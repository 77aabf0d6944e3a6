"""The project's interpreter: ``.venv/bin/python`` (``make setup``) imports this checkout.

Several checkouts on a machine share one cached environment (``tools/setup_env.sh``); each gets
its own small ``.venv`` over it, so ``import mgenet_mm`` must resolve to the checkout the
interpreter belongs to, whatever the working directory and without ``PYTHONPATH``.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

VENV_PYTHON = REPO / '.venv' / 'bin' / 'python'

PROBE = """
import json, sys
import mgenet_mm, mmaction
print(json.dumps(dict(mgenet_mm=mgenet_mm.__file__, mmaction=mmaction.__file__,
                      prefix=sys.prefix)))
"""


@pytest.mark.skipif(not VENV_PYTHON.exists(), reason='no .venv here: run `make setup`')
def test_venv_python_imports_this_checkout_from_another_cwd(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    # -I: neither the working directory nor PYTHONPATH nor user site-packages on sys.path, so
    # only .venv's own site-packages can have made this checkout importable.
    proc = subprocess.run([str(VENV_PYTHON), '-I', '-c', PROBE], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(found['mgenet_mm']).resolve() == (REPO / 'mgenet_mm' / '__init__.py').resolve()
    # .venv is this checkout's own venv, not a link to the shared one (which every checkout
    # would see alike); the OpenMMLab packages come from the shared environment.
    assert Path(found['prefix']).resolve() == (REPO / '.venv').resolve()
    assert not (REPO / '.venv').is_symlink()
    assert REPO.resolve() not in Path(found['mmaction']).resolve().parents
