"""A real `mlflow server` on 127.0.0.1 (a team's tracking server): the grid's runs found through its REST API by
their tags, their params and metrics read back, and the tables regenerated from it."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from .conftest import EXPECTED_FULL, EXPECTED_T4, run_tables, seed

MLFLOW = Path(sys.executable).parent / 'mlflow'  # the venv's command, as a user starts the server
STARTUP_S = 120  # imports + schema creation; about 60 s seen on a loaded 2-core machine, 10 s on an idle one

pytestmark = pytest.mark.slow


def rest(url: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + '/health', timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """``http://127.0.0.1:<free port>`` of a server on a fresh sqlite store and artifact folder, seeded."""
    tmp = tmp_path_factory.mktemp('server')
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    log = tmp / 'server.log'
    command = [str(MLFLOW), 'server', '--host', '127.0.0.1', '--port', str(port), '--workers', '1',
               '--backend-store-uri', f'sqlite:///{tmp / "mlflow.db"}', '--artifacts-destination', str(tmp / 'art')]
    with log.open('wb') as output:
        # its own process group: `mlflow server` runs uvicorn as a child, stopped together below
        process = subprocess.Popen(command, cwd=tmp, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, 'MLFLOW_SERVER_ENABLE_JOB_EXECUTION': 'false'})
    url = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + STARTUP_S
        while not healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f'mlflow server did not answer /health within {STARTUP_S} s:\n{log.read_text()[-3000:]}')
            time.sleep(0.5)
        seed(MlflowClient(url))
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_grid_runs_found_by_tags_through_the_rest_api(server):
    experiment = rest(server, '/api/2.0/mlflow/experiments/get-by-name?experiment_name=logoseg')['experiment']
    # the README's filter for one table, restricted to finished runs, newest first
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
    assert newest_full['params'] == {'op': 'True', 'ccf': 'True', 'ra': 'True', 'lambda': '1.0', 'r': '6'}
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
