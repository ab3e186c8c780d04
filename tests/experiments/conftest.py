"""A real single-node SLURM for the tests of the grid's SLURM executor (projects/logoseg/experiments/testcluster.py),
and an `mlflow server` for the jobs to log to. Where SLURM is not installed, the tests that need it are skipped
with one line saying so."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from logoseg.experiments import testcluster

from ..mlflow_server import MlflowServer

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


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh sqlite MLflow store for the test, as the default tracking URI; its client."""
    uri = f'sqlite:///{tmp_path / "mlflow.db"}'
    monkeypatch.setenv('MLFLOW_TRACKING_URI', uri)
    monkeypatch.delenv('MLFLOW_RUN_ID', raising=False)
    return MlflowClient(uri)


@pytest.fixture(scope='module')
def mlflow_server(tmp_path_factory):
    """``http://127.0.0.1:<port>`` of an `mlflow server` on a fresh sqlite store: what several jobs writing at
    once need (the grid's slurm executor refuses a bare sqlite file)."""
    server = MlflowServer(tmp_path_factory.mktemp('mlflow_server'), workers=2)
    try:
        yield server.start()
    finally:
        server.stop()
