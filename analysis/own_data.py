"""Every grid row on every dataset of your own (``datasets:`` in params.yaml), beside Tables 1-5: a zero-shot
table has no paper numbers to compare with, so it is a table of its own.

    python analysis/own_data.py [--tracking-uri URI] [--profile smoke|paper] [--out DIR]

Per grid row (experiments/rows.yaml order): its newest FINISHED run of the profile (tag ``row``), and per declared
dataset the metrics ``<name>/mIoU`` and ``<name>/hallucination_rate`` that its evaluation logged (empty where the
row was not evaluated on it: the dataset is not in the profile's ``benchmarks``). Writes ``datasets.csv`` (every
number and the run id), ``datasets.md``, ``datasets.tex`` and ``datasets.png`` (mIoU per row and dataset) into DIR
(default results/<profile>/tables; tables.py writes them there with Tables 1-5).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from runs import REPO, default_profile, default_tracking_uri, finished_runs  # noqa: E402

METRICS = {'mIoU': 'mIoU', 'hallucination_rate': 'hallucination'}  # metric -> column suffix
DIGITS = {'mIoU': 2, 'hallucination': 4}  # as logoseg.experiments.tracking.metric_value rounds them


def declared_datasets(root: Path = REPO) -> list[str]:
    params = yaml.safe_load((root / 'params.yaml').read_text()) or {}
    return list(params.get('datasets') or {})


def grid_rows(root: Path = REPO) -> list[str]:
    return list((yaml.safe_load((root / 'experiments' / 'rows.yaml').read_text()) or {}).get('rows') or {})


def dataset_table(runs: pd.DataFrame, datasets: list[str], rows: list[str]) -> pd.DataFrame:
    """One line per grid row (``rows`` order, then rows no longer in the grid), its newest run's figures per
    dataset: ``<name> mIoU`` (percent, 2 decimals) and ``<name> hallucination`` (fraction of images, 4)."""
    columns = {f'metrics.{name}/{metric}': f'{name} {label}' for name in datasets for metric, label in METRICS.items()}
    if runs.empty or 'tags.row' not in runs:
        newest = pd.DataFrame(columns=['row', 'run', 'run_id', *columns.values()])
    else:
        newest = runs.dropna(subset=['tags.row']).drop_duplicates('tags.row', keep='first')
        newest = newest.reindex(columns=['tags.row', 'tags.mlflow.runName', 'run_id', *columns])
        newest = newest.rename(columns={'tags.row': 'row', 'tags.mlflow.runName': 'run', **columns})
    order = rows + sorted(set(newest['row']) - set(rows))
    table = newest.set_index('row').reindex(order).rename_axis('row').reset_index()
    for name in datasets:
        table[f'{name} mIoU'] = table[f'{name} mIoU'].astype(float).round(2)
        table[f'{name} hallucination'] = table[f'{name} hallucination'].astype(float).round(4)
    return table[['row', *columns.values(), 'run', 'run_id']]


def write_dataset_table(table: pd.DataFrame, datasets: list[str], folder: Path, profile: str) -> None:
    """datasets.csv / .md / .tex / .png in ``folder``."""
    table.to_csv(folder / 'datasets.csv', index=False)
    text = shown(table, '—').drop(columns=['run', 'run_id'])  # runs are named by their row; the CSV has both
    numeric = ['right' if c.endswith(tuple(DIGITS)) else 'left' for c in text.columns]
    (folder / 'datasets.md').write_text(text.to_markdown(index=False, disable_numparse=True, colalign=numeric) + '\n')
    numbers = shown(table, '--').drop(columns=['run', 'run_id']).set_index('row').rename_axis(None)
    numbers.columns = pd.MultiIndex.from_tuples([tuple(c.rsplit(' ', 1)) for c in numbers.columns])
    (folder / 'datasets.tex').write_text(numbers.to_latex(
        multicolumn_format='c', escape=True, column_format='l' + 'r' * len(numbers.columns),
        caption=f'Zero-shot results on our own datasets ({profile} profile): mIoU (\\%) and hallucination rate',
        label='tab:own-datasets'))
    figure(table, datasets, folder / 'datasets.png', profile)


def shown(table: pd.DataFrame, na: str) -> pd.DataFrame:
    """The numbers as text at the precision they are logged with; ``na`` where a row has no figure."""
    text = table.astype(object)
    for column, digits in DIGITS.items():
        for name in [c for c in table.columns if c.endswith(f' {column}')]:
            text[name] = [na if pd.isna(v) else f'{v:.{digits}f}' for v in table[name]]
    return text.fillna(na)


def figure(table: pd.DataFrame, datasets: list[str], path: Path, profile: str) -> None:
    miou = table.set_index('row')[[f'{name} mIoU' for name in datasets]].set_axis(datasets, axis=1)
    fig, ax = plt.subplots(figsize=(6 + len(datasets), 0.35 * len(miou) + 1.5))
    miou.plot.barh(ax=ax, width=0.8)
    ax.invert_yaxis()  # the grid's row order, top to bottom
    ax.set_xlabel('mIoU (%)')
    ax.set_ylabel('')
    ax.set_title(f'Grid rows on your own datasets ({profile}); no bar: not evaluated')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog='python analysis/own_data.py', description=__doc__.split('\n\n')[0])
    parser.add_argument('--tracking-uri', default=default_tracking_uri(), help='MLflow tracking URI')
    parser.add_argument('--profile', default=default_profile(), help="runs of this profile (default: params.yaml's)")
    parser.add_argument('--out', type=Path, help='output folder (default: results/<profile>/tables)')
    args = parser.parse_args(argv)
    out = args.out or REPO / 'results' / args.profile / 'tables'
    out.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(args.tracking_uri)
    datasets = declared_datasets()
    write_dataset_table(dataset_table(finished_runs(args.profile), datasets, grid_rows()), datasets, out,
                        args.profile)
    print(f'datasets: wrote {out}/datasets.{{csv,md,tex,png}}')


if __name__ == '__main__':
    main()
