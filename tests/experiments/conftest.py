"""A real single-node SLURM for the tests of the grid's SLURM executor (projects/logoseg/experiments/testcluster.py),
and an `mlflow server` for the jobs to log to. Where SLURM is not installed, the tests that need it are skipped
with one line saying so."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from logoseg.experiments import testcluster

MLFLOW = Path(sys.executable).parent / 'mlflow'
SERVER_STARTUP_S = 120  # ~15 s on an idle 2-core machine, up to a minute on a loaded one


@pytest.fixture(scope='session')
def slurm_cluster(tmp_path_factory):
    """A fresh cluster (fresh job ids: submitit folders are never reused across clusters) for the session;
    SLURM's commands in this process and its children point at it while it runs."""
    why = testcluster.available()
    if why:
        pytest.skip(f'no SLURM test cluster: {why}')
    folder = tmp_path_factory.mktemp('slurm')
    saved = {key: os.environ.get(key) for key in ('SLURM_CONF', 'PATH')}
    env = testcluster.start(folder)
    os.environ.update(env)
    try:
        yield folder
    finally:
        testcluster.stop(folder)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + '/health', timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope='module')
def mlflow_server(tmp_path_factory):
    """``http://127.0.0.1:<port>`` of an `mlflow server` on a fresh sqlite store: what several jobs writing at
    once need (the grid's slurm executor refuses a bare sqlite file)."""
    tmp = tmp_path_factory.mktemp('mlflow_server')
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    log = tmp / 'server.log'
    command = [str(MLFLOW), 'server', '--host', '127.0.0.1', '--port', str(port), '--workers', '2',
               '--backend-store-uri', f'sqlite:///{tmp / "mlflow.db"}', '--artifacts-destination', str(tmp / 'art')]
    with log.open('wb') as output:  # its own process group: uvicorn's workers are stopped with it
        process = subprocess.Popen(command, cwd=tmp, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, 'MLFLOW_SERVER_ENABLE_JOB_EXECUTION': 'false'})
    url = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + SERVER_STARTUP_S
        while not healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f'mlflow server did not answer within {SERVER_STARTUP_S} s:\n{log.read_text()[-3000:]}')
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
