"""Race ``tools/test.py`` against the official STG-NF evaluation on a ShanghaiTech-sized pose set.

Builds tracked-pose JSON files for the 107 real ShanghaiTech test clips (their real lengths,
40,791 frames, from the ground-truth masks), several persons per clip with gaps, laid out as
the official code expects them (``data/ShanghaiTech/pose/test``,
``data/ShanghaiTech/gt/test_frame_mask``), then runs, each in a fresh process:

- ours: ``tools/test.py configs/stgnf/stgnf_sht.py CHECKPOINT`` on that set;
- with ``--reference PATH`` (a checkout of https://github.com/orhir/STG-NF, which this project
  does not ship), the official ``train_eval.py --checkpoint CHECKPOINT`` on the same files.

and prints for each the process wall time (interpreter start to exit), the evaluation proper
(dataset build to AUC: mmengine's ``Runner.test``; the official ``get_dataset_and_loader`` to
``score_dataset``), the peak RSS of the process (its largest one, loader workers included;
once as the kernel counts it at exit, once before the interpreter shuts down),
and the micro AUC, then the ratios and the AUC difference. Without ``--reference``, ours alone.

The official code is run as it is, under a few shims for today's stack that change no number:
``np.int`` and friends (removed in numpy 1.24), matplotlib's renamed ``seaborn-ticks`` style,
``torch.load`` of its checkpoint (an ``argparse.Namespace`` inside; mapped to the CPU without
CUDA) and, when tensorboard is not installed, a stub of the ``SummaryWriter`` it imports for
training only.

With ``--stages``, the same evaluation also runs in this process stage by stage (loading the
windows, the flow, frame scores and AUC), the fast path without mmengine's runner.

Example:
    python tools/analysis/benchmark_stgnf.py --reference /path/to/STG-NF \\
        --checkpoint ../shared/fixtures/stgnf_reference/ShanghaiTech_85_9.tar
"""
import argparse
import atexit
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURES = osp.join(REPO, '..', 'shared', 'fixtures')
DEFAULT_GT = osp.join(FIXTURES, 'shanghaitech_gt', 'test_frame_mask')
DEFAULT_CHECKPOINT = osp.join(FIXTURES, 'stgnf_reference', 'ShanghaiTech_85_9.tar')
#: Line prefix of a child's timings on its stdout.
RESULT_TAG = 'STGNF_RACE_RESULT '


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------
# The pose set
# ---------------------------------------------------------------------------------------------
def make_pose_set(gt_dir: str, out_dir: str, persons: int, seed: int) -> dict:
    """Write one tracked-pose JSON per GT clip; returns the GT masks by clip name."""
    gt = {f[:-4]: np.load(osp.join(gt_dir, f))
          for f in sorted(os.listdir(gt_dir)) if f.endswith('.npy')}
    if not gt:
        raise FileNotFoundError(f'no ShanghaiTech masks (<clip>.npy) in {gt_dir}: give --gt-dir')
    rng = np.random.default_rng(seed)
    template = rng.uniform(-40, 40, size=(17, 2))
    for clip, mask in gt.items():
        length = len(mask)
        clip_json = {}
        for person in range(1, persons + 1):
            begin = int(rng.integers(0, max(1, length // 4)))
            end = int(rng.integers(min(length, begin + 3 * length // 4), length + 1))
            frames = np.arange(begin, end)
            frames = frames[rng.random(len(frames)) > 0.01]  # ~1 % dropped detections
            centre = rng.uniform([100, 100], [750, 380]) + np.cumsum(
                rng.normal(0, 2, size=(len(frames), 2)), axis=0)
            scale = rng.uniform(0.6, 1.6)
            xy = centre[:, None] + scale * template[None] + rng.normal(0, 1.5,
                                                                        (len(frames), 17, 2))
            conf = rng.uniform(0.3, 1.0, size=(len(frames), 17, 1))
            keypoints = np.concatenate([xy, conf], axis=2).round(2)  # (n, 17, 3)
            clip_json[str(person)] = {
                f'{f + 1:03d}': {'keypoints': kp.ravel().tolist(), 'scores': 0.9}
                for f, kp in zip(frames.tolist(), keypoints)}
        with open(osp.join(out_dir, f'{clip}_alphapose_tracked_person.json'), 'w') as f:
            json.dump(clip_json, f)
    return gt


def make_layout(root: str, gt_dir: str, persons: int, seed: int) -> dict:
    """The official layout under ``root``: ``data/ShanghaiTech/{pose/test,gt/test_frame_mask}``.

    Returns:
        dict: ``pose_dir``, ``gt_dir`` and the GT masks (``gt``).
    """
    pose_dir = osp.join(root, 'data', 'ShanghaiTech', 'pose', 'test')
    local_gt = osp.join(root, 'data', 'ShanghaiTech', 'gt', 'test_frame_mask')
    os.makedirs(pose_dir)
    os.makedirs(local_gt)
    gt = make_pose_set(gt_dir, pose_dir, persons, seed)
    for clip in gt:  # the official scorer reads every mask of its hard-coded folder
        os.symlink(osp.abspath(osp.join(gt_dir, clip + '.npy')), osp.join(local_gt, clip + '.npy'))
    return dict(pose_dir=pose_dir, gt_dir=local_gt, gt=gt)


# ---------------------------------------------------------------------------------------------
# Children: each runs in its own process and reports on one stdout line
# ---------------------------------------------------------------------------------------------
def _report(result: dict) -> None:
    # The peak when the exit functions run. A process that goes through the interpreter's whole
    # shutdown peaks higher: the CUDA build of torch's library destructors touch about 0.1 GB
    # (`import torch` alone: 686 MB before exit, 800 MB as wait4 counts the process);
    # tools/test.py skips them (mgenet_mm.utils.process_exit), the official code does not.
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result['peak_rss_before_exit_mb'] = max(peak_rss_mb(), children)
    print(RESULT_TAG + json.dumps(result), flush=True)


def child_ours(test_args: List[str]) -> None:
    """Run tools/test.py with ``test_args``, timing mmengine's ``Runner.test``."""
    import runpy

    from mmengine.runner import Runner
    original = Runner.test
    result: Dict[str, float] = {}

    def timed_test(self):
        import torch
        began = time.perf_counter()
        metrics = original(self)
        result.update(evaluation_s=time.perf_counter() - began,
                      auc=float(metrics['vad/micro_auc']), threads=torch.get_num_threads())
        return metrics

    Runner.test = timed_test
    sys.argv = [osp.join(REPO, 'tools', 'test.py')] + test_args
    # tools/test.py ends the process itself after the exit functions (exit_without_teardown)
    atexit.register(_report, result)
    runpy.run_path(sys.argv[0], run_name='__main__')


def _official_stack_shims() -> None:
    """What the 2023 official code needs on today's stack; no number changes."""
    import argparse as argparse_module
    import types

    for name, alias in (('int', int), ('float', float), ('bool', bool), ('object', object)):
        if name not in np.__dict__:  # removed in numpy 1.24
            setattr(np, name, alias)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.style as mpl_style
    if 'seaborn-ticks' not in mpl_style.library and 'seaborn-v0_8-ticks' in mpl_style.library:
        mpl_style.library['seaborn-ticks'] = mpl_style.library['seaborn-v0_8-ticks']
        mpl_style.available.append('seaborn-ticks')
    import torch
    # Its checkpoints pickle the training arguments (torch >= 2.6 loads weights only).
    torch.serialization.add_safe_globals([argparse_module.Namespace])
    if not torch.cuda.is_available():
        load = torch.load

        def load_on_cpu(f, *args, **kwargs):
            kwargs.setdefault('map_location', 'cpu')
            return load(f, *args, **kwargs)

        torch.load = load_on_cpu
    try:
        import tensorboard  # noqa: F401
    except ImportError:  # imported by train_eval.py, used for training only
        stub = types.ModuleType('torch.utils.tensorboard')
        stub.SummaryWriter = None
        sys.modules['torch.utils.tensorboard'] = stub


def child_reference(reference: str, train_eval_args: List[str]) -> None:
    """Run the official train_eval.py, timing dataset build to AUC."""
    import runpy
    _official_stack_shims()
    sys.path.insert(0, reference)
    import dataset as official_dataset  # noqa: E402  the official modules, by their names
    from utils import scoring_utils
    result: Dict[str, float] = {}
    build, score = official_dataset.get_dataset_and_loader, scoring_utils.score_dataset

    def timed_build(*args, **kwargs):
        result['began'] = time.perf_counter()
        return build(*args, **kwargs)

    def timed_score(*args, **kwargs):
        auc, scores = score(*args, **kwargs)
        result.update(evaluation_s=time.perf_counter() - result.pop('began'), auc=float(auc))
        return auc, scores

    # train_eval.py imports these names from the modules when it runs: it gets the timed ones.
    official_dataset.get_dataset_and_loader = timed_build
    scoring_utils.score_dataset = timed_score
    import torch
    result['threads'] = torch.get_num_threads()
    sys.argv = [osp.join(reference, 'train_eval.py')] + train_eval_args
    runpy.run_path(sys.argv[0], run_name='__main__')
    _report(result)


def run_child(command: List[str], cwd: str, env: dict, log_path: str) -> dict:
    """Run one child; returns its report plus ``wall_s`` and ``peak_rss_mb`` (largest process)."""
    with open(log_path, 'w') as log:
        began = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                   stderr=log, text=True)
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
        log.write(stdout)
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_TAG)]
    if process.returncode != 0 or not lines:
        with open(log_path) as log:
            tail = ''.join(log.readlines()[-15:])
        raise RuntimeError(f'{" ".join(command[:4])} ... failed (exit {process.returncode}); '
                           f'log {log_path}:\n{tail}')
    result = json.loads(lines[-1][len(RESULT_TAG):])
    # wait4: the child and its waited-for descendants (loader workers), largest process
    result.update(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024)
    return result


# ---------------------------------------------------------------------------------------------
# The race
# ---------------------------------------------------------------------------------------------
def ours_command(layout: dict, checkpoint: str, work_dir: str, workers: int,
                 trust: bool) -> List[str]:
    """The child command running tools/test.py on the generated set."""
    args = [osp.join(REPO, 'configs', 'stgnf', 'stgnf_sht.py'), checkpoint,
            '--work-dir', work_dir, '--cfg-options', 'test_dataloader.dataset.data_root=',
            f'test_dataloader.dataset.pose_dir={layout["pose_dir"]}',
            f'test_dataloader.num_workers={workers}',
            f'test_dataloader.persistent_workers={workers > 0}',
            f'test_evaluator.gt_dir={layout["gt_dir"]}']
    if trust:
        from mgenet_mm.utils.checkpoint_trust import TRUST_FLAG
        args.append(TRUST_FLAG)
    return [sys.executable, osp.abspath(__file__), '--child', 'ours', '--'] + args


def reference_command(reference: str, checkpoint: str, workers: int, device: str) -> List[str]:
    """The child command running the official evaluation (its cwd: the layout's root)."""
    return [sys.executable, osp.abspath(__file__), '--child', 'reference', '--reference',
            reference, '--', '--dataset', 'ShanghaiTech', '--checkpoint', checkpoint,
            '--device', device, '--num_workers', str(workers)]


def format_table(ours: dict, official: Optional[dict]) -> str:
    """Both runs side by side, with the ratios (official / ours) and the AUC difference."""
    rows = [('process wall time', 'wall_s', '{:.2f} s'),
            ('evaluation proper', 'evaluation_s', '{:.2f} s'),
            ('peak RSS', 'peak_rss_mb', '{:,.0f} MB'),
            ('  before exit', 'peak_rss_before_exit_mb', '{:,.0f} MB'),
            ('micro AUC', 'auc', '{:.9f}'),
            ('torch threads', 'threads', '{}')]
    header = f'{"":<20}{"tools/test.py":>16}'
    if official is not None:
        header += f'{"official STG-NF":>18}{"official / ours":>18}'
    lines = [header]
    for name, key, fmt in rows:
        line = f'{name:<20}{fmt.format(ours[key]):>16}'
        if official is not None:
            line += f'{fmt.format(official[key]):>18}'
            if key in ('wall_s', 'evaluation_s', 'peak_rss_mb', 'peak_rss_before_exit_mb'):
                line += f'{official[key] / ours[key]:>17.2f}x'
        lines.append(line)
    if official is not None:
        lines.append(f'|AUC difference| {abs(ours["auc"] - official["auc"]):.2e}')
    return '\n'.join(lines)


def run_stages(pose_dir: str, gt_dir: str, gt: dict, checkpoint: str,
               batch_size: int) -> None:
    """The fast path in this process, stage by stage."""
    import torch

    from mgenet_mm.apis import score_pose_windows
    from mgenet_mm.datasets import PoseWindowDataset
    from mgenet_mm.evaluation.functional import (compute_vad_aucs, load_shanghaitech_gt,
                                                 windows_to_frame_scores)
    from mgenet_mm.models.backbones import STGNF
    torch.set_grad_enabled(False)
    gt = {clip: load_shanghaitech_gt(osp.join(gt_dir, clip + '.npy')) for clip in gt}
    times = {}
    start = time.perf_counter()
    dataset = PoseWindowDataset(pose_dir, seg_len=24, stride=1, test_mode=True)
    times['loading'] = time.perf_counter() - start
    if checkpoint.endswith('.tar'):
        flow = STGNF.from_official_checkpoint(checkpoint)
    else:
        from mmengine.runner import load_checkpoint
        flow = STGNF()
        load_checkpoint(flow, checkpoint, map_location='cpu',
                        revise_keys=[(r'^backbone\.', '')])
    flow.eval()
    start = time.perf_counter()
    nll = score_pose_windows(flow, dataset, batch_size=batch_size)
    times['model'] = time.perf_counter() - start
    start = time.perf_counter()
    names = [d['clip_name'] for d in dataset.data_list]
    person_start = np.array([[d['person_id'], d['start_frame']] for d in dataset.data_list],
                            dtype=np.int64)
    frames = windows_to_frame_scores(-nll.astype(np.float64), person_start,
                                     {n: len(m) for n, m in gt.items()}, 24, clip_names=names)
    result = compute_vad_aucs(frames, gt)
    times['scoring'] = time.perf_counter() - start
    total = sum(times.values())
    print(f'fast path in this process ({torch.get_num_threads()} torch threads), '
          f'{len(dataset)} windows:')
    for stage, seconds in times.items():
        print(f'  {stage:<8} {seconds:7.2f} s')
    print(f'  {"total":<8} {total:7.2f} s   ({len(dataset) / total:,.0f} windows/s)')
    print(f'  peak RSS {peak_rss_mb():,.0f} MB, micro AUC {result["micro_auc"]:.9f}')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', default=DEFAULT_CHECKPOINT,
                        help='official STG-NF checkpoint (.tar; our .pth for ours alone); '
                        'default: the reference fixture\'s ShanghaiTech_85_9.tar')
    parser.add_argument('--reference', help='checkout of the official STG-NF code '
                        '(https://github.com/orhir/STG-NF): race it')
    parser.add_argument('--gt-dir', default=DEFAULT_GT, help='ShanghaiTech test masks')
    parser.add_argument('--persons', type=int, default=3, help='persons per clip')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int,
                        help='OMP/MKL threads of both runs (default: as this shell has them)')
    parser.add_argument('--workers', type=int, default=0,
                        help='loader workers of tools/test.py (default 0: the batch '
                        'collate leaves them nothing to do)')
    parser.add_argument('--reference-workers', type=int, default=8,
                        help='loader workers of the official run (default 8, its default)')
    parser.add_argument('--device', default='cpu', help='device of the official run')
    parser.add_argument('--stages', action='store_true',
                        help='also time the fast path in this process, stage by stage')
    parser.add_argument('--batch-size', type=int, default=4096, help='windows per chunk of '
                        '--stages')
    parser.add_argument('--keep', help='write the set, logs and results here (kept)')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='pass --trust-checkpoint to tools/test.py (our .pth files need '
                        'it only when they pickle more than tensors)')
    parser.add_argument('--child', choices=['ours', 'reference'], help=argparse.SUPPRESS)
    parser.add_argument('child_args', nargs='*', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ('persons', 'batch_size'):
        if getattr(args, name) < 1:
            raise SystemExit(f'--{name.replace("_", "-")} must be at least 1, got '
                             f'{getattr(args, name)}')
    if args.child is None:
        if not osp.isfile(args.checkpoint):
            raise SystemExit(f'checkpoint not found: {args.checkpoint} (give --checkpoint)')
        if not osp.isdir(args.gt_dir):
            raise SystemExit(f'GT folder not found: {args.gt_dir} (give --gt-dir)')
        if args.reference is not None and not osp.isfile(
                osp.join(args.reference, 'train_eval.py')):
            raise SystemExit(f'--reference {args.reference} is not a checkout of the official '
                             'STG-NF code (no train_eval.py there)')
        if args.reference is not None and not args.checkpoint.endswith('.tar'):
            raise SystemExit('--reference needs an official checkpoint (.tar) for both runs')
        if args.keep is not None and osp.exists(args.keep):
            raise SystemExit(f'--keep {args.keep} already exists: give a new folder (the race '
                             'writes its pose set, logs and results there)')
    return args


def race(args: argparse.Namespace, root: str) -> None:
    env = dict(os.environ)
    if args.threads is not None:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    load = os.getloadavg()
    print(f'machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} '
          f'{load[2]:.2f}; OMP_NUM_THREADS={env.get("OMP_NUM_THREADS", "unset")}')
    start = time.perf_counter()
    layout = make_layout(root, args.gt_dir, args.persons, args.seed)
    gt = layout['gt']
    print(f'generated {len(gt)} clips, {sum(map(len, gt.values()))} frames, '
          f'{args.persons} persons per clip in {time.perf_counter() - start:.1f} s')
    checkpoint = osp.abspath(args.checkpoint)
    ours = run_child(ours_command(layout, checkpoint, osp.join(root, 'work'), args.workers,
                                  args.trust_checkpoint),
                     REPO, env, osp.join(root, 'ours.log'))
    official = None
    if args.reference is not None:
        official = run_child(reference_command(osp.abspath(args.reference), checkpoint,
                                               args.reference_workers, args.device),
                             root, env, osp.join(root, 'official.log'))
    print(format_table(ours, official))
    if args.stages:
        run_stages(layout['pose_dir'], layout['gt_dir'], gt, checkpoint, args.batch_size)
    with open(osp.join(root, 'race.json'), 'w') as f:
        json.dump(dict(ours=ours, official=official, load_average=load,
                       omp_num_threads=env.get('OMP_NUM_THREADS')), f, indent=1)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.child == 'ours':
        child_ours(args.child_args)
        return
    if args.child == 'reference':
        child_reference(args.reference, args.child_args)
        return
    if args.keep:
        os.makedirs(args.keep)
        race(args, osp.abspath(args.keep))
        return
    with tempfile.TemporaryDirectory(prefix='stgnf_race_') as root:
        race(args, root)


if __name__ == '__main__':
    main()
