"""Kill during a write: a process SIGKILLed while it writes a large file through any of the
project's write paths leaves the old complete file or none, never a truncated one.

Each case runs in a child process (forked from a fork server that imported everything once)
that first writes the "old" version of its files to completion, then writes a large new version
with a stall armed. The stall parks the child at a chosen point and the test sends SIGKILL there:

- ``write``: inside the byte writes of the file under test, part-way (files opened with
  ``open``/``io.open``/``os.fdopen`` under the test folder are wrapped so that the write that
  crosses a threshold, 4 MiB of 16 MiB for the large files, writes only up to it, flushes, and
  sleeps; the memory-mapped feature shard stalls half-filled instead);
- ``replace``: the data fully written, just before the ``os.replace`` that publishes it.

The write paths: ``mgenet_mm.fileio.atomic_write_bytes`` (used by the metric's result files, pose
extraction's JSON, the feature cache's manifest/index/scene files, the demo summary, the
synthetic benchmark's JSON and masks, the score plots), ``VADAUCMetric``'s ``vad_results.json`` /
``vad_frame_scores.npz``, the feature cache's memory-mapped shards, pose extraction's JSON, the
score plots, ``tools/test.py --dump`` (``AtomicDumpResults``) and checkpoints through
``AtomicCheckpointHook`` (``epoch_N.pth`` and ``last_checkpoint``). A control case runs mmengine's
own ``CheckpointHook`` through the same harness and shows the damage it prevents: a truncated
``epoch_2.pth`` and, with ``max_keep_ckpts=1``, ``epoch_1.pth`` already deleted.
"""
import builtins
import io
import json
import os
import os.path as osp
import pickle
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import torch

# Imported once by the fork server, like everything the cases use, so that a case takes a
# fraction of a second instead of an import of torch + OpenMMLab.
import mgenet_mm  # noqa: F401,I001
import mgenet_mm.apis.pose_extraction  # noqa: F401
import mgenet_mm.visualization.curves  # noqa: F401
from mgenet_mm.datasets import feature_cache  # noqa: F401
from tests.conftest import REPO


BIG = 16 << 20  # bytes of the new version of each large file
THRESHOLD = 4 << 20  # the 'write' stall comes after this many bytes (or characters)


# ----------------------------------------------------------------------------------- child side
class _Stall:
    """The child's instrumentation; inert until :meth:`arm`."""

    def __init__(self, folder: str, point: str, marker: str, match: str, threshold: int) -> None:
        self.folder = osp.abspath(folder) + os.sep
        self.point = point
        self.marker = marker
        self.match = match
        self.threshold = threshold
        self.armed = False
        self._open = builtins.open
        self._fdopen = os.fdopen
        self._replace = os.replace

    def install(self) -> None:
        stall = self

        class Wrapped:
            """A write-mode file that stalls once ``threshold`` bytes went to it."""

            def __init__(self, f, path: str) -> None:
                self._f, self._path, self._n = f, path, 0

            def write(self, data):
                if stall.armed and stall.point == 'write' and \
                        self._n + len(data) >= stall.threshold:
                    self._f.write(data[:max(stall.threshold - self._n, 1)])
                    self._f.flush()
                    stall.park(self._path)
                self._n += len(data)
                return self._f.write(data)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self._f.__exit__(*exc)

            def __iter__(self):
                return iter(self._f)

            def __getattr__(self, name):
                return getattr(self._f, name)

        def watched(path) -> bool:
            return (isinstance(path, (str, os.PathLike))
                    and osp.abspath(os.fspath(path)).startswith(stall.folder)
                    and stall.match in osp.basename(os.fspath(path)))

        def writing(mode: str) -> bool:
            return any(c in mode for c in 'wax+')

        def open_(file, mode='r', *args, **kwargs):
            f = stall._open(file, mode, *args, **kwargs)
            return Wrapped(f, os.fspath(file)) if writing(mode) and watched(file) else f

        def fdopen(fd, mode='r', *args, **kwargs):
            f = stall._fdopen(fd, mode, *args, **kwargs)
            path = os.readlink(f'/proc/self/fd/{fd}')
            return Wrapped(f, path) if writing(mode) and watched(path) else f

        def replace(src, dst, *args, **kwargs):
            if stall.armed and stall.point == 'replace' and watched(dst):
                stall.park(os.fspath(src))
            return stall._replace(src, dst, *args, **kwargs)

        builtins.open = io.open = open_
        os.fdopen = fdopen
        os.replace = replace

    def arm(self) -> None:
        self.armed = True

    def mid_write(self, path: str) -> None:
        """A stall point for writers that do not call ``write`` (memory maps)."""
        if self.armed and self.point == 'write':
            self.park(path)

    def park(self, path: str) -> None:
        _publish(self.marker, path)
        while True:  # until SIGKILL
            time.sleep(1)


def _blob(size: int, fill: int) -> bytes:
    return bytes([fill]) * size


def _case_atomic_write_bytes(folder: Path, stall: _Stall) -> None:
    from mgenet_mm.fileio import atomic_write_bytes
    target = str(folder / 'blob.bin')
    atomic_write_bytes(target, lambda f: f.write(_blob(1000, 1)))
    stall.arm()
    atomic_write_bytes(target, lambda f: f.write(_blob(BIG, 2)))


def _vad_write(folder: Path, n: int) -> None:
    from mgenet_mm.evaluation.metrics import VADAUCMetric
    metric = VADAUCMetric(gt_dir=str(folder), out_dir=str(folder))
    final = dict(per_clip_auc={'01_0001': 0.5}, fill_value=0.0,
                 anomaly_scores={'01_0001': np.arange(n, dtype=np.float64)})
    metric._write_results({'micro_auc': 0.5}, final, {})


def _case_vad_metric(folder: Path, stall: _Stall) -> None:
    _vad_write(folder, 100)
    stall.arm()
    _vad_write(folder, BIG // 8)


def _case_pose_json(folder: Path, stall: _Stall) -> None:
    from mgenet_mm.apis.pose_extraction import write_json_atomic
    target = str(folder / 'clip_alphapose_tracked_person.json')
    write_json_atomic({'1': {'000': {'keypoints': [0.0] * 51, 'scores': 1.0}}}, target)
    stall.arm()
    person = {f'{t:06d}': {'keypoints': [float(t)] * 51, 'scores': 0.9} for t in range(8000)}
    write_json_atomic({str(p): person for p in range(4)}, target)


def _shard_writer(folder: Path, rows: int):
    from mgenet_mm.datasets.feature_cache import FeatureCacheWriter, WindowIndex
    writer = FeatureCacheWriter(str(folder), shard_size=rows)
    index = WindowIndex.from_windows([('01_0001', 1, 6 * k) for k in range(rows)])
    writer.open(index, dict(config_checksum='c', weights_checksum='w', seg_len=6), {})
    return writer


def _case_feature_shard(folder: Path, stall: _Stall) -> None:
    from mgenet_mm.datasets.feature_cache import shard_name
    rows, token = 64, (256, 4, 8, 8)  # 64 windows x 128 KiB in float16: an 8 MiB shard
    writer = _shard_writer(folder / 'new', rows)
    stall.arm()
    with writer.shard(0) as out:
        out.write(0, np.ones((rows // 2, ) + token, np.float32))
        stall.mid_write(osp.join(writer.cache_dir, '.' + shard_name(0) + '.tmp'))
        out.write(rows // 2, np.ones((rows - rows // 2, ) + token, np.float32))


def _plot(folder: Path, n: int) -> None:
    from mgenet_mm.visualization.curves import plot_score_curves
    rng = np.random.default_rng(n)
    scores = {f'01_{c:04d}': rng.random(n) for c in range(8)}
    gt = {clip: (np.arange(n) % 100 < 20).astype(np.int64) for clip in scores}
    plot_score_curves(scores, gt, str(folder / 'score_curves.png'))


def _case_plot(folder: Path, stall: _Stall) -> None:
    _plot(folder, 50)
    stall.arm()
    _plot(folder, 600)  # a PNG of about 570 KB, stalled after 16 KB


def _dump(folder: Path, n: int) -> None:
    from mgenet_mm.evaluation.metrics import AtomicDumpResults
    metric = AtomicDumpResults(out_file_path=str(folder / 'dump.pkl'))
    metric.compute_metrics([dict(pred=np.full(n, 3.0))])


def _case_dump_results(folder: Path, stall: _Stall) -> None:
    _dump(folder, 10)
    stall.arm()
    _dump(folder, BIG // 8)


class _Runner:
    """What CheckpointHook uses of mmengine's Runner; ``save_checkpoint`` ends in the same
    ``mmengine.runner.checkpoint.save_checkpoint`` call as ``Runner.save_checkpoint``."""

    def __init__(self, work_dir: Path) -> None:
        from mmengine.logging import MessageHub, MMLogger
        self.work_dir = str(work_dir)
        self.logger = MMLogger.get_instance('atomic_writes_test')
        self.message_hub = MessageHub.get_instance('atomic_writes_test')
        self.epoch = 0
        self.iter = 0
        self.size = 1000

    def save_checkpoint(self, out_dir, filename, file_client_args=None, save_optimizer=True,
                        save_param_scheduler=True, meta=None, by_epoch=True, backend_args=None):
        from mmengine.runner.checkpoint import save_checkpoint
        checkpoint = dict(meta=dict(meta or {}), state_dict=dict(
            w=torch.full((self.size // 4, ), float(self.epoch + 1))))
        save_checkpoint(checkpoint, osp.join(out_dir, filename), backend_args=backend_args)


def _run_hook(folder: Path, stall: _Stall, hook_type: str) -> None:
    from mmaction.registry import HOOKS  # AtomicCheckpointHook, and mmengine's by parent lookup
    runner = _Runner(folder)
    hook = HOOKS.build(dict(type=hook_type, interval=1, max_keep_ckpts=1))
    hook.before_train(runner)
    hook._save_checkpoint(runner)  # epoch_1.pth, small, complete
    runner.epoch, runner.iter, runner.size = 1, 10, BIG
    stall.arm()
    hook._save_checkpoint(runner)  # epoch_2.pth, large


def _case_checkpoint_hook(folder: Path, stall: _Stall) -> None:
    _run_hook(folder, stall, 'AtomicCheckpointHook')


def _case_mmengine_checkpoint_hook(folder: Path, stall: _Stall) -> None:
    _run_hook(folder, stall, 'CheckpointHook')


# name -> (function, basename fragment of the file whose write stalls, 'write' threshold)
CASES: Dict[str, tuple] = {
    'atomic_write_bytes': (_case_atomic_write_bytes, 'blob.bin', THRESHOLD),
    'vad_metric': (_case_vad_metric, 'vad_frame_scores.npz', THRESHOLD),
    'pose_json': (_case_pose_json, '_alphapose_tracked_person.json', THRESHOLD),
    'feature_shard': (_case_feature_shard, 'tokens-00000.npy', THRESHOLD),
    'plot': (_case_plot, 'score_curves.png', 16 << 10),
    'dump_results': (_case_dump_results, 'dump.pkl', THRESHOLD),
    'checkpoint_hook': (_case_checkpoint_hook, 'epoch_2.pth', THRESHOLD),
    'last_checkpoint': (_case_checkpoint_hook, 'last_checkpoint', 4),
    'mmengine_checkpoint_hook': (_case_mmengine_checkpoint_hook, 'epoch_2.pth', THRESHOLD),
}


def _child(case: str, point: str, folder: Path, marker: Path) -> None:
    """Runs in a forked child of the fork server; never returns."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # mmengine logs to stdout, which is the server's reply channel
    os.dup2(devnull, 2)
    try:
        function, match, threshold = CASES[case]
        stall = _Stall(str(folder), point, str(marker), match, threshold)
        stall.install()
        function(folder, stall)
        text, status = 'FINISHED', 0  # never stalled: the parent fails the case
    except BaseException:  # noqa: B902  report anything to the parent
        import traceback
        text, status = 'ERROR\n' + traceback.format_exc(), 1
    _publish(str(marker), text)
    os._exit(status)


def _publish(path: str, text: str) -> None:
    """The marker the parent polls, complete when it appears (low-level calls, which the stall
    does not wrap)."""
    fd = os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, text.encode())
    os.close(fd)
    os.rename(path + '.tmp', path)


def serve() -> None:
    """The fork server: one fresh process that imports everything once, runs no torch op and
    has one OpenMP thread, then forks a child per case (forking the pytest process itself is not
    safe once torch's thread pools ran: the child can hang in its first parallel op)."""
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    for line in sys.stdin:
        case, point, folder, marker = line.rstrip('\n').split('\t')
        pid = os.fork()
        if pid == 0:
            _child(case, point, Path(folder), Path(marker))
        sys.stdout.write(f'started {pid}\n')
        sys.stdout.flush()
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(f'ended {status}\n')
        sys.stdout.flush()


# ---------------------------------------------------------------------------------- parent side
class _ForkServer:

    def __init__(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
        code = 'from tests.engine.test_atomic_writes import serve; serve()'
        self.proc = subprocess.Popen([sys.executable, '-c', code], cwd=REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, bufsize=0)
        assert self.readline(180) == 'ready'

    def readline(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            pytest.fail(f'the fork server did not answer within {timeout} s')
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            pytest.fail(f'the fork server ended (exit {self.proc.wait(10)})')
        return line

    def start(self, *fields: str) -> int:
        self.proc.stdin.write(('\t'.join(fields) + '\n').encode())
        self.proc.stdin.flush()
        word, pid = self.readline(30).split()
        assert word == 'started'
        return int(pid)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope='module')
def fork_server():
    server = _ForkServer()
    yield server
    server.close()


def _kill_mid_write(server: _ForkServer, case: str, point: str, folder: Path) -> str:
    """Run ``case`` in a child of the fork server, SIGKILL it at the stall; returns the path it
    stalled on."""
    marker = folder.parent / f'{folder.name}.stalled'
    pid = server.start(case, point, str(folder), str(marker))
    deadline = time.monotonic() + 120
    while not marker.exists():
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            server.readline(30)
            pytest.fail(f'{case}: no stall within 120 s')
        time.sleep(0.02)
    stalled = marker.read_text()
    if stalled.startswith('ERROR') or stalled == 'FINISHED':
        server.readline(30)  # the child exits by itself
        pytest.fail(f'{case}: {stalled}' if stalled != 'FINISHED' else
                    f'{case}: the write finished without stalling')
    os.kill(pid, signal.SIGKILL)
    word, status = server.readline(30).split()
    assert word == 'ended'
    assert os.WIFSIGNALED(int(status)) and os.WTERMSIG(int(status)) == signal.SIGKILL
    return stalled


def _load_checkpoint(path: Path):
    return torch.load(path, map_location='cpu', weights_only=True)


def _check_no_partial(folder: Path, stalled: str, target: str) -> None:
    """The stall happened in a temporary sibling of ``target``, which did not replace it."""
    assert osp.basename(stalled) != target, f'stalled on {stalled}: written in place'
    assert osp.dirname(osp.abspath(stalled)) == osp.abspath(folder)


def _check(case: str, folder: Path, stalled: str) -> None:
    names = sorted(os.listdir(folder))
    if case == 'atomic_write_bytes':
        _check_no_partial(folder, stalled, 'blob.bin')
        assert (folder / 'blob.bin').read_bytes() == _blob(1000, 1)
    elif case == 'vad_metric':
        _check_no_partial(folder, stalled, 'vad_frame_scores.npz')
        with np.load(folder / 'vad_frame_scores.npz') as old:
            assert np.array_equal(old['01_0001'], np.arange(100))
        json.loads((folder / 'vad_results.json').read_text())  # complete (new or old)
    elif case == 'pose_json':
        _check_no_partial(folder, stalled, 'clip_alphapose_tracked_person.json')
        old = json.loads((folder / 'clip_alphapose_tracked_person.json').read_text())
        assert list(old) == ['1'] and list(old['1']) == ['000']
    elif case == 'feature_shard':
        from mgenet_mm.datasets.feature_cache import INDEX, LOCK, MANIFEST
        new = folder / 'new'
        assert sorted(os.listdir(new)) == sorted(
            [LOCK, '.tokens-00000.npy.tmp', INDEX, MANIFEST]), os.listdir(new)
        manifest = json.loads((new / MANIFEST).read_text())
        assert manifest['shards'] == {} and not manifest['complete']
    elif case == 'plot':
        _check_no_partial(folder, stalled, 'score_curves.png')
        from PIL import Image
        with Image.open(folder / 'score_curves.png') as image:
            image.load()  # the old plot, complete
    elif case == 'dump_results':
        _check_no_partial(folder, stalled, 'dump.pkl')
        with open(folder / 'dump.pkl', 'rb') as f:
            assert pickle.load(f)[0]['pred'].shape == (10, )
    elif case in ('checkpoint_hook', 'last_checkpoint'):
        # the previous checkpoint is kept until the new one and last_checkpoint are in place
        assert _load_checkpoint(folder / 'epoch_1.pth')['meta']['epoch'] == 1
        last = (folder / 'last_checkpoint').read_text()
        if case == 'checkpoint_hook':
            _check_no_partial(folder, stalled, 'epoch_2.pth')
            assert not (folder / 'epoch_2.pth').exists()
            assert last == str(folder / 'epoch_1.pth')
        else:
            _check_no_partial(folder, stalled, 'last_checkpoint')
            assert _load_checkpoint(folder / 'epoch_2.pth')['meta']['epoch'] == 2
            assert last == str(folder / 'epoch_1.pth')  # old, complete: resume redoes epoch 2
    elif case == 'mmengine_checkpoint_hook':
        # the defects AtomicCheckpointHook removes, shown by the same harness
        assert osp.basename(stalled) == 'epoch_2.pth'
        assert not (folder / 'epoch_1.pth').exists()  # deleted before epoch 2 was written
        assert (folder / 'last_checkpoint').read_text() == str(folder / 'epoch_1.pth')
        assert (folder / 'epoch_2.pth').stat().st_size == THRESHOLD  # truncated
        with pytest.raises(Exception):
            _load_checkpoint(folder / 'epoch_2.pth')
    else:
        raise AssertionError(case)
    leftovers = [n for n in names if n.startswith('.') and n.endswith('.tmp')]
    assert len(leftovers) <= 1, names  # at most the killed write's temporary file


POINTS = [(case, 'write') for case in CASES] + [
    (case, 'replace') for case in ('atomic_write_bytes', 'feature_shard', 'checkpoint_hook')]


@pytest.mark.slow
@pytest.mark.parametrize('case,point', POINTS, ids=[f'{c}-{p}' for c, p in POINTS])
def test_kill_during_write_leaves_old_file_or_none(case: str, point: str, tmp_path: Path,
                                                   fork_server: _ForkServer) -> None:
    folder = tmp_path / 'out'
    folder.mkdir()
    stalled = _kill_mid_write(fork_server, case, point, folder)
    _check(case, folder, stalled)
