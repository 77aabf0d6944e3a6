"""tools/dist_train.sh and tools/dist_test.sh on CPU (gloo, 2 processes) against one process.

The demo MGENet (``configs/mgenet/demo_cached.py``, both levels, memories, BSMM write pass) is
trained for 2 epochs on 40 windows of the tiny synthetic preset, once by ``tools/train.py`` with
batch 2B = 8 and once by ``tools/dist_train.sh`` with 2 processes of batch B = 4, same seed and
same initial weights, each validating on 61 test windows after the last epoch (the validation
also dumps every window's scores). Then ``tools/dist_test.sh`` tests the 1-process checkpoint with
2 processes.

Why the two runs can be compared at all. With mmengine's ``DefaultSampler`` the global batch of
2 x 4 is the same 8 windows as the single process's batch of 8 (ranks take every other index of
the same shuffled list), and DDP averages the per-rank mean gradients into the mean over the 8.
Three things in MGENet used to depend on the rank, and were made functions of the global batch
instead, because each was also a defect of distributed training itself:

- the training tube masks: every rank draws from the same seeded RNG stream (mmengine seeds all
  ranks alike unless ``diff_rank_seed``), so each rank gave its i-th window the same mask. Each
  rank now draws the masks of the whole global batch and keeps its share
  (``global_batch_share``): masks are independent within a global batch and equal to the
  single-process masks window by window;
- the memory updates (eq. 9): mmengine wraps with ``broadcast_buffers=False``, so each rank's
  memory drifted on its own shard until ``SyncBuffersHook`` averaged the items off the unit
  sphere. The increments are now summed over ranks (``MemoryBank(sync_updates=True)``), which is
  exactly the single-process update of the global batch;
- the BSMM write pass: rank 0's memory, written from its half of the data, was broadcast. The
  weights of all ranks are now gathered in single-process order, padding dropped, and written on
  every rank.

At test time the complementary mask pair is one pair shared by all windows, so a window's
S_app does not depend on its batch.

Tolerances. The runs differ only in float summation order (gradient all-reduce, batch 4 vs 8
matmuls, summed memory increments). Weights: for every tensor, the difference between the runs
is at most 1e-3 of how far training moved it from the shared initial weights (measured: at most
1.4e-5; before the changes above the 2-process run wrote 20 of the 40 windows into the BSMM, and
the mask head's last biases, which start at 0, differed by 19 % of their largest value).
Per-window scores: relative 1e-4. AUCs: 2e-3 absolute, since a score difference of 1e-7 can swap
two nearly tied frames, and one swapped pair of the 230 test frames moves an AUC by about 8e-5.

The metric check: 61 windows, odd, so ``DefaultSampler`` pads the 2-process runs to 62 (verified
below, not assumed); ``VADAUCMetric`` must still count 61 windows, and every window's scores must
equal the single-process ones, in the same order (``collect_results`` interleaves the ranks'
parts and truncates the padding).
"""
import glob
import json
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch

from tests.conftest import REPO, run_tool

pytestmark = pytest.mark.slow

WORLD = 2
LOCAL_BATCH = 4
TRAIN_WINDOWS = 40  # of the tiny preset's 43: 5 global batches of 8, no sampler padding
TEST_WINDOWS = 61  # the first 61 of the tiny preset's 167 test windows (odd)
EPOCHS = 2
LR = 1e-3  # 10x the paper's, so that 10 steps move the weights measurably
CONFIG = 'configs/mgenet/demo_cached.py'
UPDATE_RTOL = 1e-3
SCORE_RTOL = 1e-4
AUC_ATOL = 2e-3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _env() -> Dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable, PORT=str(_free_port()))
    return env


def _run(command: List[str], cwd: Path, log: Path, timeout: int = 300) -> float:
    start = time.perf_counter()
    with open(log, 'w') as out:
        proc = subprocess.run(command, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(command)} exited {proc.returncode}\n'
                    f'{log.read_text()[-8000:]}')
    return time.perf_counter() - start


CHILD_CONFIG = """_base_ = ['{repo}/configs/mgenet/demo_cached.py']
# The tiny benchmark of tests/tools/test_distributed.py, its feature cache and guidance flow.
feature_cache_root = '{cache}'
# 8 BSMM items, as tools/demo.py --preset tiny: in 64, each of the 40 training windows would
# seed its own item, its nearest-pair S_mm would be 0 and the calibration would have no spread.
model = dict(guidance=dict(init_cfg=dict(checkpoint='{guidance}')), bsmm=dict(num_items=8))


def _split(loader, cache_dir, **dataset):
    pipeline = loader.dataset.pipeline
    return dict(dataset=dict(dataset, data_root='{data}', pipeline=[
        dict(pipeline[0], cache_dir=cache_dir), *pipeline[1:]]))


train_dataloader = _split(_base_.train_dataloader, '{cache}/train', indices={train})
val_dataloader = _split(_base_.val_dataloader, '{cache}/test', indices={test})
test_dataloader = val_dataloader
metric = dict(_base_.val_evaluator, gt_dir='{data}/gt/test_frame_mask',
              kind_dir='{data}/gt/test_frame_kinds',
              event_dir='{data}/gt/test_frame_events')
# Validation after the last epoch also dumps every window's scores (rank 0 writes).
val_evaluator = [metric, dict(type='DumpResults', out_file_path='{root}/val_windows.pkl')]
test_evaluator = metric
"""


@pytest.fixture(scope='module')
def bench(tmp_path_factory) -> Dict:
    """Tiny benchmark, a 1-epoch STG-NF guidance flow, the feature cache, initial weights."""
    root = tmp_path_factory.mktemp('distributed')
    data, cache, stgnf = root / 'data', root / 'features', root / 'stgnf'
    guidance = stgnf / 'epoch_1.pth'
    run_tool(str(REPO / 'tools/data/make_synthetic.py'), '--out', str(data), '--preset', 'tiny',
             '--seed', '0', cwd=root)
    config = root / 'demo_dist.py'
    config.write_text(CHILD_CONFIG.format(repo=REPO, cache=cache, guidance=guidance, data=data,
                                          train=TRAIN_WINDOWS, test=TEST_WINDOWS, root=root))
    # The guidance flow and the feature cache do not depend on each other (the cache does not
    # involve the guidance weights): make them side by side.
    env = dict(os.environ)
    with open(root / 'stgnf.log', 'w') as log:
        flow = subprocess.Popen(
            [sys.executable, 'tools/train.py', 'configs/stgnf/stgnf_demo.py', '--work-dir',
             str(stgnf), '--seed', '0', '--no-validate', '--cfg-options',
             'train_cfg.max_epochs=1', f'train_dataloader.dataset.data_root={data}'],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            run_tool(str(REPO / 'tools/data/extract_features.py'), str(config), '--split',
                     'both', '--seed', '0', '--out', str(cache), cwd=REPO)
        finally:
            code = flow.wait(timeout=300)
    if code != 0:
        pytest.fail(f'STG-NF training exited {code}\n{(root / "stgnf.log").read_text()[-6000:]}')

    # Shared initial weights (with the guidance flow loaded), so that both runs start from the
    # same point and the comparison can be scaled by how far training moved each tensor.
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mgenet_mm  # noqa: F401
    from mmaction.registry import MODELS
    init_default_scope('mmaction')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(config)).model)
    model.init_weights()
    init = root / 'init.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), init)
    return dict(root=root, init=init, config=config)


@pytest.fixture(scope='module')
def runs(bench) -> Dict:
    """Train (validating at the end) with one process and with two; test with two."""
    root, config = bench['root'], str(bench['config'])
    options = [f'train_cfg.max_epochs={EPOCHS}', f'optim_wrapper.optimizer.lr={LR}',
               f'load_from={bench["init"]}']
    one, two = root / 'one', root / 'two'
    seconds = {}
    seconds['train+val, 1 process'] = _run(
        [sys.executable, 'tools/train.py', config, '--work-dir', str(one), '--seed', '0',
         '--cfg-options', *options, f'train_dataloader.batch_size={WORLD * LOCAL_BATCH}',
         f'val_evaluator.1.out_file_path={one}/val_windows.pkl'], REPO, root / 'train_one.log')
    seconds['train+val, 2 processes'] = _run(
        ['bash', 'tools/dist_train.sh', config, str(WORLD), '--work-dir', str(two), '--seed',
         '0', '--cfg-options', *options, f'train_dataloader.batch_size={LOCAL_BATCH}',
         f'val_evaluator.1.out_file_path={two}/val_windows.pkl'], REPO, root / 'train_two.log')
    checkpoint = f'epoch_{EPOCHS}.pth'
    # The 1-process checkpoint, tested by 2 processes: any difference from the 1-process
    # validation is the gathering's.
    seconds['test, 2 processes'] = _run(
        ['bash', 'tools/dist_test.sh', config, str(one / checkpoint), str(WORLD), '--work-dir',
         str(root / 'test'), '--dump', str(root / 'test_windows.pkl')], REPO,
        root / 'test_two.log')
    print('seconds:', {k: round(v, 1) for k, v in seconds.items()})
    return dict(init=bench['init'], root=root, one=one, two=two, checkpoint=checkpoint,
                seconds=seconds)


def _state(path: Path) -> Dict[str, torch.Tensor]:
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def _results(work_dir: Path) -> Dict:
    [path] = glob.glob(str(work_dir / '*' / 'vad_results.json'))
    return json.loads(Path(path).read_text())


def _frame_scores(work_dir: Path) -> Dict[str, np.ndarray]:
    [path] = glob.glob(str(work_dir / '*' / 'vad_frame_scores.npz'))
    with np.load(path) as scores:
        return dict(scores)


def _windows(path: Path) -> List[dict]:
    with open(path, 'rb') as f:
        return pickle.load(f)


def _assert_same_windows(single: List[dict], double: List[dict], rtol: float) -> None:
    """Same windows in the same order, none twice, none lost; scores within ``rtol``."""
    keys = [[(w['clip_name'], int(w['person_id']), int(w['start_frame'])) for w in windows]
            for windows in (single, double)]
    assert len(keys[0]) == TEST_WINDOWS and len(set(keys[0])) == TEST_WINDOWS
    assert keys[1] == keys[0]
    for name in ('mo', 'app', 'mm'):
        a = np.array([float(w['anomaly_scores'][name]) for w in single])
        b = np.array([float(w['anomaly_scores'][name]) for w in double])
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.abs(a).max(), err_msg=name)


def test_two_processes_train_like_one(runs) -> None:
    """Same weights, memories and BSMM as one process with the same global batch."""
    log = (runs['root'] / 'train_two.log').read_text()
    assert 'using the gloo backend' in log
    assert f'BSMM written: {TRAIN_WINDOWS} windows' in log  # every window once, not a shard
    init, one, two = (_state(runs['init']), _state(runs['one'] / runs['checkpoint']),
                      _state(runs['two'] / runs['checkpoint']))
    assert one.keys() == two.keys() == init.keys()
    for name, start in init.items():
        a, b = one[name], two[name]
        if not a.is_floating_point():
            assert torch.equal(a, b), name  # e.g. bsmm.num_written, BN counters
            continue
        update = (a.double() - start.double()).norm().item()
        difference = (a.double() - b.double()).norm().item()
        assert difference <= UPDATE_RTOL * update + 1e-7 * a.double().norm().item(), \
            f'{name}: runs differ by {difference:.3e}, training moved it by {update:.3e}'
    # The comparison means something only if training moved the trained tensors.
    for part in ('backbone.', 'mask_encoder.', 'motion_head.', 'mask_head.'):
        names = [n for n in init if n.startswith(part) and init[n].is_floating_point()]
        assert all((one[n] != init[n]).any() for n in names), part
    for memory in ('behaviour_memory.items', 'scene_memory.items', 'bsmm.items'):
        assert (one[memory] != init[memory]).any(), memory


def test_two_processes_validate_like_one(runs) -> None:
    """Validation after training: the same windows, scores, frame scores and AUCs."""
    one, two = _results(runs['one']), _results(runs['two'])
    assert one['missing_components'] == two['missing_components'] == []
    for key, value in one['metrics'].items():
        if key.startswith('num_'):
            assert two['metrics'][key] == value, key
        else:
            assert abs(two['metrics'][key] - value) <= AUC_ATOL, key
    assert two['metrics']['num_windows'] == TEST_WINDOWS
    frames_one, frames_two = _frame_scores(runs['one']), _frame_scores(runs['two'])
    assert frames_one.keys() == frames_two.keys()
    # The calibrated scores cross 0 (the training median): near it a relative tolerance alone
    # is meaningless, so the absolute one is SCORE_RTOL of the scores' scale.
    scale = max(float(np.abs(frames).max()) for frames in frames_one.values())
    for clip in frames_one:
        np.testing.assert_allclose(frames_two[clip], frames_one[clip], rtol=SCORE_RTOL,
                                   atol=SCORE_RTOL * scale, err_msg=clip)
    _assert_same_windows(_windows(runs['one'] / 'val_windows.pkl'),
                         _windows(runs['two'] / 'val_windows.pkl'), SCORE_RTOL)


def test_metric_gathers_every_window_once(runs) -> None:
    """61 windows on 2 ranks: padded to 62 by the sampler, counted once each by the metric.

    ``tools/dist_test.sh`` tests the 1-process checkpoint: its per-window scores must equal that
    run's own validation, window by window, up to batch-size float noise.
    """
    from mmengine.dataset import DefaultSampler
    import mmengine.dataset.sampler as sampler_module

    shards = []
    original = sampler_module.get_dist_info
    try:
        for rank in range(WORLD):
            sampler_module.get_dist_info = lambda rank=rank: (rank, WORLD)
            shards.append(list(DefaultSampler(list(range(TEST_WINDOWS)), shuffle=False, seed=0)))
    finally:
        sampler_module.get_dist_info = original
    assert [len(shard) for shard in shards] == [(TEST_WINDOWS + 1) // 2] * WORLD
    assert shards[1][-1] == shards[0][0]  # the padding repeats the first window

    log = (runs['root'] / 'test_two.log').read_text()
    assert 'using the gloo backend' in log
    tested = _results(runs['root'] / 'test')
    validated = _results(runs['one'])
    assert tested['metrics']['num_windows'] == TEST_WINDOWS
    for key, value in validated['metrics'].items():
        tolerance = 0 if key.startswith('num_') else AUC_ATOL
        assert abs(tested['metrics'][key] - value) <= tolerance, key
    _assert_same_windows(_windows(runs['one'] / 'val_windows.pkl'),
                         _windows(runs['root'] / 'test_windows.pkl'), 1e-5)
