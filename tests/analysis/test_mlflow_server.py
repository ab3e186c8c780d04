"""A real `mlflow server` on 127.0.0.1 (a team's tracking server): the grid's runs found through its REST API by
their tags, their params and metrics read back, and the tables regenerated from it."""
import json
import urllib.error
import urllib.request

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from ..mlflow_server import MlflowServer
from .conftest import EXPECTED_FULL, EXPECTED_T4, run_tables, seed
from links import parse_compare_link, parse_runs_link
from runs import TABLES


pytestmark = pytest.mark.slow


def rest(url: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """``http://127.0.0.1:<free port>`` of a server on a fresh sqlite store and artifact folder, seeded."""
    server = MlflowServer(tmp_path_factory.mktemp('server'))
    try:
        url = server.start()
        seed(MlflowClient(url))
        yield url
    finally:
        server.stop()


def test_grid_runs_found_by_tags_through_the_rest_api(server):
    experiment = rest(server, '/api/2.0/mlflow/experiments/get-by-name?experiment_name=logoseg')['experiment']
    # docs/mlflow.md's filter for one table, restricted to finished runs, newest first
    found = rest(server, '/api/2.0/mlflow/runs/search', {
        'experiment_ids': [experiment['experiment_id']],
        'filter': "tags.table4 LIKE '%' and tags.profile = 'smoke' and attributes.status = 'FINISHED'",
        'order_by': ['attributes.end_time DESC', 'attributes.start_time DESC']})['runs']
    runs = [{kind: {item['key']: item['value'] for item in run['data'].get(kind, [])}
             for kind in ('tags', 'params', 'metrics')} for run in found]
    assert [run['tags']['row'] for run in runs] == ['full', 'full', 't4_lambda05_r8', 't4_lambda05_r8', 't4_typo']
    newest_full, newest_t4 = runs[0], runs[2]
    assert newest_full['tags']['table4'] == 'Full, 6x6'
    assert newest_full['tags']['table3'] == 'w/ LQ + GC + DA | w/ fusion depth = 2'
    assert newest_full['params'] == {'op': '1', 'ccf': '1', 'ra': '1', 'lambda': '1.0', 'lambda_learnable': '0',
                                    'r': '6'}
    assert newest_full['metrics'] == {f'{key}/mIoU': value for key, value in EXPECTED_FULL.items()}
    assert newest_t4['params']['lambda'] == '0.5' and newest_t4['params']['r'] == '8'
    assert newest_t4['metrics'] == {f'{key}/mIoU': value for key, value in EXPECTED_T4.items()}


def test_tables_from_the_server(server, tmp_path):
    out = tmp_path / 'tables'
    run_tables('--tracking-uri', server, '--profile', 'smoke', '--out', str(out), cwd=tmp_path)
    table4 = pd.read_csv(out / 'table4.csv', float_precision='round_trip').set_index('row')
    assert table4.loc['Full, 6x6', 'A-150 ours'] == EXPECTED_FULL['ade150']
    assert table4.loc['0.5, 8x8', 'PAS-20b ours'] == EXPECTED_T4['voc20b']
    # the tables run's files went through the server's artifact proxy
    experiment = rest(server, '/api/2.0/mlflow/experiments/get-by-name?experiment_name=logoseg')['experiment']
    [tables] = [run for run in rest(server, '/api/2.0/mlflow/runs/search', {
        'experiment_ids': [experiment['experiment_id']],
        'filter': "tags.kind = 'tables' and attributes.run_name = 'tables'",
        'order_by': ['attributes.start_time DESC'], 'max_results': 1})['runs']]
    files = rest(server, f'/api/2.0/mlflow/artifacts/list?run_id={tables["info"]["run_id"]}')['files']
    assert {item['path'] for item in files} == {path.name for path in out.iterdir()}


def test_table_links_through_the_uis_api(server, tmp_path):
    """What the UI does with each table's links (analysis/links.py), through the `ajax-api` its pages call: the
    runs link's filter finds exactly the table's FINISHED smoke runs, and every run of the compare link exists."""
    out = tmp_path / 'tables'
    run_tables('--tracking-uri', server, '--profile', 'smoke', '--out', str(out), '--no-log', '--ui-url', server,
               cwd=tmp_path)
    links = json.loads((out / 'links.json').read_text())
    experiment = rest(server, '/api/2.0/mlflow/experiments/get-by-name?experiment_name=logoseg')['experiment']
    everything = rest(server, '/api/2.0/mlflow/runs/search', {'experiment_ids': [experiment['experiment_id']],
                                                              'max_results': 1000})['runs']
    for name in TABLES:
        entry = links[name]
        experiment_id, search = parse_runs_link(entry['runs'])
        assert entry['runs'].startswith(server + '/#/') and experiment_id == experiment['experiment_id']
        found = rest(server, '/ajax-api/2.0/mlflow/runs/search',
                     {'experiment_ids': [experiment_id], 'filter': search, 'max_results': 1000}).get('runs', [])
        # expected from the runs themselves, not from a filter: FINISHED, smoke, with the table's tag, not the
        # analysis run
        expected = {run['info']['run_id'] for run in everything
                    if run['info']['status'] == 'FINISHED' and run['info']['run_name'] != 'tables'
                    and {'key': 'profile', 'value': 'smoke'} in run['data']['tags']
                    and any(tag['key'] == name for tag in run['data']['tags'])}
        assert {run['info']['run_id'] for run in found} == expected and expected, name
        run_ids, experiments = parse_compare_link(entry['compare'])
        shown = pd.read_csv(out / f'{name}.csv', dtype={'run_id': str})['run_id'].dropna()
        assert run_ids == list(dict.fromkeys(shown)) and experiments == [experiment_id] and set(run_ids) <= expected
        for run_id in run_ids:
            run = rest(server, f'/ajax-api/2.0/mlflow/runs/get?run_id={run_id}')['run']
            assert run['info']['run_id'] == run_id and run['info']['status'] == 'FINISHED'


def test_table4_links_open_its_runs_in_a_real_browser(server, tmp_path):
    """The links as a user clicks them, in Debian's headless chromium on the server's UI: the saved view lists
    every run of Table 4 and no run of another table only, with the six benchmark columns in the paper's order
    (not by name, as the UI orders metric columns by default); the compare view shows exactly the runs the table
    shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from ..apis.test_demo import chromium_driver
    out = tmp_path / 'tables'
    run_tables('--tracking-uri', server, '--profile', 'smoke', '--out', str(out), '--ui-url', server, cwd=tmp_path)
    links = json.loads((out / 'links.json').read_text())['table4']
    experiment = rest(server, '/api/2.0/mlflow/experiments/get-by-name?experiment_name=logoseg')['experiment']
    runs = rest(server, '/api/2.0/mlflow/runs/search', {'experiment_ids': [experiment['experiment_id']],
                                                         'max_results': 1000})['runs']
    tags = {run['info']['run_name']: {t['key'] for t in run['data']['tags']} for run in runs}
    table4 = {name for name, keys in tags.items() if 'table4' in keys and name != 'tables'}
    elsewhere = {name for name, keys in tags.items() if 'table4' not in keys and name != 'tables'}
    assert table4 and elsewhere
    driver = chromium_driver()
    driver.set_window_size(3200, 1600)  # the runs grid renders only the columns in view
    try:
        def shown(page: str, names: set[str]) -> set[str]:
            return {name for name in names if f'>{name}<' in page}
        driver.get(links['view'])
        WebDriverWait(driver, 120).until(lambda d: shown(d.page_source, table4) == table4)
        assert not shown(driver.page_source, elsewhere)
        cells = driver.find_elements(By.CSS_SELECTOR, '[role="columnheader"][aria-colindex]')
        headers = [h.text for h in sorted(cells, key=lambda h: int(h.get_attribute('aria-colindex')))]
        benchmarks = [f'{b}/mIoU' for b in ('ade847', 'pc459', 'ade150', 'pc59', 'voc20', 'voc20b')]
        assert [h for h in headers if h in benchmarks] == benchmarks, headers  # the paper's column order
        names = {run['info']['run_id']: run['info']['run_name'] for run in runs}
        compared = {names[run_id] for run_id in links['run_ids']}
        driver.get(links['compare'])
        WebDriverWait(driver, 120).until(lambda d: shown(d.page_source, compared) == compared)
    finally:
        driver.quit()
