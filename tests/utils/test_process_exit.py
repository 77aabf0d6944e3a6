"""exit_without_teardown: the tools' exit without the C library destructors."""
import os
import subprocess
import sys
import textwrap

from mgenet_mm.utils.process_exit import FULL_EXIT_ENV


def _run(code: str, tmp_path, **env_changes) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONUNBUFFERED', FULL_EXIT_ENV)}
    env.update(env_changes)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


EXIT_SCRIPT = """
    import atexit, ctypes, sys
    from mgenet_mm.utils.process_exit import exit_without_teardown

    class Finaliser:
        def __del__(self, _open=open):  # when the interpreter tears the module down
            _open('finalised', 'w').close()

    keep = Finaliser()
    atexit.register(lambda: open('atexit_ran', 'w').close())
    sys.stdout.write('python text, no newline')  # buffered: stdout is a pipe
    ctypes.CDLL(None).printf(b'|c text, no newline')  # in the C library's buffer
    exit_without_teardown(3)
"""


def test_exit_runs_exit_functions_flushes_and_skips_teardown(tmp_path):
    proc = _run(EXIT_SCRIPT, tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert 'python text, no newline' in proc.stdout and '|c text, no newline' in proc.stdout
    assert (tmp_path / 'atexit_ran').exists()
    # the teardown was skipped: the module's objects were not finalised
    assert not (tmp_path / 'finalised').exists()


def test_full_exit_env_goes_through_the_interpreter_shutdown(tmp_path):
    proc = _run(EXIT_SCRIPT, tmp_path, **{FULL_EXIT_ENV: '1'})
    assert proc.returncode == 3, proc.stderr
    assert (tmp_path / 'atexit_ran').exists() and (tmp_path / 'finalised').exists()
