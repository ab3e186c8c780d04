"""MLflow UI links that open each paper table: its runs in the experiment's runs view, and the compare view of
the runs the table shows (README, "Comparing runs in MLflow").

The UI is a single-page app; what a link can set is what its pages read from the URL (MLflow 3.17):
- the runs view ``#/experiments/<id>/runs`` reads ``searchFilter`` (the search box; public since MLflow 2);
- every experiment page reads ``workflowType`` (``machine_learning`` = "Model training", else the GenAI view,
  a traces overview that is empty for training runs): internal to MLflow 3, hence the pin in pyproject.toml
  and tests/analysis/test_links.py, which fails when the installed UI bundle no longer reads it;
- the compare view ``#/compare-runs?runs=[..]&experiments=[..]`` (the route the UI's own "Compare" button
  builds; ``runs`` must be the first parameter, the page parses ``?runs``).
The columns of the runs view (params, metrics) cannot be set by a URL: the UI keeps them in the browser's local
storage or in a view saved as an experiment tag, so the links leave them as they are.
"""
from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pandas as pd

from runs import TABLES

DEFAULT_UI = 'http://127.0.0.1:5000'  # what `mlflow ui` serves
ML_VIEW = 'machine_learning'


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


def table_links(folder: Path, profile: str, ui: str, experiment_id: str | None) -> dict:
    """Per table of ``folder`` (tableN.csv as tables.py wrote them): the filter, its runs link, the shown run
    ids and their compare link (None without runs); ``{}`` per table when the store has no experiment."""
    links = {}
    for name in TABLES:
        ids = shown_run_ids(pd.read_csv(folder / f'{name}.csv', dtype={'run_id': str}))
        links[name] = {} if experiment_id is None else {
            'filter': runs_filter(name, profile), 'runs': runs_link(ui, experiment_id, name, profile),
            'run_ids': ids, 'compare': compare_link(ui, experiment_id, ids) if ids else None}
    return links


def markdown(links: dict, profile: str, titles: dict[str, str]) -> str:
    lines = [f'# MLflow UI links ({profile})', '',
             'Start the UI on the same store (`mlflow ui --backend-store-uri ...`); each link opens the '
             '"Model training" view.', '']
    for name in TABLES:
        entry = links[name]
        lines.append(f'- {titles[name]}: ' + (
            'no experiment in the store' if not entry else
            f'[runs]({entry["runs"]}) · ' + (f'[compare the runs shown ({len(entry["run_ids"])})]({entry["compare"]})'
                                             if entry['compare'] else 'no run to compare')))
    return '\n'.join(lines) + '\n'


def write_links(folder: Path, profile: str, ui: str, experiment_id: str | None, titles: dict[str, str]) -> dict:
    """Write ``links.md`` and ``links.json`` into ``folder`` (beside the tables); returns the links."""
    links = table_links(folder, profile, ui, experiment_id)
    (folder / 'links.json').write_text(json.dumps(links, indent=2) + '\n')
    (folder / 'links.md').write_text(markdown(links, profile, titles))
    return links
