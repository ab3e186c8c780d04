"""The ablation grid through DVC, for real, in a temporary copy of the repository (smoke profile, short
schedule): stage structure, two rows trained and evaluated, what their MLflow runs hold, no-op reruns,
per-row invalidation, a failing training, and a killed training that resumes."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from .conftest import REPO

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
ROWS = list(yaml.safe_load((REPO / 'experiments' / 'rows.yaml').read_text())['rows'])
BENCHMARKS = ('ade847', 'pc459', 'ade150', 'pc59', 'voc20', 'voc20b')
ITERS = 12


def copy_repository(dest: Path) -> None:
    """What a fresh clone holds: the tracked files (plus this checkout's uncommitted edits of them)."""
    files = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split('\0')
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    params = yaml.safe_load((dest / 'params.yaml').read_text())
    params['smoke']['max_iters'] = ITERS
    (dest / 'params.yaml').write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (['git', 'init', '-q'], ['git', 'add', '-A'],
                    ['git', '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'copy']):
        subprocess.run(command, cwd=dest, check=True)


@pytest.fixture(scope='module')
def grid(tmp_path_factory):
    root = tmp_path_factory.mktemp('grid') / 'repo'
    root.mkdir()
    copy_repository(root)
    env = dict(os.environ, PATH=f'{BIN}:{os.environ["PATH"]}', PYTHONPATH=str(root / 'projects'),
               MLFLOW_TRACKING_URI=f'sqlite:///{root.parent / "mlflow.db"}', OMP_NUM_THREADS='2')
    env.pop('MLFLOW_RUN_ID', None)
    return root, env


def dvc(grid, *args, timeout=900):
    root, env = grid
    return subprocess.run([str(BIN / 'dvc'), *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)


def client(grid):
    return MlflowClient(grid[1]['MLFLOW_TRACKING_URI'])


def row_runs(grid, row):
    c = client(grid)
    experiment = c.get_experiment_by_name('logoseg')
    return c.search_runs([experiment.experiment_id], f"tags.row = '{row}' and tags.profile = 'smoke'",
                         order_by=['attributes.start_time ASC'])


def test_every_row_has_a_stage_with_only_its_own_params(grid):
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo
    names = dvc(grid, 'stage', 'list', '--name-only').stdout.split()
    for row in ROWS:
        assert f'row@{row}' in names
    assert 'ablation_grid' in names and 'prepare_smoke' in names
    with Repo(str(grid[0])) as repo:
        stages = {stage.addressing.split(':')[-1]: stage for stage in repo.index.stages}
    for row in ROWS:
        params = {p for dep in stages[f'row@{row}'].deps if isinstance(dep, ParamsDependency)
                  for p in dep.params}
        assert f'rows.{row}' in params and 'knobs' in params and 'smoke.max_iters' in params
        assert not any(p.startswith('rows.') and p != f'rows.{row}' for p in params)
        assert not any(p.startswith('paper') for p in params)


@pytest.fixture(scope='module')
def two_rows(grid):
    proc = dvc(grid, 'repro', 'row@t2_op', 'row@t1_convnext_b')
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


@pytest.mark.parametrize('row', ['t2_op', 't1_convnext_b'])
def test_a_row_writes_metrics_curve_and_a_finished_mlflow_run(grid, two_rows, row):
    root, _ = grid
    metrics = json.loads((root / 'results' / 'smoke' / 'metrics' / f'{row}.json').read_text())
    assert set(BENCHMARKS) <= set(metrics)
    for name in BENCHMARKS:
        assert 0 <= metrics[name]['mIoU'] <= 100 and metrics[name]['num_images'] > 0
    assert metrics['efficiency']['params_total_M'] > 0 and metrics['efficiency']['gflops'] > 0
    curve = (root / 'results' / 'smoke' / 'curves' / f'{row}.csv').read_text().splitlines()
    assert curve[0] == 'iter,loss,lr' and len(curve) > 1
    (run,) = row_runs(grid, row)
    assert run.info.status == 'FINISHED' and run.info.run_name == row
    tags = run.data.tags
    assert tags['tables'] == ('2' if row == 't2_op' else '1')
    assert tags.get('table2') == 'OP' if row == 't2_op' else tags['table1'] == 'ConvNeXt-B'
    assert len(tags['git_commit']) == 40 and tags['git_dirty'] in ('true', 'false')
    data_version = json.loads((root / 'results' / 'smoke' / 'data.json').read_text())['version']
    assert tags['data_version'] == data_version
    params = run.data.params
    assert params['backbone'] == ('vitb' if row == 't2_op' else 'convnext_b')
    assert params['ccf'] == ('False' if row == 't2_op' else 'True') and params['max_iters'] == str(ITERS)
    assert len(params) < 30 and all(len(v) < 200 for v in params.values())
    for name in BENCHMARKS:
        for key in ('mIoU', 'aAcc', 'mAcc', 'hallucination_rate', 'hallucinated_classes'):
            assert run.data.metrics[f'{name}/{key}'] == pytest.approx(metrics[name][key], abs=1e-3)
    assert {'loss', 'lr', 'val/mIoU', 'gflops', 'latency_ms', 'peak_mem_MB', 'params_trainable_M'} \
        <= set(run.data.metrics)
    artifacts = {a.path for a in client(grid).list_artifacts(run.info.run_id)}
    assert {'config.py', f'{row}.json', f'{row}.csv'} <= artifacts
    assert any(path.endswith('.log') or path == 'vis_data' for path in artifacts)


def test_an_up_to_date_grid_reruns_nothing_and_a_row_edit_retrains_that_row_only(grid, two_rows):
    root, _ = grid
    again = dvc(grid, 'repro', 'row@t2_op', 'row@t1_convnext_b')
    assert again.returncode == 0 and 'Running stage' not in again.stdout, again.stdout[-2000:]
    rows_file = root / 'experiments' / 'rows.yaml'
    original = rows_file.read_text()
    try:
        edited = yaml.safe_load(original)
        edited['rows']['t2_op']['set']['r'] = 4
        rows_file.write_text(yaml.safe_dump(edited, sort_keys=False))
        status = dvc(grid, 'status', 'row@t2_op', 'row@t1_convnext_b', '--json')
        changed = json.loads(status.stdout)
        assert 'row@t2_op' in changed and 'row@t1_convnext_b' not in changed
    finally:
        rows_file.write_text(original)


def test_a_killed_training_resumes_from_its_last_checkpoint_in_the_same_run(grid, two_rows):
    root, env = grid
    work_dir = root / 'results' / 'smoke' / 'train' / 't3_lq'
    params = yaml.safe_load((root / 'params.yaml').read_text())
    params['smoke']['max_iters'] = 60
    (root / 'params.yaml').write_text(yaml.safe_dump(params, sort_keys=False))
    command = [sys.executable, '-m', 'logoseg.tools.run_row', 't3_lq']
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 600
    while not (work_dir / 'iter_30.pth').is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert (work_dir / 'iter_30.pth').is_file(), proc.stderr.read() if proc.poll() is not None else 'timeout'
    time.sleep(1)  # let the checkpoint be written completely
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    (killed,) = row_runs(grid, 't3_lq')
    assert killed.info.status == 'KILLED'
    assert not (work_dir / 'done.json').exists() and 'KILLED' in (work_dir / 'INCOMPLETE').read_text()
    resumed = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 30' in resumed.stdout + resumed.stderr
    (run,) = row_runs(grid, 't3_lq')  # the same run, reopened
    assert run.info.run_id == killed.info.run_id and run.info.status == 'FINISHED'
    assert (work_dir / 'done.json').is_file() and not (work_dir / 'INCOMPLETE').exists()


def test_a_failing_training_ends_failed_and_leaves_nothing_that_looks_complete(grid, two_rows):
    root, env = grid
    images = root / 'prepared' / 'smoke_standins'
    for path in images.rglob('*'):
        if path.is_file() and path.suffix in ('.jpg', '.png') and 'cocostuff' in str(path) \
                and 'images' in str(path):
            path.write_bytes(b'not an image')
    proc = subprocess.run([sys.executable, '-m', 'logoseg.tools.run_row', 't2_op_ccf'], cwd=root,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    (run,) = row_runs(grid, 't2_op_ccf')
    assert run.info.status == 'FAILED' and run.data.tags['error']
    work_dir = root / 'results' / 'smoke' / 'train' / 't2_op_ccf'
    assert not (work_dir / 'done.json').exists() and not (work_dir / 'final.pth').exists()
    assert not (root / 'results' / 'smoke' / 'metrics' / 't2_op_ccf.json').exists()
