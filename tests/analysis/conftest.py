"""A tracking store seeded with known grid runs, following the schema of analysis/runs.py."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'analysis'))  # the analysis scripts import each other by module name

BENCHMARKS = ('ade847', 'pc459', 'ade150', 'pc59', 'voc20', 'voc20b')


@dataclass
class SeedRun:
    """One run to create; ``miou`` maps benchmark -> mIoU (benchmarks left out are not logged)."""
    row: str
    labels: dict[str, str]
    miou: dict[str, float]
    status: str = 'FINISHED'
    profile: str = 'smoke'
    start: int = 0  # ms since the epoch
    end: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def miou(*values: float) -> dict[str, float]:
    return dict(zip(BENCHMARKS, values))


FULL = dict(table1='ViT-B/16', table2='OP+CCF+RA', table3='w/ LQ + GC + DA | w/ fusion depth = 2',
            table4='Full, 6x6', table5='COCO-Stuff')
# What each table must show. Numbers are arbitrary but distinct, with two decimals (as MMSeg reports mIoU and the
# runs log it) so that the CSV proves they are copied exactly, not rounded to the paper's one decimal.
EXPECTED_FULL = miou(3.12, 7.25, 21.06, 40.5, 61.75, 45.38)
EXPECTED_T4 = miou(1.5, 2.25, 3.75, 4.12, 5.5, 6.06)  # "0.5, 8x8"
EXPECTED_T2_OP = miou(9.5, 8.5, 7.5, 6.5, 5.5)  # no voc20b metric: that cell stays empty

SEED = [
    # the row selected for `full`: the latest FINISHED smoke run
    SeedRun('full', FULL, EXPECTED_FULL, start=2_000, end=5_000,
            params=dict(op='1', ccf='1', ra='1', **{'lambda': '1.0'}, lambda_learnable='0', r='6')),
    # an older FINISHED run, a newer FAILED one, a newer one still RUNNING, and the paper profile: never picked
    SeedRun('full', FULL, miou(*[90.0] * 6), start=1_000, end=4_000),
    SeedRun('full', FULL, miou(*[91.0] * 6), status='FAILED', start=6_000, end=7_000),
    SeedRun('full', FULL, miou(*[92.0] * 6), status='RUNNING', start=8_000),
    SeedRun('full', FULL, miou(*[93.0] * 6), profile='paper', start=9_000, end=10_000),
    # same end time: the later start wins
    SeedRun('t4_lambda05_r8', {'table4': '0.5, 8x8'}, miou(*[80.0] * 6), start=1_000, end=3_000),
    SeedRun('t4_lambda05_r8', {'table4': '0.5, 8x8'}, EXPECTED_T4, start=1_500, end=3_000,
            params=dict(op='1', ccf='1', ra='1', **{'lambda': '0.5'}, lambda_learnable='0', r='8')),
    SeedRun('t2_op', {'table2': 'OP'}, EXPECTED_T2_OP, start=1_000, end=2_000),
    # a label the paper does not have: reported, not shown
    SeedRun('t4_typo', {'table4': '0.25, 6x6'}, miou(*[70.0] * 6), start=1_000, end=2_000),
    # the analysis run (tables.py logs one): never a grid row, even with a table tag and the latest end
    SeedRun('tables', {'table2': 'OP'}, miou(*[60.0] * 6), start=20_000, end=21_000, tags={'kind': 'tables'}),
]


def seed(client: MlflowClient, runs: list[SeedRun] = SEED, artifacts: Path | None = None) -> dict[str, str]:
    """Create ``runs`` in the experiment ``logoseg`` (artifacts under ``artifacts``, else the store's
    default); returns run id -> row key."""
    experiment = client.create_experiment('logoseg', artifact_location=artifacts.as_uri() if artifacts else None)
    ids = {}
    for spec in runs:
        tags = {'row': spec.row, 'profile': spec.profile, 'tables': ','.join(t[-1] for t in spec.labels),
                **spec.labels, **spec.tags}
        run = client.create_run(experiment, start_time=spec.start, tags=tags, run_name=spec.row)
        client.log_batch(run.info.run_id,
                         metrics=[Metric(f'{b}/mIoU', v, spec.start, 0) for b, v in spec.miou.items()],
                         params=[Param(k, v) for k, v in spec.params.items()])
        if spec.status != 'RUNNING':
            client.set_terminated(run.info.run_id, spec.status, end_time=spec.end)
        ids[run.info.run_id] = spec.row
    return ids


@pytest.fixture(scope='session')
def seeded_store(tmp_path_factory) -> str:
    """The tracking URI of a sqlite store holding :data:`SEED` (shared: creating a store takes seconds)."""
    tmp_path = tmp_path_factory.mktemp('store')
    uri = f'sqlite:///{tmp_path / "mlflow.db"}'
    seed(MlflowClient(uri), artifacts=tmp_path / 'mlruns')
    return uri


@contextmanager
def tracking_uri(uri: str):
    """MLflow's fluent API on ``uri`` for the block, then back to what the rest of the suite uses."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def run_tables(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python analysis/tables.py ARGS`` as a user runs it; fails the test with its stderr if it fails."""
    result = subprocess.run([sys.executable, str(REPO / 'analysis' / 'tables.py'), *args], cwd=cwd,
                            env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result
