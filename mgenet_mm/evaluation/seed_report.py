"""Tables of the demo's runs (``tools/demo.py``): pure functions on its result dicts.

- one seed's table (:func:`table_rows`, :func:`format_table`): MGENet, each score component
  alone and STG-NF alone, micro and macro frame AUCs overall and per anomaly kind;
- mean +- std over seeds (:func:`mean_std`, :func:`format_mean_std`), the std with ddof=1
  (sample std: three seeds are a sample, not the population);
- per-event-type columns (:func:`event_columns`): ``micro_auc/<event>`` of every event type
  some seed's results name (e.g. ``micro_auc/appearance/box``);
- clip-bootstrap intervals (:func:`bootstrap_intervals`, :func:`format_intervals`) via
  :func:`mgenet_mm.evaluation.functional.clip_bootstrap_aucs`;
- the multi-seed report (:func:`seeds_report`, the JSON payload) and its tables
  (:func:`report_tables`, plain text or markdown).

Nothing here reads files or runs tools: ``tools/demo.py`` does, and calls these.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .functional import clip_bootstrap_aucs

KINDS = ('motion', 'appearance', 'scene')
MGENET_ROW = 'MGENet (eq. 16)'
STGNF_ROW = 'STG-NF alone'
COMPONENT_ROWS = (('mo', 'S_mo alone'), ('app', 'S_app alone'), ('mm', 'S_mm alone'))
#: The cells of the demo table: micro and macro overall, then micro and macro per kind.
COLUMNS = ['micro_auc', 'macro_auc'] + [f'{m}_auc/{k}' for k in KINDS for m in ('micro', 'macro')]
#: The cells of the bootstrap table: micro overall and per kind.
BOOTSTRAP_COLUMNS = ['micro_auc'] + [f'micro_auc/{k}' for k in KINDS]
#: Code of ``gt/test_frame_kinds`` (1, 2, 3; 0 = normal) -> kind.
KIND_NAMES = {i + 1: kind for i, kind in enumerate(KINDS)}

Cells = Dict[str, Dict[str, Optional[float]]]  # row -> column -> value (None: missing)


def result_rows(mgenet: Dict, stgnf: Dict) -> List[Tuple[str, Dict, str]]:
    """(row name, metrics, key suffix): MGENet, each component it reports, STG-NF."""
    rows = [(MGENET_ROW, mgenet['metrics'], '')]
    rows += [(label, mgenet['metrics'], f'_{component}') for component, label in COMPONENT_ROWS
             if f'micro_auc_{component}' in mgenet['metrics']]
    return rows + [(STGNF_ROW, stgnf['metrics'], '')]


def row_cells(mgenet: Dict, stgnf: Dict, columns: Sequence[str]) -> Cells:
    """Row -> column -> value of the two test runs' results (None where a key is absent)."""
    return {name: {c: metrics.get(f'{c}{suffix}') for c in columns}
            for name, metrics, suffix in result_rows(mgenet, stgnf)}


def table_rows(mgenet: Dict, stgnf: Dict) -> List[List]:
    """Rows: name, micro, macro, then micro and macro per kind."""
    return [[name] + list(cells.values())
            for name, cells in row_cells(mgenet, stgnf, COLUMNS).items()]


def event_columns(summaries: Sequence[Dict]) -> List[str]:
    """``micro_auc/<event>`` of every event type named in any seed's results, by event code."""
    found: Dict[str, int] = {}
    for summary in summaries:
        for run in (summary['mgenet'], summary['stgnf']):
            for code, name in (run.get('event_names') or {}).items():
                found.setdefault(name, int(code))
    return [f'micro_auc/{name}' for name, _ in sorted(found.items(), key=lambda kv: kv[1])]


def mean_std(per_seed: Sequence[Cells]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Per cell, mean and sample std (ddof=1) over the seeds where it is present.

    Returns:
        Row -> column -> ``dict(mean, std, n)``; ``std`` is None when fewer than two seeds
        have the cell, ``mean`` is None when none has it. Rows and columns keep the order in
        which the seeds first list them.
    """
    rows: Dict[str, List[str]] = {}
    for cells in per_seed:
        for row, values in cells.items():
            columns = rows.setdefault(row, [])
            columns += [c for c in values if c not in columns]
    stats: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for row, columns in rows.items():
        stats[row] = {}
        for column in columns:
            values = [cells[row][column] for cells in per_seed
                      if row in cells and cells[row].get(column) is not None]
            stats[row][column] = dict(
                mean=float(np.mean(values)) if values else None,
                std=float(np.std(values, ddof=1)) if len(values) > 1 else None, n=len(values))
    return stats


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                 markdown: bool = False) -> str:
    """Aligned plain-text columns (first left, others right), or a markdown table."""
    if markdown:
        lines = ['| ' + ' | '.join(header) + ' |',
                 '|' + '|'.join([' --- '] + [' ---: '] * (len(header) - 1)) + '|']
        return '\n'.join(lines + ['| ' + ' | '.join(r) + ' |' for r in rows])
    cells = [list(header)] + [list(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ['  '.join(c[i].rjust(widths[i]) if i else c[i].ljust(widths[i])
                       for i in range(len(c))) for c in cells]
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)


def column_header(column: str) -> str:
    """'micro_auc' -> 'micro'; 'macro_auc/motion' -> 'motion macro'; events keep their name."""
    metric, _, label = column.partition('/')
    metric = metric.replace('_auc', '')
    if not label:
        return metric
    return f'{label} {metric}' if label in KINDS else label


def format_table(rows: List[List]) -> str:
    """The single-seed table of :func:`table_rows`, in %."""
    header = [''] + [column_header(c) for c in COLUMNS]
    return render_table(header, [[r[0]] + ['-' if v is None else f'{100 * v:.1f}' for v in r[1:]]
                                 for r in rows])


def format_mean_std(stats: Dict[str, Dict[str, Dict[str, Any]]], columns: Sequence[str],
                    num_seeds: int, markdown: bool = False) -> str:
    """Cells 'mean +- std' in % ('±' in markdown); '-' where no seed has the cell; a cell that
    some seeds lack gets a '*' (its mean is over the others), one seed only: no std."""
    plus_minus = ' ± ' if markdown else ' +- '
    rows = []
    for row, cells in stats.items():
        line = [row]
        for column in columns:
            cell = cells.get(column)
            if cell is None or cell['mean'] is None:
                line.append('-')
                continue
            text = f'{100 * cell["mean"]:.1f}'
            if cell['std'] is not None:
                text += f'{plus_minus}{100 * cell["std"]:.1f}'
            line.append(text + ('*' if cell['n'] < num_seeds else ''))
        rows.append(line)
    return render_table([''] + [column_header(c) for c in columns], rows, markdown)


def format_intervals(intervals: Dict[str, Dict[str, Dict[str, Any]]], columns: Sequence[str],
                     markdown: bool = False) -> str:
    """Cells 'point [low, high]' in %; '-' where the AUC or its interval is undefined."""
    rows = []
    for row, cells in intervals.items():
        line = [row]
        for column in columns:
            cell = cells.get(column)
            if cell is None or cell.get('low') is None:
                line.append('-')
            else:
                line.append(f'{100 * cell["point"]:.1f} [{100 * cell["low"]:.1f}, '
                            f'{100 * cell["high"]:.1f}]')
        rows.append(line)
    return render_table([''] + [column_header(c) for c in columns], rows, markdown)


def bootstrap_intervals(scores: Dict[str, Dict[str, np.ndarray]], masks: Dict[str, np.ndarray],
                        kinds: Optional[Dict[str, np.ndarray]], num_resamples: int = 1000,
                        level: float = 0.95, seed: int = 0) -> Dict[str, Dict[str, Dict]]:
    """Row -> ``micro_auc`` / ``micro_auc/<kind>`` -> clip-bootstrap interval (same resamples
    for every row: the seed and the clips are the same)."""
    return {row: clip_bootstrap_aucs(per_clip, {c: masks[c] for c in per_clip},
                                     None if kinds is None else {c: kinds[c] for c in per_clip},
                                     None if kinds is None else KIND_NAMES,
                                     num_resamples=num_resamples, level=level, seed=seed)
            for row, per_clip in scores.items()}


def seeds_report(summaries: Sequence[Dict], intervals: Dict[str, Dict[str, Dict]],
                 num_resamples: int, level: float = 0.95) -> Dict:
    """The payload of ``<work-dir>_seeds/vad_results.json`` from the per-seed summaries (as
    ``run_seed`` of ``tools/demo.py`` returns them) and the first seed's bootstrap intervals.

    Keys: ``seeds``, ``preset``, ``std_ddof`` (1), ``columns`` (the cells of the demo table),
    ``event_columns`` (``micro_auc/<event>`` of the event types present in some seed),
    ``runs`` (seed -> data, work dir, test run folders, seconds), ``per_seed`` (seed -> row ->
    column -> value or None), ``mean_std`` (row -> column -> ``dict(mean, std, n)``, see
    :func:`mean_std`) and ``bootstrap`` (``seed``, ``level``, ``num_resamples``,
    ``resample_seed``, ``rows``: row -> column -> interval, see :func:`bootstrap_intervals`).
    """
    named = event_columns(summaries)
    cells = [row_cells(s['mgenet'], s['stgnf'], named) for s in summaries]
    # Only event types that occur in some seed's test set (names.json lists all of them).
    events = [c for c in named if any(v[c] is not None for seed in cells for v in seed.values())]
    per_seed = [row_cells(s['mgenet'], s['stgnf'], COLUMNS + events) for s in summaries]
    return dict(
        seeds=[s['seed'] for s in summaries], preset=summaries[0].get('preset'), std_ddof=1,
        columns=COLUMNS, event_columns=events,
        runs={str(s['seed']): dict(data=s.get('data'), work_dir=s.get('work_dir'),
                                   mgenet_run=s['mgenet'].get('run_dir'),
                                   stgnf_run=s['stgnf'].get('run_dir'),
                                   total_seconds=s.get('total_seconds')) for s in summaries},
        per_seed={str(s['seed']): cells for s, cells in zip(summaries, per_seed)},
        mean_std=mean_std(per_seed),
        bootstrap=dict(seed=summaries[0]['seed'], level=level, num_resamples=num_resamples,
                       resample_seed=0, rows=intervals))


def report_tables(report: Dict, markdown: bool = False) -> str:
    """The three tables of a :func:`seeds_report`, with their captions."""
    seeds = report['seeds']
    num = len(seeds)
    seed_list = ', '.join(str(s) for s in seeds)
    boot = report['bootstrap']
    parts = [
        f'Frame-level AUC (%), mean ± std over {num} seeds ({seed_list}; std with ddof=1), '
        f'{report["preset"]} preset; per kind: normal frames against that kind',
        format_mean_std(report['mean_std'], report['columns'], num, markdown),
        f'Micro AUC (%) per event type, mean ± std over the {num} seeds: normal frames against '
        'the frames of that event',
        format_mean_std(report['mean_std'], report['event_columns'], num, markdown)
        if report['event_columns'] else '(no per-event labels in these benchmarks)',
        f'Micro AUC (%) with a clip-level bootstrap {100 * boot["level"]:.0f} % interval '
        f'(seed {boot["seed"]}, {boot["num_resamples"]} resamples of the test clips)',
        format_intervals(boot['rows'], BOOTSTRAP_COLUMNS, markdown),
    ]
    if not markdown:
        parts = [p.replace('±', '+-') for p in parts]
    footnote = ('A value marked * is missing in some seeds (its mean is over the others); '
                '"-": missing or undefined.')
    return '\n\n'.join(parts + [footnote]) + '\n'

