"""The MLflow UI links of analysis/links.py: they parse back to exactly each table's runs, and the installed UI
still reads the URL parameters they rely on."""
import json
import re
import urllib.parse
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from .conftest import EXPECTED_FULL, EXPECTED_T4, run_tables, seed, tracking_uri
from links import SHARED_VIEW_TAG, compare_link, parse_compare_link, parse_runs_link, runs_link
from runs import TABLES, finished_runs

UI = 'http://ui.example:5001'


def tables_with_links(store: str, folder: Path) -> dict:
    run_tables('--tracking-uri', store, '--profile', 'smoke', '--out', str(folder), '--no-log', '--ui-url', UI,
               cwd=folder.parent)
    return json.loads((folder / 'links.json').read_text())


def test_links_parse_back_to_each_tables_runs(seeded_store, tmp_path):
    out = tmp_path / 'tables'
    links = tables_with_links(seeded_store, out)
    client = MlflowClient(seeded_store)
    experiment_id = client.get_experiment_by_name('logoseg').experiment_id
    with tracking_uri(seeded_store):
        finished = finished_runs('smoke')  # what tables.py reads: FINISHED smoke grid runs, no analysis run
    assert set(links) == set(TABLES)
    assert all(links[name]['view'] is None for name in TABLES)  # --no-log: no view saved in the store
    for name in TABLES:
        entry = links[name]
        assert entry['runs'].startswith(f'{UI}/#/experiments/{experiment_id}/runs?')
        linked_experiment, search = parse_runs_link(entry['runs'])
        assert (linked_experiment, search) == (experiment_id, entry['filter'])
        found = client.search_runs([experiment_id], filter_string=search, max_results=1000)
        expected = set(finished.loc[finished[f'tags.{name}'].notna(), 'run_id']) if f'tags.{name}' in finished \
            else set()
        assert {run.info.run_id for run in found} == expected, name
        # the compare link holds the runs the written table shows, in its row order
        shown = pd.read_csv(out / f'{name}.csv', dtype={'run_id': str})['run_id'].dropna()
        if shown.empty:
            assert entry['compare'] is None and entry['run_ids'] == []
            continue
        run_ids, experiments = parse_compare_link(entry['compare'])
        assert run_ids == entry['run_ids'] == list(dict.fromkeys(shown)) and experiments == [experiment_id]
    # the seed's known picks: table 4 = the newest FINISHED `full` and `t4_lambda05_r8` (not the typo label, not
    # older, FAILED, RUNNING or paper-profile runs); table 2's filter: both FINISHED smoke `full` runs and `t2_op`,
    # not the analysis run tagged `OP`
    picked = [client.get_run(run_id).data for run_id in parse_compare_link(links['table4']['compare'])[0]]
    assert sorted((data.tags['row'], data.metrics['ade150/mIoU']) for data in picked) == [
        ('full', EXPECTED_FULL['ade150']), ('t4_lambda05_r8', EXPECTED_T4['ade150'])]
    table2 = client.search_runs([experiment_id], filter_string=links['table2']['filter'])
    assert sorted(run.data.tags['row'] for run in table2) == ['full', 'full', 't2_op']
    text = (out / 'links.md').read_text()
    assert all(links[name]['runs'] in text for name in TABLES) and links['table4']['compare'] in text


def test_views_with_columns_saved_in_the_store(tmp_path):
    """Without --no-log each table's runs view is saved as an experiment tag, as the UI's "Share" does: the
    table's filter, the paper's metrics in its order and the params that tell the table's runs apart."""
    store = f'sqlite:///{tmp_path / "mlflow.db"}'
    client = MlflowClient(store)
    seed(client, artifacts=tmp_path / 'mlruns')
    out = tmp_path / 'tables'
    run_tables('--tracking-uri', store, '--profile', 'smoke', '--out', str(out), '--ui-url', UI, cwd=tmp_path)
    links = json.loads((out / 'links.json').read_text())
    experiment = client.get_experiment_by_name('logoseg')
    view = links['table4']['view']
    assert view.startswith(f'{UI}/#/experiments/{experiment.experiment_id}/runs?')
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(view).fragment.split('?', 1)[1]))
    # no search facet beside the key: the UI would ignore the saved view
    assert query == {'viewStateShareKey': 'logoseg-smoke-table4', 'workflowType': 'machine_learning'}
    state = json.loads(experiment.tags[SHARED_VIEW_TAG + 'logoseg-smoke-table4'])
    assert state['searchFilter'] == links['table4']['filter']
    # Table 4's shown runs (`full`, `t4_lambda05_r8`) differ in lambda and r only; op, ccf, ra, lambda_learnable
    # are equal and left out
    assert state['selectedColumns'] == ['tags.`table4`', 'metrics.`ade847/mIoU`', 'metrics.`pc459/mIoU`',
                                        'metrics.`ade150/mIoU`', 'metrics.`pc59/mIoU`', 'metrics.`voc20/mIoU`',
                                        'metrics.`voc20b/mIoU`', 'params.`lambda`', 'params.`r`']
    assert state['columnOrder'] == state['selectedColumns']  # else the UI sorts the metric columns by name
    assert view in (out / 'links.md').read_text()


def test_links_are_fully_encoded():
    link = runs_link('http://127.0.0.1:5000/', '7', 'table3', 'paper')
    query = link.split('?', 1)[1]
    # a raw `%`, quote or space would be rewritten or cut by browsers and chat clients
    assert not re.search(r"[ '\"\[\]]|%(?![0-9A-F]{2})", query), query
    assert link.startswith('http://127.0.0.1:5000/#/experiments/7/runs?searchFilter=')
    assert query.endswith('&workflowType=machine_learning')
    compare = compare_link('http://127.0.0.1:5000', '7', ['a1', 'b2'])
    # the compare page parses its query with `?runs` as the first key
    assert compare.startswith('http://127.0.0.1:5000/#/compare-runs?runs=')
    assert parse_compare_link(compare) == (['a1', 'b2'], ['7'])


def bundle() -> str:
    folder = Path(mlflow.__file__).parent / 'server' / 'js' / 'build' / 'static' / 'js'
    files = sorted(folder.glob('*.js'))
    assert files, f'no UI bundle under {folder}'
    return '\n'.join(path.read_text(errors='replace') for path in files)


def test_installed_ui_reads_the_links_url_parameters():
    """Fails when an MLflow upgrade drops a URL parameter the links set (see analysis/links.py and the mlflow
    pin in pyproject.toml): the experiment page's search facets, the workflow type and the compare route."""
    js = bundle()
    # the runs view's search facets read from the URL (searchFilter first, as in MLflow 2 and 3)
    assert re.search(r'\["searchFilter","orderByKey","orderByAsc"', js)
    # the runs tab of the experiment page: /experiments/:experimentId/:tabName with tabName "runs"
    assert '"/experiments/:experimentId/:tabName"' in js and 'Runs="runs"' in js
    # "Model training" vs GenAI: read from the URL parameter workflowType, value machine_learning (MLflow 3)
    assert 'get("workflowType")' in js and 'MACHINE_LEARNING="machine_learning"' in js
    # the compare view: route /compare-runs, run ids as JSON under `?runs`, experiment ids under `experiments`
    assert '"/compare-runs"' in js
    # saved views: the URL parameter, the experiment tag's prefix, the plain-JSON value read as a fallback (after
    # the UI's own envelope), the column ids (`metrics.`ade150/mIoU``) and selectedColumns among its saved state
    assert 'U="viewStateShareKey",$="mlflow.sharedViewState."' in js
    assert re.search(r'\(0,\w+\.ib\)\(e\)\?JSON\.parse\(await\(0,\w+\.U1\)\(e\)\):JSON\.parse\(e\)\)\(t\.value\)', js)
    assert 'I=(e,t)=>e+".`"+t+"`"' in js and '["selectedColumns","columnOrder"' in js
    assert re.search(r'(\w+)=JSON\.parse\((\w+)\["\?runs"\]\);return\{experimentIds:JSON\.parse\(\2\.experiments\),'
                     r'runUuids:\1\}', js)
