"""A real SLURM (one node, or the machine posing as several) for the tests of the grid's SLURM executor
(projects/logoseg/experiments/testcluster.py), and an `mlflow server` for the jobs to log to. Where SLURM is not
installed, the tests that need it are skipped with one line saying so."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from mlflow import MlflowClient

from logoseg.experiments import testcluster

from ..mlflow_server import MlflowServer

MLFLOW = Path(sys.executable).parent / 'mlflow'
SERVER_STARTUP_S = 120  # ~15 s on an idle 2-core machine, up to a minute on a loaded one


@contextmanager
def cluster_running(folder: Path, nodes: int = 1) -> Iterator[Path]:
    """A test cluster in ``folder``; SLURM's commands in this process and its children point at it while it runs."""
    saved = {key: os.environ.get(key) for key in ('SLURM_CONF', 'PATH')}
    os.environ.update(testcluster.start(folder, nodes=nodes))
    try:
        yield folder
    finally:
        testcluster.stop(folder)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope='session')
def slurm_cluster(tmp_path_factory):
    """A fresh one-node cluster (fresh job ids: submitit folders are never reused across clusters) for the
    session."""
    why = testcluster.available()
    if why:
        pytest.skip(f'no SLURM test cluster: {why}')
    with cluster_running(tmp_path_factory.mktemp('slurm')) as folder:
        yield folder


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
