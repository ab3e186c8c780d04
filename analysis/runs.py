"""The grid's runs in MLflow, read by the experiment layer's schema (docs/mlflow.md).

One run per grid row in the experiment ``logoseg``; tag ``profile`` (``smoke`` | ``paper``); tag ``table1`` ..
``table5`` = the paper's row label(s) in that table (several joined with `` | ``); metric ``<benchmark>/mIoU``
per benchmark. This module imports only MLflow and pandas, so the analysis scripts start without torch.
"""
from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]  # the checkout these scripts belong to (an experiment's own copy)
# the store of `dvc exp run --temp/--queue` copies is the repository they were copied from
# (logoseg.experiments.repository.store_root)
STORE = Path(REPO.as_posix().split('/.dvc/tmp/exps/')[0])
EXPERIMENT = 'logoseg'
TABLES = ('table1', 'table2', 'table3', 'table4', 'table5')
# metric prefix -> the paper's column name, in the paper's column order
BENCHMARKS = {'ade847': 'A-847', 'pc459': 'PC-459', 'ade150': 'A-150', 'pc59': 'PC-59', 'voc20': 'PAS-20',
              'voc20b': 'PAS-20b'}
LABEL_SEP = ' | '


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the repository's ``mlflow.db`` (absolute, as the runs log it)."""
    return os.environ.get('MLFLOW_TRACKING_URI') or f'sqlite:///{STORE / "mlflow.db"}'


def default_profile() -> str:
    """The ``profile`` key of ``params.yaml`` (what ``dvc repro`` runs), else ``smoke``."""
    params = REPO / 'params.yaml'
    profile = (yaml.safe_load(params.read_text()) or {}).get('profile') if params.exists() else None
    return profile or 'smoke'


def ensure_experiment() -> str:
    """The experiment's id, created if absent.

    With a sqlite store its artifacts go to ``mlruns/`` beside the database file, not into the working
    directory (MLflow's default), which under ``dvc exp run`` is a temporary copy of the repository.
    """
    if (experiment := mlflow.get_experiment_by_name(EXPERIMENT)) is not None:
        return experiment.experiment_id
    uri = mlflow.get_tracking_uri()
    store = Path(uri.removeprefix('sqlite:///')) if uri.startswith('sqlite:///') else None
    return mlflow.create_experiment(EXPERIMENT, artifact_location=(store.parent / 'mlruns').as_uri() if store else None)


def finished_runs(profile: str) -> pd.DataFrame:
    """FINISHED grid runs of ``profile`` at the current tracking URI, newest first.

    Newest = latest ``end_time``, then latest ``start_time``, then run id, so the choice never depends on
    the store's order. The analysis run itself (tag ``kind=tables``) is left out.
    """
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:  # nothing tracked yet
        return pd.DataFrame(columns=['run_id', 'status', 'start_time', 'end_time'])
    runs = mlflow.search_runs([experiment.experiment_id],
                              filter_string=f"attributes.status = 'FINISHED' and tags.profile = '{profile}'")
    if 'tags.kind' in runs:
        runs = runs[runs['tags.kind'] != 'tables']
    return runs.sort_values(['end_time', 'start_time', 'run_id'], ascending=False, ignore_index=True)


def table_runs(runs: pd.DataFrame, table: str) -> pd.DataFrame:
    """One run per row label of ``table``: the newest of ``runs`` (as sorted by :func:`finished_runs`).

    Returns a frame indexed by row label with columns ``run``, ``run_id`` and the six paper benchmark
    columns (mIoU in percent; NaN where the run has no such metric).
    """
    metrics = {f'metrics.{key}/mIoU': name for key, name in BENCHMARKS.items()}
    columns = {'tags.mlflow.runName': 'run', 'run_id': 'run_id', **metrics}
    tag = f'tags.{table}'
    if tag not in runs:
        return pd.DataFrame(columns=list(columns.values()), index=pd.Index([], name='row'))
    labelled = runs.dropna(subset=[tag]).assign(row=lambda d: d[tag].str.split(LABEL_SEP, regex=False))
    newest = labelled.explode('row').drop_duplicates('row', keep='first').set_index('row')
    return newest.reindex(columns=list(columns)).rename(columns=columns)
