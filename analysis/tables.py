"""Tables 1-5 of the paper regenerated from the MLflow runs: our mIoU, the paper's, and the difference.

    python analysis/tables.py [--tracking-uri URI] [--profile smoke|paper] [--out DIR] [--metrics FILE] [--no-log]
                             [--ui-url URL]

Per table row: the latest FINISHED run of the profile that carries the row's label in its ``tableN`` tag
(analysis/runs.py). The paper's rows, columns and order come from experiments/paper_results.csv (``source``:
``paper`` = LoGoSeg's rows, ``literature`` = other methods, shown with the paper's numbers only). A row with
no run stays empty with the note ``missing``. Writes into DIR: ``tableN.csv`` (every number and run id),
``tableN.md`` (per benchmark ours and ours - paper), ``tableN.tex`` and ``tableN_vs_paper.tex`` (the paper's
layout with our numbers, the second with ours - paper; analysis/latex.py), ``tableN.png`` (ours vs paper),
``table4_heatmap.png``, ``datasets.{csv,md,tex,png}`` (every row on the datasets declared in params.yaml,
analysis/own_data.py) and ``summary.json`` (also to FILE: a DVC stage's metrics file cannot lie
inside its output folder), ``links.{md,json}`` (per table the MLflow UI links to its runs, analysis/links.py);
then logs them to MLflow as a run named ``tables`` (tag ``kind=tables``) in the
grid's experiment.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric

from own_data import dataset_table, declared_datasets, grid_rows, write_dataset_table
from latex import paper_layout
from links import DEFAULT_UI, write_links
from plots import ours_vs_paper, table4_heatmap
from runs import (BENCHMARKS, EXPERIMENT, REPO, TABLES, default_profile, default_tracking_uri, ensure_experiment,
                  finished_runs, table_runs)

PAPER = REPO / 'experiments' / 'paper_results.csv'
DESCRIPTION = ['method', 'vlm', 'feature_backbone', 'training_set', 'additional_data']
TITLES = {'table1': 'Table 1: comparison with the state of the art', 'table2': 'Table 2: core modules',
          'table3': 'Table 3: contextual cross-modal fusion', 'table4': 'Table 4: prior-guided alignment',
          'table5': 'Table 5: training sets'}


def build(paper: pd.DataFrame, ours: pd.DataFrame, profile: str) -> pd.DataFrame:
    """One table in the paper's row order: descriptors, then per benchmark ``<B> ours | <B> paper | <B> diff``.

    ``paper``: that table's rows of paper_results.csv; ``ours``: :func:`runs.table_runs` of that table.
    """
    paper = paper.reset_index(drop=True)
    found = ours.reindex(paper['row']).reset_index(drop=True)
    found[paper['source'] != 'paper'] = np.nan  # literature rows are the paper's numbers only
    # mIoU as MMSeg reports it (2 decimals): runs logged before the metrics were rounded at the source
    # (logoseg.experiments.tracking.metric_value) carry float32 noise such as 11.609999656677246
    found[list(BENCHMARKS.values())] = found[list(BENCHMARKS.values())].astype(float).round(2)
    table = paper[['row', *[c for c in DESCRIPTION if paper[c].notna().any()], 'source']].copy()
    for name in BENCHMARKS.values():
        table[f'{name} ours'] = found[name]
        table[f'{name} paper'] = paper[name]
        # 11.61 - 11.6 is 0.009999999999999787 in binary floats; rounded, then -0.0 (a rounded tiny negative)
        # made +0.0, so the CSV holds 0.01 and 0.0
        table[f'{name} diff'] = (found[name] - paper[name]).round(2) + 0.0
    table['run'], table['run_id'] = found['run'], found['run_id']
    table['note'] = np.select([paper['source'] == 'literature', found['run_id'].isna()],
                              ['literature', f'missing: no FINISHED {profile} run'], '')
    return table


def shown(value: float, signed: bool = False) -> str:
    """``value`` with one decimal as the paper prints it; ``signed``: with its sign (a difference), but never
    ``-0.0`` or ``+0.0`` (-0.04 rounds to -0.0): no difference is ``0.0``."""
    value = round(value, 1) + 0.0  # -0.0 + 0.0 == +0.0
    return f'{value:+.1f}' if signed and value else f'{value:.1f}'


def compared(table: pd.DataFrame, na: str) -> pd.DataFrame:
    """One cell per benchmark as a reader compares: ours and ours - paper (``12.3 (+0.4)``); the paper's
    number on the other methods' rows; ``na`` on a row without a run. The paper's numbers are in the CSV."""
    out = table.drop(columns='run_id').astype(object).fillna('')
    mine = table['source'] == 'paper'
    for name in BENCHMARKS.values():
        value, diff = table[f'{name} ours'].where(mine, table[f'{name} paper']), table[f'{name} diff']
        out[name] = [na if pd.isna(v) else f'{shown(v)} ({shown(d, True)})' if pd.notna(d) else shown(v)
                     for v, d in zip(value, diff)]
    descriptors = out.columns[:out.columns.get_loc(f'{next(iter(BENCHMARKS.values()))} ours')]
    return out[[*descriptors, *BENCHMARKS.values(), 'run', 'note']]


def write(table: pd.DataFrame, name: str, out: Path) -> None:
    """``name``.csv (every number, 2 decimals, and the run id), .md (ours with the difference), .tex (the
    paper's layout, our numbers) and _vs_paper.tex (the same with the differences)."""
    table.to_csv(out / f'{name}.csv', index=False)
    text = compared(table, '—')
    numeric = text.columns.isin(list(BENCHMARKS.values()))
    # verbatim strings ('12.0' stays '12.0'), numbers right-aligned
    (out / f'{name}.md').write_text(text.to_markdown(index=False, disable_numparse=True,
                                                     colalign=np.where(numeric, 'right', 'left')) + '\n')
    (out / f'{name}.tex').write_text(paper_layout(table, name, f'{TITLES[name]}, mIoU (%) of our runs'))
    (out / f'{name}_vs_paper.tex').write_text(
        paper_layout(table, name, f'{TITLES[name]}, mIoU (%) of our runs (ours - paper)', versus=True))


def summarize(table: pd.DataFrame) -> dict:
    rows = table[table['source'] == 'paper']
    diffs = rows[[f'{name} diff' for name in BENCHMARKS.values()]].abs().stack()
    return {'rows': len(rows), 'found': int(rows['run_id'].notna().sum()),
            'missing': rows.loc[rows['run_id'].isna(), 'row'].tolist(),
            'mean_abs_diff': round(float(diffs.mean()), 4) if len(diffs) else None}


def regenerate(paper: pd.DataFrame, runs: pd.DataFrame, profile: str, folder: Path) -> dict:
    """Write every table and figure into ``folder``; returns the summary (also written as summary.json)."""
    summary = {'profile': profile}
    for name in TABLES:
        rows = paper[paper['table'] == name]
        ours = table_runs(runs, name)
        unknown = ours.index.difference(rows.loc[rows['source'] == 'paper', 'row'])
        if len(unknown):
            print(f'tables: {name}: runs {", ".join(ours.loc[unknown, "run"].astype(str))} carry labels not in '
                  f'the paper ({", ".join(map(repr, unknown))}); see experiments/rows.yaml', file=sys.stderr)
        table = build(rows, ours, profile)
        write(table, name, folder)
        ours_vs_paper(table, f'{TITLES[name]} ({profile})', folder / f'{name}.png')
        if name == 'table4':
            table4_heatmap(table, folder / 'table4_heatmap.png')
        summary[name] = summarize(table)
    if datasets := declared_datasets():
        write_dataset_table(dataset_table(runs, datasets, grid_rows()), datasets, folder, profile)
    (folder / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python analysis/tables.py', description=__doc__.split('\n\n')[0])
    parser.add_argument('--tracking-uri', default=default_tracking_uri(),
                        help='MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///<repo>/mlflow.db)')
    parser.add_argument('--profile', default=default_profile(),
                        help="runs of this profile (default: params.yaml's `profile`, else smoke)")
    parser.add_argument('--out', type=Path, help='output folder (default: results/<profile>/tables)')
    parser.add_argument('--metrics', type=Path, help='also write summary.json here (for `dvc metrics`)')
    parser.add_argument('--no-log', action='store_true', help='write nothing to MLflow (no tables run, no saved views)')
    parser.add_argument('--ui-url', default=DEFAULT_UI, help=f'MLflow UI of links.md (default: {DEFAULT_UI})')
    args = parser.parse_args(argv)
    out = args.out or REPO / 'results' / args.profile / 'tables'

    mlflow.set_tracking_uri(args.tracking_uri)
    runs = finished_runs(args.profile)
    if runs.empty:
        print(f'tables: no FINISHED {args.profile!r} runs in experiment {EXPERIMENT!r} at {args.tracking_uri}; '
              'every row is missing', file=sys.stderr)
    # everything goes into a sibling folder swapped in at the end: never a half-written table set under `out`
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=out.parent))
    try:
        summary = regenerate(pd.read_csv(PAPER, dtype={'row': str}), runs, args.profile, tmp)
        experiment = mlflow.get_experiment_by_name(EXPERIMENT)
        # the views with columns are experiment tags: written only where tables.py may write to the store
        links = write_links(tmp, args.profile, args.ui_url, experiment and experiment.experiment_id, TITLES, runs,
                            None if args.no_log else mlflow.MlflowClient(args.tracking_uri))
        if args.metrics:
            args.metrics.parent.mkdir(parents=True, exist_ok=True)
            partial = args.metrics.with_name(f'.{args.metrics.name}.tmp')
            shutil.copyfile(tmp / 'summary.json', partial)
            partial.replace(args.metrics)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'tables: wrote {out}')
    for name in TABLES:
        print(f'  {name}: {summary[name]["found"]}/{summary[name]["rows"]} rows have a run')
        for kind in ('runs', 'view', 'compare'):
            if links[name].get(kind):
                print(f'    {kind}: {links[name][kind]}')

    if not args.no_log:
        # a client, not mlflow.start_run: that would reopen the run named by MLFLOW_RUN_ID if a caller set it
        client = mlflow.MlflowClient(args.tracking_uri)
        run = client.create_run(ensure_experiment(), run_name='tables',
                                tags={'kind': 'tables', 'profile': args.profile}).info.run_id
        try:
            client.log_artifacts(run, str(out))
            client.log_batch(run, metrics=[Metric(f'{name}/{key}', summary[name][key], int(time.time() * 1000), 0)
                                           for name in TABLES for key in ('found', 'mean_abs_diff')
                                           if summary[name][key] is not None])
        except BaseException:
            client.set_terminated(run, 'FAILED')
            raise
        client.set_terminated(run, 'FINISHED')
        print(f'tables: logged to MLflow run {run}')

if __name__ == '__main__':
    main()
