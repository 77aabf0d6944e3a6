"""The demo: MGENet end to end on the synthetic human-behaviour benchmark.

Runs, each step with the project's own command-line tools (so the log shows what a user would
type) and skipping steps whose outputs already exist:

1. ``tools/data/make_synthetic.py``: the benchmark, in the ShanghaiTech layout (``data/synthetic``);
2. ``tools/train.py configs/stgnf/stgnf_demo.py``: the STG-NF guidance flow on its skeletons;
3. ``tools/test.py`` on it: STG-NF alone, for comparison;
4. ``tools/data/extract_features.py configs/mgenet/demo_cached.py``: the frozen-feature cache;
5. ``tools/train.py configs/mgenet/demo_cached.py``: MGENet (both levels, BSMM written at the end);
6. ``tools/test.py`` on it: frame-level AUCs of MGENet and of each score component;
7. a table of micro/macro AUCs overall and per anomaly kind, ``vad_results.json`` with the same
   numbers, and PNG plots (score curves with the ground truth shaded, score histograms).

Example:
    python tools/demo.py                      # what `make demo` runs
    python tools/demo.py --preset tiny --stgnf-epochs 1 --mgenet-epochs 1   # a quick check
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

KINDS = ('motion', 'appearance', 'scene')


def step(title: str, command: List[str], log_dir: str) -> float:
    """Run one tool, its output going to the terminal and to ``<log_dir>/<n>.log``."""
    print(f'\n=== {title}\n$ {" ".join(command)}', flush=True)
    start = time.perf_counter()
    os.makedirs(log_dir, exist_ok=True)
    log_path = osp.join(log_dir, title.split(':')[0].replace(' ', '_') + '.log')
    with open(log_path, 'w') as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in process.stdout:
            log.write(line)
            if not _noise(line):
                sys.stdout.write(line)
                sys.stdout.flush()
        code = process.wait()
    if code != 0:
        raise SystemExit(f'demo step failed ({title}, exit {code}); full log: {log_path}')
    seconds = time.perf_counter() - start
    print(f'--- {title}: {seconds:.0f} s', flush=True)
    return seconds


def _noise(line: str) -> bool:
    """Lines not worth a terminal: warnings from third-party packages, hook tables."""
    return ('Warning' in line or 'warnings.warn' in line or line.startswith('(') or
            'return _VF' in line or line.strip() in ('', '--------------------'))


def latest_results(work_dir: str) -> Dict:
    runs = sorted((osp.join(work_dir, d) for d in os.listdir(work_dir)
                   if osp.isfile(osp.join(work_dir, d, 'vad_results.json'))), key=osp.getmtime)
    if not runs:
        raise SystemExit(f'no vad_results.json under {work_dir}')
    with open(osp.join(runs[-1], 'vad_results.json')) as f:
        return dict(json.load(f), run_dir=runs[-1])


def table_rows(mgenet: Dict, stgnf: Dict) -> List[List]:
    """Rows: name, micro, macro, then micro and macro per kind."""
    rows = []

    def row(name: str, metrics: Dict, suffix: str = '') -> None:
        values = [metrics.get(f'micro_auc{suffix}'), metrics.get(f'macro_auc{suffix}')]
        for kind in KINDS:
            values += [metrics.get(f'micro_auc/{kind}{suffix}'),
                       metrics.get(f'macro_auc/{kind}{suffix}')]
        rows.append([name] + values)

    row('MGENet (eq. 16)', mgenet['metrics'])
    for component, label in (('mo', 'S_mo alone'), ('app', 'S_app alone'),
                             ('mm', 'S_mm alone')):
        if f'micro_auc_{component}' in mgenet['metrics']:
            row(label, mgenet['metrics'], f'_{component}')
    row('STG-NF alone', stgnf['metrics'])
    return rows


def format_table(rows: List[List]) -> str:
    header = ['', 'micro', 'macro'] + [f'{k} {m}' for k in KINDS for m in ('micro', 'macro')]
    cells = [header] + [[r[0]] + ['-' if v is None else f'{100 * v:.1f}' for v in r[1:]]
                        for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ['  '.join(c[i].rjust(widths[i]) if i else c[i].ljust(widths[i])
                       for i in range(len(c))) for c in cells]
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', default='data/synthetic', help='benchmark folder')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--preset', default='default', choices=('default', 'tiny'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--stgnf-epochs', type=int, default=6)
    parser.add_argument('--mgenet-epochs', type=int, default=10)
    parser.add_argument('--fresh', action='store_true',
                        help='delete the work dir (not the data) and run every step again')
    args = parser.parse_args(argv)
    python = sys.executable
    data = osp.abspath(args.data)
    work = osp.abspath(args.work_dir)
    if args.fresh and osp.isdir(work):
        shutil.rmtree(work)
    logs = osp.join(work, 'logs')
    stgnf_dir = osp.join(work, 'stgnf')
    mgenet_dir = osp.join(work, 'mgenet')
    stgnf_ckpt = osp.join(stgnf_dir, f'epoch_{args.stgnf_epochs}.pth')
    mgenet_ckpt = osp.join(mgenet_dir, f'epoch_{args.mgenet_epochs}.pth')
    data_options = [f'train_dataloader.dataset.data_root={data}',
                    f'val_dataloader.dataset.data_root={data}',
                    f'test_dataloader.dataset.data_root={data}',
                    f'val_evaluator.gt_dir={data}/gt/test_frame_mask',
                    f'val_evaluator.kind_dir={data}/gt/test_frame_kinds',
                    f'test_evaluator.gt_dir={data}/gt/test_frame_mask',
                    f'test_evaluator.kind_dir={data}/gt/test_frame_kinds']
    cache = osp.join(work, 'features')
    cache_options = [f'feature_cache_root={cache}',
                     f'train_dataloader.dataset.pipeline.0.cache_dir={cache}/train',
                     f'val_dataloader.dataset.pipeline.0.cache_dir={cache}/test',
                     f'test_dataloader.dataset.pipeline.0.cache_dir={cache}/test',
                     f'model.guidance.init_cfg.checkpoint={stgnf_ckpt}']
    times = {}
    start = time.perf_counter()

    times['benchmark'] = step('1 benchmark: make_synthetic', [
        python, 'tools/data/make_synthetic.py', '--out', data, '--seed', str(args.seed),
        '--preset', args.preset], logs)
    if not osp.isfile(stgnf_ckpt):
        times['stgnf train'] = step('2 train STG-NF', [
            python, 'tools/train.py', 'configs/stgnf/stgnf_demo.py', '--work-dir', stgnf_dir,
            '--seed', str(args.seed), '--cfg-options', f'train_cfg.max_epochs={args.stgnf_epochs}',
            f'train_cfg.val_interval={args.stgnf_epochs}', *data_options], logs)
    times['stgnf test'] = step('3 test STG-NF alone', [
        python, 'tools/test.py', 'configs/stgnf/stgnf_demo.py', stgnf_ckpt, '--work-dir',
        osp.join(work, 'stgnf_test'), '--cfg-options', *data_options], logs)
    times['features'] = step('4 frozen-feature cache', [
        python, 'tools/data/extract_features.py', 'configs/mgenet/demo_cached.py', '--split',
        'both', '--seed', str(args.seed), '--out', cache, '--cfg-options', *data_options,
        *cache_options], logs)
    if not osp.isfile(mgenet_ckpt):
        times['mgenet train'] = step('5 train MGENet', [
            python, 'tools/train.py', 'configs/mgenet/demo_cached.py', '--work-dir', mgenet_dir,
            '--seed', str(args.seed), '--cfg-options', f'train_cfg.max_epochs={args.mgenet_epochs}',
            f'train_cfg.val_interval={args.mgenet_epochs}', *data_options, *cache_options], logs)
    times['mgenet test'] = step('6 test MGENet', [
        python, 'tools/test.py', 'configs/mgenet/demo_cached.py', mgenet_ckpt, '--work-dir',
        osp.join(work, 'mgenet_test'), '--cfg-options', *data_options, *cache_options], logs)

    mgenet = latest_results(osp.join(work, 'mgenet_test'))
    stgnf = latest_results(osp.join(work, 'stgnf_test'))
    plots = osp.join(work, 'plots')
    for name, results in (('mgenet', mgenet), ('stgnf', stgnf)):
        step(f'7 plots {name}', [
            python, 'tools/analysis/plot_scores.py', results['run_dir'], '--gt-dir',
            f'{data}/gt/test_frame_mask', '--kind-dir', f'{data}/gt/test_frame_kinds', '--out',
            osp.join(plots, name), '--title', 'MGENet' if name == 'mgenet' else 'STG-NF'], logs)
    rows = table_rows(mgenet, stgnf)
    table = format_table(rows)
    total = time.perf_counter() - start
    summary = dict(seed=args.seed, preset=args.preset, data=data, seconds=times,
                   total_seconds=total, table=[dict(zip(
                       ['name', 'micro_auc', 'macro_auc'] +
                       [f'{m}_auc/{k}' for k in KINDS for m in ('micro', 'macro')], r))
                       for r in rows], mgenet=mgenet, stgnf=stgnf)
    from mgenet_mm.fileio import atomic_write_bytes
    text = json.dumps(summary, indent=2).encode()
    atomic_write_bytes(osp.join(work, 'vad_results.json'), lambda f: f.write(text))
    print(f'\nFrame-level AUC (%) on the synthetic benchmark (seed {args.seed}, '
          f'{args.preset} preset); per kind: normal frames against that kind\n')
    print(table)
    print(f'\nresults: {osp.join(work, "vad_results.json")}\nplots:   {plots}/'
          f'{{mgenet,stgnf}}/score_curves.png, score_histogram.png\n'
          f'time:    {total / 60:.1f} min ({", ".join(f"{k} {v:.0f} s" for k, v in times.items())})')


if __name__ == '__main__':
    main()
