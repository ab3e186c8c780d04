"""MLflow UI links that open each paper table: its runs in the experiment's runs view, and the compare view of
the runs the table shows (docs/mlflow.md).

The UI is a single-page app; what a link can set is what its pages read from the URL (MLflow 3.17):
- the runs view ``#/experiments/<id>/runs`` reads ``searchFilter`` (the search box; public since MLflow 2);
- every experiment page reads ``workflowType`` (``machine_learning`` = "Model training", else the GenAI view,
  a traces overview that is empty for training runs): internal to MLflow 3, hence the pin in pyproject.toml
  and tests/analysis/test_links.py, which fails when the installed UI bundle no longer reads it;
- the compare view ``#/compare-runs?runs=[..]&experiments=[..]`` (the route the UI's own "Compare" button
  builds; ``runs`` must be the first parameter, the page parses ``?runs``);
- ``viewStateShareKey``: a view saved as the experiment tag ``mlflow.sharedViewState.<key>`` (what the UI's
  "Share" button writes), the only way a link selects columns: the UI keeps them in the browser otherwise. Also
  internal; the runs view ignores the saved view when the URL also holds a search facet such as
  ``searchFilter`` (the view holds the filter), so the view is a third link, saved only when tables.py may
  write to the store (not with ``--no-log``). All three links were checked in headless Chromium (3.17.2).
"""
from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pandas as pd

from runs import BENCHMARKS, TABLES

DEFAULT_UI = 'http://127.0.0.1:5000'  # what `mlflow ui` serves
ML_VIEW = 'machine_learning'
SHARED_VIEW_TAG = 'mlflow.sharedViewState.'  # + key: the UI's saved views (experiment tags)


def runs_filter(table: str, profile: str) -> str:
    """The search filter for ``table``'s FINISHED grid runs of ``profile`` (what analysis/runs.py reads).

    The analysis run that tables.py logs (named ``tables``, tag ``kind=tables``) is left out by its name: a tag
    test (``tags.kind != 'tables'``) would also drop every run without that tag, i.e. all grid runs.
    """
    return (f"tags.{table} LIKE '%' and tags.profile = '{profile}' and attributes.status = 'FINISHED' "
            "and attributes.run_name != 'tables'")


def _query(params: list[tuple[str, str]]) -> str:
    # everything percent-encoded (`'`, `%`, `=`, spaces), so no browser or chat client rewrites the link
    return '&'.join(f'{key}={urllib.parse.quote(value, safe="")}' for key, value in params)


def runs_link(ui: str, experiment_id: str, table: str, profile: str) -> str:
    """The experiment's runs view in the "Model training" view, filtered to ``table``'s runs."""
    return (f'{ui.rstrip("/")}/#/experiments/{experiment_id}/runs?'
            + _query([('searchFilter', runs_filter(table, profile)), ('workflowType', ML_VIEW)]))


def compare_link(ui: str, experiment_id: str, run_ids: list[str]) -> str:
    """The compare view of ``run_ids`` (``runs`` first: the page reads it as ``?runs``)."""
    return (f'{ui.rstrip("/")}/#/compare-runs?'
            + _query([('runs', json.dumps(run_ids, separators=(',', ':'))),
                      ('experiments', json.dumps([experiment_id], separators=(',', ':'))),
                      ('workflowType', ML_VIEW)]))


def view_link(ui: str, experiment_id: str, key: str) -> str:
    """The runs view as saved under ``key`` (:func:`save_view`), in the "Model training" view."""
    return (f'{ui.rstrip("/")}/#/experiments/{experiment_id}/runs?'
            + _query([('viewStateShareKey', key), ('workflowType', ML_VIEW)]))


def column(kind: str, key: str) -> str:
    """A column id of the runs table, as the UI builds it: ``metrics.`ade150/mIoU```."""
    return f'{kind}.`{key}`'


def knobs(runs: pd.DataFrame, run_ids: list[str]) -> list[str]:
    """The params that tell the table's shown runs apart (Table 4: ``lambda``, ``lambda_learnable``, ``r``):
    a param equal on all of them says nothing about the table's rows and would only widen the view."""
    shown = runs[runs['run_id'].isin(run_ids)]
    # sorted: the store's column order is arbitrary
    return sorted(name.removeprefix('params.') for name in shown.columns
                  if name.startswith('params.') and shown[name].nunique(dropna=False) > 1)


def save_view(client, experiment_id: str, key: str, table: str, profile: str, params: list[str]) -> None:
    """Save the table's runs view under ``key``: its filter, newest first, the paper's benchmark metrics (in the
    paper's order), the table's tag (its row labels) and ``params`` as columns. Plain JSON: the UI reads it
    (it also accepts its own envelope of a named view, which it writes when a user saves one)."""
    columns = [column('tags', table), *(column('metrics', f'{b}/mIoU') for b in BENCHMARKS),
               *(column('params', name) for name in params)]
    # selectedColumns picks the columns; the table lays them out by type and name (metrics alphabetically)
    # unless columnOrder, the UI state its column drag-and-drop writes, gives their order
    state = {'searchFilter': runs_filter(table, profile), 'orderByKey': 'attributes.start_time', 'orderByAsc': False,
             'startTime': 'ALL', 'lifecycleFilter': 'Active', 'modelVersionFilter': 'All Runs', 'datasetsFilter': [],
             'selectedColumns': columns, 'columnOrder': columns}
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, json.dumps(state))


def _params(url: str, route: str) -> dict[str, str]:
    fragment = urllib.parse.urlsplit(url).fragment
    path, _, query = fragment.partition('?')
    if not path.startswith(route):
        raise ValueError(f'{url}: not a {route} link')
    return {key: value for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True)}


def parse_runs_link(url: str) -> tuple[str, str]:
    """(experiment id, search filter) of a :func:`runs_link`, as the UI reads them."""
    experiment_id = urllib.parse.urlsplit(url).fragment.split('/')[2]
    return experiment_id, _params(url, f'/experiments/{experiment_id}/runs')['searchFilter']


def parse_compare_link(url: str) -> tuple[list[str], list[str]]:
    """(run ids, experiment ids) of a :func:`compare_link`, as the UI reads them."""
    params = _params(url, '/compare-runs')
    return json.loads(params['runs']), json.loads(params['experiments'])


def shown_run_ids(table: pd.DataFrame) -> list[str]:
    """The runs a written table shows (``run_id`` column of tableN.csv), in the paper's row order, each once (a
    run can fill several rows of one table, e.g. Table 3's full model)."""
    return list(dict.fromkeys(table['run_id'].dropna()))


def table_links(folder: Path, profile: str, ui: str, experiment_id: str | None, runs: pd.DataFrame | None = None,
                client=None) -> dict:
    """Per table of ``folder`` (tableN.csv as tables.py wrote them): the filter, its runs link, the shown run
    ids and their compare link (None without runs); ``{}`` per table when the store has no experiment. With a
    ``client`` (and ``runs``, :func:`runs.finished_runs`), also the saved view with columns (``view``, else None),
    key ``logoseg-<profile>-<table>``: rewritten on every regeneration, as the table's knobs may change."""
    links = {}
    for name in TABLES:
        ids = shown_run_ids(pd.read_csv(folder / f'{name}.csv', dtype={'run_id': str}))
        if experiment_id is None:
            links[name] = {}
            continue
        view = None
        if client is not None and runs is not None:
            key = f'logoseg-{profile}-{name}'
            save_view(client, experiment_id, key, name, profile, knobs(runs, ids))
            view = view_link(ui, experiment_id, key)
        links[name] = {'filter': runs_filter(name, profile), 'runs': runs_link(ui, experiment_id, name, profile),
                       'view': view, 'run_ids': ids, 'compare': compare_link(ui, experiment_id, ids) if ids else None}
    return links


def markdown(links: dict, profile: str, titles: dict[str, str]) -> str:
    lines = [f'# MLflow UI links ({profile})', '',
             'Start the UI on the same store (`mlflow ui --backend-store-uri ...`); each link opens the '
             '"Model training" view.', '']
    for name in TABLES:
        entry = links[name]
        if not entry:
            lines.append(f'- {titles[name]}: no experiment in the store')
            continue
        parts = [f'[runs]({entry["runs"]})']
        if entry['view']:
            parts.append(f'[runs with their columns]({entry["view"]})')
        parts.append(f'[compare the {len(entry["run_ids"])} runs shown]({entry["compare"]})' if entry['compare']
                     else 'no run to compare')
        lines.append(f'- {titles[name]}: ' + ' · '.join(parts))
    return '\n'.join(lines) + '\n'


def write_links(folder: Path, profile: str, ui: str, experiment_id: str | None, titles: dict[str, str],
                runs: pd.DataFrame | None = None, client=None) -> dict:
    """Write ``links.md`` and ``links.json`` into ``folder`` (beside the tables); returns the links."""
    links = table_links(folder, profile, ui, experiment_id, runs, client)
    (folder / 'links.json').write_text(json.dumps(links, indent=2) + '\n')
    (folder / 'links.md').write_text(markdown(links, profile, titles))
    return links
