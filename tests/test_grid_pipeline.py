"""The ablation grid through DVC, for real, in a temporary copy of the repository (smoke profile, short
schedule): stage structure, two rows trained and evaluated, what their MLflow runs hold, no-op reruns,
per-row invalidation, and what a rerun may never do: delete a complete training (bad knob, knob switched
back), erase a good result (failed re-evaluation), call a stale result up to date (vocabulary edit), work on
the main workspace from a queued experiment; a killed training resumes to the same result; every failure
is one line."""
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


def copy_repository(dest: Path, iters: int = ITERS) -> None:
    """What a fresh clone holds: the tracked files (plus this checkout's uncommitted edits of them)."""
    files = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split('\0')
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    params = yaml.safe_load((dest / 'params.yaml').read_text())
    params['smoke']['max_iters'] = iters
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


def run_row(grid, row, **kwargs):
    root, env = grid
    return subprocess.run([sys.executable, '-m', 'logoseg.experiments.run_row', row], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900, **kwargs)


def edit_yaml(path: Path, change) -> str:
    """Apply ``change`` to the YAML file's data; returns the original text (to restore)."""
    original = path.read_text()
    data = yaml.safe_load(original)
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return original


def one_line_error(proc) -> str:
    """The failure as the user sees it: exactly one line on stderr after the progress output, no traceback."""
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('logoseg: ')
    return last


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
        paths = {os.path.relpath(dep.def_path) if os.path.isabs(dep.def_path) else dep.def_path
                 for dep in stages[f'row@{row}'].deps if not isinstance(dep, ParamsDependency)}
        for source in ('models', 'datasets', 'evaluation', 'engine', 'utils', 'vocab'):
            assert f'projects/logoseg/{source}' in paths


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
    assert len(tags['git_commit']) == 40
    assert tags['git_dirty'] == 'false'  # dvc repro rewrote dvc.lock: that is not a source change
    data_version = json.loads((root / 'results' / 'smoke' / 'data.json').read_text())['version']
    assert tags['data_version'] == data_version
    params = run.data.params
    assert params['backbone'] == ('vitb' if row == 't2_op' else 'convnext_b')
    assert params['ccf'] == ('0' if row == 't2_op' else '1') and params['max_iters'] == str(ITERS)  # 0/1: charts
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


def work_dirs(grid, row):
    return sorted(p for p in (grid[0] / 'results' / 'smoke' / 'train' / row).iterdir() if p.is_dir())


def test_a_mistyped_knob_is_one_line_and_deletes_nothing(grid, two_rows):
    root, _ = grid
    (work_dir,) = work_dirs(grid, 't2_op')
    metrics = (root / 'results' / 'smoke' / 'metrics' / 't2_op.json').read_text()
    rows_file = root / 'experiments' / 'rows.yaml'
    original = edit_yaml(rows_file, lambda d: d['rows']['t2_op']['set'].update({'lambda': 2}))
    try:
        proc = run_row(grid, 't2_op')
    finally:
        rows_file.write_text(original)
    assert "prior_lambda=2.0: use a number in [0, 1] or 'learnable'" in one_line_error(proc)
    assert (work_dir / 'final.pth').is_file() and (work_dir / 'done.json').is_file()
    assert work_dirs(grid, 't2_op') == [work_dir]
    assert (root / 'results' / 'smoke' / 'metrics' / 't2_op.json').read_text() == metrics


def test_a_knob_switched_back_finds_its_complete_training_and_prune_removes_the_other(grid, two_rows):
    root, _ = grid
    (first,) = work_dirs(grid, 't2_op')
    rows_file = root / 'experiments' / 'rows.yaml'
    original = edit_yaml(rows_file, lambda d: d['rows']['t2_op']['set'].update({'r': 4}))
    try:
        trained = run_row(grid, 't2_op')
        assert trained.returncode == 0, trained.stderr[-3000:]
    finally:
        rows_file.write_text(original)
    assert len(work_dirs(grid, 't2_op')) == 2 and (first / 'final.pth').is_file()
    back = run_row(grid, 't2_op')
    assert back.returncode == 0, back.stderr[-3000:]
    assert 'training complete with this configuration' in back.stdout and 'Iter(train)' not in back.stdout
    metrics = json.loads((root / 'results' / 'smoke' / 'metrics' / 't2_op.json').read_text())
    assert metrics['run']['fingerprint'].startswith(first.name)
    assert (root / 'results' / 'smoke' / 'train' / 't2_op' / 'final.pth').samefile(first / 'final.pth')
    # the re-evaluation is a run of its own, with the training's curve; the first run stays FINISHED
    runs = row_runs(grid, 't2_op')
    assert [r.info.status for r in runs] == ['FINISHED'] * 3
    latest = runs[-1]
    assert latest.data.tags['training_run'] == runs[0].info.run_id
    assert len(client(grid).get_metric_history(latest.info.run_id, 'loss')) > 0
    pruned = subprocess.run([sys.executable, '-m', 'logoseg.experiments.run_row', '--prune'], cwd=root, env=grid[1],
                            capture_output=True, text=True, timeout=300)
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    assert work_dirs(grid, 't2_op') == [first] and 'removed results/smoke/train/t2_op/' in pruned.stdout


def test_a_failed_re_evaluation_leaves_the_good_result_as_it_was(grid, two_rows):
    root, _ = grid
    metrics = root / 'results' / 'smoke' / 'metrics' / 't1_convnext_b.json'
    before, good = metrics.read_text(), row_runs(grid, 't1_convnext_b')[-1]
    unchanged = run_row(grid, 't1_convnext_b')
    assert unchanged.returncode == 0 and 'nothing to redo' in unchanged.stdout, unchanged.stderr[-3000:]
    eval_config = root / 'configs' / 'eval' / 'ade847.py'
    original = eval_config.read_text()
    eval_config.write_text(original + '# an evaluation change: the row is evaluated again\n')
    benchmark = root / 'prepared' / 'smoke_standins' / 'prepared' / 'voc20b'
    benchmark.rename(benchmark.with_name('voc20b.away'))
    try:
        proc = run_row(grid, 't1_convnext_b')
    finally:
        benchmark.with_name('voc20b.away').rename(benchmark)
        eval_config.write_text(original)
    assert 'voc20b' in one_line_error(proc) and '`dvc repro prepare_smoke`' in proc.stderr
    assert metrics.read_text() == before
    runs = row_runs(grid, 't1_convnext_b')
    assert client(grid).get_run(good.info.run_id).info.status == 'FINISHED'
    assert runs[-1].info.status == 'FAILED' and [r.info.status for r in runs[:-1]][-1] == 'FINISHED'


def test_a_recreated_run_gets_the_training_curve_from_the_work_dir(grid, two_rows, tmp_path):
    root, env = grid
    wiped = dict(env, MLFLOW_TRACKING_URI=f'sqlite:///{tmp_path / "new.db"}')
    proc = subprocess.run([sys.executable, '-m', 'logoseg.experiments.run_row', 't1_convnext_b'], cwd=root, env=wiped,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    new = MlflowClient(wiped['MLFLOW_TRACKING_URI'])
    (run,) = new.search_runs([new.get_experiment_by_name('logoseg').experiment_id], "tags.row = 't1_convnext_b'")
    assert run.info.status == 'FINISHED'
    steps = [m.step for m in new.get_metric_history(run.info.run_id, 'loss')]
    assert steps and steps == sorted(set(steps)) and 'val/mIoU' in run.data.metrics


def test_a_renamed_class_makes_the_rows_trained_on_it_stale(grid, two_rows):
    root, env = grid
    vocabulary = root / 'projects' / 'logoseg' / 'vocab' / 'coco.json'
    original = vocabulary.read_text()
    fingerprint = [sys.executable, '-c', 'from logoseg.experiments.grid import load_row; '
                   'print(load_row("t2_op").fingerprint)']
    before = subprocess.run(fingerprint, cwd=root, env=env, capture_output=True, text=True, check=True).stdout
    names = json.loads(original)
    names[0] = 'renamed ' + (names[0] if isinstance(names[0], str) else names[0][0])
    vocabulary.write_text(json.dumps(names))
    try:
        status = json.loads(dvc(grid, 'status', 'row@t2_op', 'row@t1_convnext_b', '--json').stdout)
        after = subprocess.run(fingerprint, cwd=root, env=env, capture_output=True, text=True, check=True).stdout
    finally:
        vocabulary.write_text(original)
    assert 'row@t2_op' in status and 'row@t1_convnext_b' in status
    assert after != before  # run_row retrains: the complete training is another configuration's


def test_a_moved_checkout_keeps_its_trainings(grid, two_rows, tmp_path):
    root, env = grid
    moved = tmp_path / 'moved'
    shutil.copytree(root, moved, symlinks=True)
    done = json.loads((work_dirs(grid, 't1_convnext_b')[0] / 'done.json').read_text())
    assert not os.path.isabs(done['checkpoint'])
    env = dict(env, PYTHONPATH=str(moved / 'projects'))
    proc = subprocess.run([sys.executable, '-c', 'from logoseg.experiments.grid import load_row; '
                           'r = load_row("t1_convnext_b"); print(r.fingerprint, r.work_dir)'],
                          cwd=moved, env=env, capture_output=True, text=True, check=True)
    fingerprint, work_dir = proc.stdout.split()
    assert fingerprint == done['fingerprint'] and Path(work_dir).parent.parent.parent.parent.parent == moved


def test_a_queued_experiment_works_in_its_own_copy_and_dvc_shows_its_metrics(grid, two_rows):
    root, env = grid
    own = {p.name for p in (root / 'results' / 'smoke' / 'train').iterdir()}
    runs_before = {r.info.run_id: r.info.status for r in row_runs(grid, 't2_op')}
    queued = dvc(grid, 'exp', 'run', '--queue', 'row@t3_depth1', '-S',
                 'experiments/rows.yaml:+rows.t3_depth1.set.r=8', '--name', 'depth1-r8')
    assert queued.returncode == 0, queued.stdout + queued.stderr
    ran = dvc(grid, 'exp', 'run', '--run-all')
    assert ran.returncode == 0 and 'Failed' not in ran.stdout + ran.stderr, (ran.stdout + ran.stderr)[-4000:]
    table = dvc(grid, 'exp', 'show', '--csv', '--no-pager')
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    (exp,) = [r for r in rows if r['Experiment'] == 'depth1-r8']
    assert exp['rows.t3_depth1.set.r'] == '8'
    assert float(exp['results/smoke/metrics/t3_depth1.json:ade150.mIoU']) >= 0
    (run,) = row_runs(grid, 't3_depth1')
    assert run.data.params['r'] == '8' and run.data.tags['dvc_exp'] == 'depth1-r8'
    assert run.info.status == 'FINISHED'
    # the main workspace: no training, metrics or run of it touched
    assert {p.name for p in (root / 'results' / 'smoke' / 'train').iterdir()} == own
    assert not (root / 'results' / 'smoke' / 'metrics' / 't3_depth1.json').exists()
    assert {r.info.run_id: r.info.status for r in row_runs(grid, 't2_op')} == runs_before
    assert yaml.safe_load((root / 'experiments' / 'rows.yaml').read_text())['rows']['t3_depth1']['set'] == \
        {'fusion_depth': 1}


def readme_set_commands() -> list[list[str]]:
    import shlex
    docs = '\n'.join(path.read_text() for path in [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))])
    lines = [line.split('#')[0].strip() for line in docs.splitlines() if line.startswith('dvc exp run -S')]
    assert lines, 'neither the README nor docs/ shows a `dvc exp run -S` example'
    return [shlex.split(line) for line in lines]


def test_the_readme_dvc_set_examples_are_accepted_by_dvc(grid, two_rows):
    """DVC checks an override when it queues it (a key absent from the file needs `+`)."""
    for command in readme_set_commands():
        queued = dvc(grid, *command[1:3], '--queue', *command[3:])
        assert queued.returncode == 0, f'{" ".join(command)}: {queued.stdout}{queued.stderr}'
    dvc(grid, 'queue', 'remove', '--queued')


def test_a_failed_exp_run_switches_params_and_the_readme_command_restores_them(grid, two_rows):
    root, env = grid
    before = (root / 'params.yaml').read_text()
    failed = dvc(grid, 'exp', 'run', '-S', 'profile=paper', 'ablation_grid')
    assert failed.returncode != 0  # the paper's data is not prepared here
    assert yaml.safe_load((root / 'params.yaml').read_text())['profile'] == 'paper'  # DVC's behaviour
    doc = (REPO / 'docs' / 'experiments.md').read_text()
    restore = next(line.split('#')[0].strip() for line in doc.splitlines() if line.startswith('git checkout --'))
    subprocess.run(restore, shell=True, cwd=root, env=env, check=True)
    assert (root / 'params.yaml').read_text() == before


def test_a_killed_training_resumes_in_the_same_run_and_ends_as_the_uninterrupted_one(grid, two_rows):
    """The smoke row twin `t3_lq_again` (the same knobs) trains uninterrupted; `t3_lq` is killed after its
    half-way checkpoint and resumed: same MLflow run, one value per step, and the same metrics."""
    root, env = grid
    params_file, rows_file = root / 'params.yaml', root / 'experiments' / 'rows.yaml'
    # 160 iterations: 80 after the half-way checkpoint (~4 s at smoke speed) to signal before the next one
    original_params = edit_yaml(params_file, lambda d: d['smoke'].update(max_iters=160))
    original_rows = edit_yaml(rows_file, lambda d: d['rows'].update(
        t3_lq_again=dict(tables={}, set=dict(d['rows']['t3_lq']['set']))))
    try:
        command = [sys.executable, '-m', 'logoseg.experiments.run_row', 't3_lq']
        proc = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.time() + 600

        def half_way():  # mmengine writes `last_checkpoint` once the checkpoint file is complete
            pointers = (root / 'results' / 'smoke' / 'train' / 't3_lq').glob('*/last_checkpoint')
            return [p.parent for p in pointers if p.read_text().strip().endswith('iter_80.pth')]
        while not half_way() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert half_way(), proc.stderr.read() if proc.poll() is not None else 'timeout'
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        (work_dir,) = half_way()
        (killed,) = row_runs(grid, 't3_lq')
        assert killed.info.status == 'KILLED'
        assert not (work_dir / 'done.json').exists() and 'KILLED' in (work_dir / 'INCOMPLETE').read_text()
        resumed = run_row(grid, 't3_lq')
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert 'resumed epoch: 0, iter: 80' in resumed.stdout + resumed.stderr
        twin = run_row(grid, 't3_lq_again')
        assert twin.returncode == 0, twin.stderr[-3000:]
    finally:
        params_file.write_text(original_params)
        rows_file.write_text(original_rows)
    (run,) = row_runs(grid, 't3_lq')  # the same run, reopened
    assert run.info.run_id == killed.info.run_id and run.info.status == 'FINISHED'
    assert (work_dir / 'done.json').is_file() and not (work_dir / 'INCOMPLETE').exists()
    steps = [m.step for m in client(grid).get_metric_history(run.info.run_id, 'loss')]
    assert steps == sorted(set(steps)) and max(steps) == 160
    ours, theirs = (json.loads((root / 'results' / 'smoke' / 'metrics' / f'{r}.json').read_text())
                    for r in ('t3_lq', 't3_lq_again'))
    assert {b: ours[b] for b in BENCHMARKS} == {b: theirs[b] for b in BENCHMARKS}


def test_ctrl_c_ends_a_row_with_one_line_and_the_run_killed(grid, two_rows):
    root, env = grid
    proc = subprocess.Popen([sys.executable, '-m', 'logoseg.experiments.run_row', 't2_op_ra'], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    training = lambda: list((root / 'results' / 'smoke' / 'train' / 't2_op_ra').glob('*/*/vis_data/scalars.json'))  # noqa
    while not training() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert training(), proc.stderr.read() if proc.poll() is not None else 'timeout'
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and 'Traceback' not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == ('logoseg: t2_op_ra: interrupted; `dvc repro row@t2_op_ra` resumes '
                                               'it from its last checkpoint')
    (run,) = row_runs(grid, 't2_op_ra')
    assert run.info.status == 'KILLED'


def test_a_truncated_label_fails_the_row_with_one_line_naming_the_file(grid, two_rows):
    root, _ = grid
    labels = sorted((root / 'prepared' / 'smoke_standins' / 'prepared' / 'coco_stuff171' / 'val2017').glob('*.png'))
    data = labels[0].read_bytes()
    labels[0].write_bytes(data[:len(data) // 2])
    try:
        proc = run_row(grid, 't2_op_ccf')
    finally:
        labels[0].write_bytes(data)
    line = one_line_error(proc)
    assert f'cannot read {labels[0]}' in line and '`dvc repro prepare_smoke`' in line
    assert 'traceback in results/smoke/logs/t2_op_ccf.log' in line
    assert 'Traceback' in (root / 'results' / 'smoke' / 'logs' / 't2_op_ccf.log').read_text()
    (run,) = row_runs(grid, 't2_op_ccf')
    assert run.info.status == 'FAILED' and str(labels[0]) in run.data.tags['error']
    (work_dir,) = work_dirs(grid, 't2_op_ccf')
    assert not (work_dir / 'done.json').exists() and not (work_dir / 'final.pth').exists()
    assert 'FAILED' in (work_dir / 'INCOMPLETE').read_text()
    assert not (root / 'results' / 'smoke' / 'metrics' / 't2_op_ccf.json').exists()
