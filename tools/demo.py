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
   numbers (per event type too), and PNG plots (score curves with the ground truth shaded, score
   histograms).

The training steps run with ``--no-validate``: step 3 and step 6 evaluate the final checkpoints
once, instead of a second, identical evaluation at the last training epoch.

With ``--mgenet-config CONFIG`` steps 4-7 train and test another MGENet config on the same
benchmark, STG-NF and feature cache (a config that inherits ``demo_cached.py``, e.g.
``demo_cached_rgb-bsmm.py``), into folders named after it (``--variant``, default the config's
name): ``<work-dir>/<variant>``, ``<variant>_test``, ``plots/<variant>``,
``vad_results_<variant>.json`` and ``<work-dir>_seeds_<variant>``; the default config keeps the
names above.

With ``--seeds S [S ...]`` steps 1-7 run once per seed (data, STG-NF and MGENet each seeded;
seed 0 in ``--data`` and ``--work-dir`` themselves, so a finished ``make demo`` is reused, any
other seed s in ``<data>_seed<s>`` and ``<work-dir>_seed<s>``), then the report: every cell of
the table as mean +- std over the seeds (sample std, ddof=1), the per-event-type micro AUCs the
same way, and a clip-level bootstrap 95 % interval of the micro AUCs for the first seed
(resampled test clips, :func:`mgenet_mm.evaluation.functional.clip_bootstrap_aucs`). It goes to
``<work-dir>_seeds/vad_results.json`` and, as markdown tables, ``<work-dir>_seeds/tables.md``.
With ``--report-only`` no step runs: the report is made again from the seeds' finished runs.

Example:
    python tools/demo.py                      # what `make demo` runs: one seed
    python tools/demo.py --preset tiny --stgnf-epochs 1 --mgenet-epochs 1   # a quick check
    python tools/demo.py --seeds 0 1 2        # mean +- std over three seeds, intervals
    python tools/demo.py --seeds 0 1 2 --mgenet-config configs/mgenet/demo_cached_rgb-bsmm.py
"""
import argparse
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np


def _report():
    """The report module, imported late: it imports the whole package (torch, mmaction), which
    the steps do in their own processes; --help and the steps' parent stay light."""
    from mgenet_mm.evaluation import seed_report
    return seed_report


REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_MGENET_CONFIG = 'configs/mgenet/demo_cached.py'
#: BSMM items of the MGENet steps on the tiny preset (see run_seed)
TINY_BSMM_ITEMS = 8


# --------------------------------------------------------------------------------------------
# Running the tools
# --------------------------------------------------------------------------------------------
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


def seed_paths(data: str, work_dir: str, seed: int) -> Tuple[str, str]:
    """Data and work folders of one seed of ``--seeds``: seed 0 uses ``data`` and ``work_dir``
    themselves (a finished single-seed demo is reused), seed s any other: ``<data>_seed<s>``
    and ``<work_dir>_seed<s>``."""
    data, work_dir = data.rstrip('/\\') or data, work_dir.rstrip('/\\') or work_dir
    if seed == 0:
        return data, work_dir
    return f'{data}_seed{seed}', f'{work_dir}_seed{seed}'


def variant_name(mgenet_config: str, variant: Optional[str] = None) -> str:
    """The folder name of an MGENet config's runs: ``mgenet`` for the default config, else
    ``variant`` or the config's file name without ``.py``."""
    if variant:
        return variant
    if osp.normpath(mgenet_config) == osp.normpath(DEFAULT_MGENET_CONFIG):
        return 'mgenet'
    return osp.splitext(osp.basename(mgenet_config))[0]


def variant_file(variant: str, name: str = 'vad_results.json') -> str:
    """``name`` for the default variant, ``<stem>_<variant><ext>`` for any other."""
    if variant == 'mgenet':
        return name
    stem, ext = osp.splitext(name)
    return f'{stem}_{variant}{ext}'


def _write_json(path: str, payload: Dict) -> None:
    from mgenet_mm.fileio import atomic_write_bytes
    text = json.dumps(payload, indent=2).encode()
    atomic_write_bytes(path, lambda f: f.write(text))


def run_seed(args: argparse.Namespace, seed: int, data: str, work: str) -> Dict:
    """Steps 1-7 for one seed: the summary written to ``<work>/vad_results.json``."""
    python = sys.executable
    tables = _report()
    if args.fresh and osp.isdir(work):
        shutil.rmtree(work)
    logs = osp.join(work, 'logs')
    stgnf_dir = osp.join(work, 'stgnf')
    variant = variant_name(args.mgenet_config, args.variant)
    mgenet_dir = osp.join(work, variant)
    label = 'MGENet' if variant == 'mgenet' else variant  # the step titles and log names
    stgnf_ckpt = osp.join(stgnf_dir, f'epoch_{args.stgnf_epochs}.pth')
    mgenet_ckpt = osp.join(mgenet_dir, f'epoch_{args.mgenet_epochs}.pth')
    times = {}
    start = time.perf_counter()

    times['benchmark'] = step('1 benchmark: make_synthetic', [
        python, 'tools/data/make_synthetic.py', '--out', data, '--seed', str(seed),
        '--preset', args.preset, '--update', '--workers', str(min(2, os.cpu_count() or 1))],
        logs)
    gt = f'{data}/gt'
    events = f'{gt}/test_frame_events'
    if not osp.isfile(f'{events}/names.json'):  # a benchmark older than the event labels
        print(f'(no {events}/names.json: no per-event-type AUCs)', flush=True)
        events = 'None'
    # Training runs with --no-validate (val_cfg, val_dataloader, val_evaluator = None) and gets
    # the training data only: a val_* option there is a TypeError of mmengine's config merge.
    # The test split goes to the steps that evaluate it (tools/test.py, the feature cache); no
    # step runs a validation loop, so no step gets val_* options.
    train_options = [f'train_dataloader.dataset.data_root={data}']
    eval_options = [f'test_dataloader.dataset.data_root={data}',
                    f'test_evaluator.gt_dir={gt}/test_frame_mask',
                    f'test_evaluator.kind_dir={gt}/test_frame_kinds',
                    f'test_evaluator.event_dir={events}']
    cache = osp.join(work, 'features')
    train_cache = [f'feature_cache_root={cache}',
                   f'train_dataloader.dataset.pipeline.0.cache_dir={cache}/train',
                   f'model.guidance.init_cfg.checkpoint={stgnf_ckpt}']
    eval_cache = [f'test_dataloader.dataset.pipeline.0.cache_dir={cache}/test']
    # The tiny preset has 43 training windows: in a BSMM of 64 items each would seed an item of
    # its own, the nearest-pair S_mm of every training window would be 0 and its calibration
    # would have no spread. A BSMM of 8 items stores patterns, as on the default preset.
    model_options = [f'model.bsmm.num_items={TINY_BSMM_ITEMS}'] if args.preset == 'tiny' else []

    if not osp.isfile(stgnf_ckpt):
        times['stgnf train'] = step('2 train STG-NF', [
            python, 'tools/train.py', 'configs/stgnf/stgnf_demo.py', '--work-dir', stgnf_dir,
            '--seed', str(seed), '--no-validate', '--cfg-options',
            f'train_cfg.max_epochs={args.stgnf_epochs}', *train_options], logs)
    times['stgnf test'] = step('3 test STG-NF alone', [
        python, 'tools/test.py', 'configs/stgnf/stgnf_demo.py', stgnf_ckpt, '--work-dir',
        osp.join(work, 'stgnf_test'), '--cfg-options', *train_options, *eval_options], logs)
    times['features'] = step('4 frozen-feature cache', [
        python, 'tools/data/extract_features.py', args.mgenet_config, '--split',
        'both', '--seed', str(seed), '--out', cache, '--cfg-options', *train_options,
        *eval_options, *train_cache, *eval_cache], logs)
    if not osp.isfile(mgenet_ckpt):
        times['mgenet train'] = step(f'5 train {label}', [
            python, 'tools/train.py', args.mgenet_config, '--work-dir', mgenet_dir,
            '--seed', str(seed), '--no-validate', '--cfg-options',
            f'train_cfg.max_epochs={args.mgenet_epochs}', *train_options, *train_cache,
            *model_options], logs)
    times['mgenet test'] = step(f'6 test {label}', [
        python, 'tools/test.py', args.mgenet_config, mgenet_ckpt, '--work-dir',
        mgenet_dir + '_test', '--cfg-options', *train_options, *eval_options,
        *train_cache, *eval_cache, *model_options], logs)

    mgenet = latest_results(mgenet_dir + '_test')
    stgnf = latest_results(osp.join(work, 'stgnf_test'))
    plots = osp.join(work, 'plots')
    for name, results in ((variant, mgenet), ('stgnf', stgnf)):
        step(f'7 plots {name}', [
            python, 'tools/analysis/plot_scores.py', results['run_dir'], '--gt-dir',
            f'{gt}/test_frame_mask', '--kind-dir', f'{gt}/test_frame_kinds', '--out',
            osp.join(plots, name), '--title', 'STG-NF' if name == 'stgnf' else 'MGENet'], logs)
    rows = tables.table_rows(mgenet, stgnf)
    total = time.perf_counter() - start
    summary = dict(seed=seed, preset=args.preset, data=data, work_dir=work,
                   mgenet_config=args.mgenet_config, variant=variant, seconds=times,
                   total_seconds=total,
                   table=[dict(zip(['name'] + tables.COLUMNS, r)) for r in rows],
                   mgenet=mgenet, stgnf=stgnf)
    results_path = osp.join(work, variant_file(variant))
    _write_json(results_path, summary)
    print(f'\nFrame-level AUC (%) on the synthetic benchmark (seed {seed}, '
          f'{args.preset} preset); per kind: normal frames against that kind\n')
    print(tables.format_table(rows))
    spent = ', '.join(f'{k} {v:.0f} s' for k, v in times.items())
    print(f'\nresults: {results_path}\nplots:   {plots}/'
          f'{{{variant},stgnf}}/score_curves.png, score_histogram.png\n'
          f'time:    {total / 60:.1f} min ({spent})')
    return summary


def load_summary(path: str, seed: int) -> Dict:
    """A finished seed's summary (``--report-only``), checked to be that seed's."""
    if not osp.isfile(path):
        raise SystemExit(f'--report-only: seed {seed} has no finished run ({path} not found); '
                         'run it first (without --report-only)')
    with open(path) as f:
        summary = json.load(f)
    if summary.get('seed') != seed:
        raise SystemExit(f'--report-only: {path} is the run of seed {summary.get("seed")}, '
                         f'not of seed {seed}')
    return summary


def load_bootstrap_inputs(mgenet_run: str, stgnf_run: str, data: str) -> Tuple[
        Dict[str, Dict[str, np.ndarray]], Dict[str, np.ndarray], Optional[Dict[str, np.ndarray]]]:
    """The final per-frame scores of every table row, and the ground truth of their clips.

    Args:
        mgenet_run: The MGENet test run folder (``vad_frame_scores.npz``, and
            ``vad_component_frame_scores.npz`` with the components alone).
        stgnf_run: The STG-NF test run folder.
        data: The benchmark of that seed (``gt/test_frame_mask``, ``gt/test_frame_kinds``).

    Returns:
        ``(scores, masks, kinds)``: row -> clip -> (F,) scores; clip -> (F,) mask; clip -> (F,)
        kinds, or None without a kinds folder.
    """
    tables = _report()
    scores: Dict[str, Dict[str, np.ndarray]] = {}
    with np.load(osp.join(mgenet_run, 'vad_frame_scores.npz')) as final:
        scores[tables.MGENET_ROW] = {clip: final[clip] for clip in final.files}
    alone_path = osp.join(mgenet_run, 'vad_component_frame_scores.npz')
    if osp.isfile(alone_path):
        labels = dict(tables.COMPONENT_ROWS)
        with np.load(alone_path) as alone:
            for key in sorted(alone.files):
                component, clip = key.rsplit('/', 1)  # clip names hold no '/'
                row = labels.get(component, f'S_{component} alone')
                scores.setdefault(row, {})[clip] = alone[key]
        order = [tables.MGENET_ROW] + [label for _, label in tables.COMPONENT_ROWS]
        scores = dict(sorted(scores.items(), key=lambda kv: order.index(kv[0])
                             if kv[0] in order else len(order)))
    with np.load(osp.join(stgnf_run, 'vad_frame_scores.npz')) as final:
        scores[tables.STGNF_ROW] = {clip: final[clip] for clip in final.files}
    clips = sorted({clip for per_clip in scores.values() for clip in per_clip})
    masks = {c: np.load(osp.join(data, 'gt', 'test_frame_mask', f'{c}.npy')) for c in clips}
    kind_dir = osp.join(data, 'gt', 'test_frame_kinds')
    kinds = ({c: np.load(osp.join(kind_dir, f'{c}.npy')) for c in clips}
             if osp.isdir(kind_dir) else None)
    return scores, masks, kinds


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', default='data/synthetic', help='benchmark folder')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--preset', default='default', choices=('default', 'tiny'))
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument('--seed', type=int, default=0, help='the seed of a single run')
    seeds.add_argument(
        '--seeds', type=int, nargs='+', metavar='S',
        help='run the whole pipeline once per seed, then report mean +- std over the seeds '
        'and a clip-bootstrap interval for the first one. Seed 0 uses --data and --work-dir '
        'themselves (a finished `make demo` is reused), any other seed S uses <data>_seed<S> and '
        '<work-dir>_seed<S>; the report goes to <work-dir>_seeds/ (vad_results.json, tables.md)')
    parser.add_argument('--bootstrap-resamples', type=int, default=1000,
                        help='clip-bootstrap resamples of --seeds (default 1000)')
    parser.add_argument('--stgnf-epochs', type=int, default=6)
    parser.add_argument('--mgenet-epochs', type=int, default=10)
    parser.add_argument('--mgenet-config', default=DEFAULT_MGENET_CONFIG,
                        help='the cached MGENet config of steps 4-7 (default %(default)s)')
    parser.add_argument('--variant', help='folder name of its runs (default: mgenet for the '
                        'default config, else the config\'s file name)')
    parser.add_argument('--report-only', action='store_true',
                        help='with --seeds: run no step, make the report from the seeds\' '
                        'finished runs (their vad_results*.json)')
    parser.add_argument('--fresh', action='store_true',
                        help='delete the work dir(s) (not the data) and run every step again')
    args = parser.parse_args(argv)
    if args.variant is not None and (not re.fullmatch(r'[A-Za-z0-9_-]+', args.variant)
                                     or args.variant in ('stgnf', 'features', 'logs', 'plots')):
        parser.error(f'--variant {args.variant!r}: a folder name of letters, digits, _ and -, '
                     'not one of the demo\'s own folders (stgnf, features, logs, plots)')
    if not osp.isfile(osp.join(REPO, args.mgenet_config)) and not osp.isfile(args.mgenet_config):
        parser.error(f'--mgenet-config {args.mgenet_config}: no such config file')
    if args.report_only and (args.seeds is None or args.fresh):
        parser.error('--report-only needs --seeds and excludes --fresh')
    if args.seeds is not None and len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds lists a seed twice: {args.seeds}')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    data, work = osp.abspath(args.data), osp.abspath(args.work_dir)
    if args.seeds is None:
        run_seed(args, args.seed, data, work)
        return
    start = time.perf_counter()
    variant = variant_name(args.mgenet_config, args.variant)
    summaries = []
    for seed in args.seeds:
        seed_data, seed_work = seed_paths(data, work, seed)
        if args.report_only:
            summaries.append(load_summary(osp.join(seed_work, variant_file(variant)), seed))
            continue
        print(f'\n##### seed {seed}: data {seed_data}, work dir {seed_work}', flush=True)
        summaries.append(run_seed(args, seed, seed_data, seed_work))
    first = summaries[0]
    tables = _report()
    scores, masks, kinds = load_bootstrap_inputs(first['mgenet']['run_dir'],
                                                 first['stgnf']['run_dir'], first['data'])
    intervals = tables.bootstrap_intervals(scores, masks, kinds, args.bootstrap_resamples)
    report = tables.seeds_report(summaries, intervals, args.bootstrap_resamples)
    report['total_seconds'] = time.perf_counter() - start
    out = work + ('_seeds' if variant == 'mgenet' else f'_seeds_{variant}')
    os.makedirs(out, exist_ok=True)
    _write_json(osp.join(out, 'vad_results.json'), report)
    markdown = tables.report_tables(report, markdown=True).encode()
    from mgenet_mm.fileio import atomic_write_bytes
    atomic_write_bytes(osp.join(out, 'tables.md'), lambda f: f.write(markdown))
    print('\n' + tables.report_tables(report))
    print(f'results: {osp.join(out, "vad_results.json")}\ntables:  {osp.join(out, "tables.md")}'
          f'\ntime:    {report["total_seconds"] / 60:.1f} min')


if __name__ == '__main__':
    main()
