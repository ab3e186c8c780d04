"""The smoke grid on a real SLURM (the project's single-node test cluster, first checked on its own: two
one-CPU jobs at once, submitit reading their states through its sacct, start and stop by its script), as a
user drives it: three rows submitted as one job array (two run at once on two cores), one preempted in
mid-training as SLURM does it (its preemption signal, USR2) that checkpoints, is requeued and resumes in the
same MLflow run; one row that crashes ends FAILED naming its log; submitting again while they run submits
nothing; the status command follows them; cancel stops the grid's jobs."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import submitit
import yaml
from mlflow import MlflowClient

from logoseg.experiments import testcluster

from ..conftest import REPO

if testcluster.available():  # one line in the summary, not one per test
    pytest.skip(f'no SLURM test cluster: {testcluster.available()}', allow_module_level=True)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
BIN = Path(sys.executable).parent
ITERS = 300  # the smoke config checkpoints every 100: the preemption comes after the first, mid-training
# PLAIN is PREEMPTED's twin (the same knobs), uninterrupted; the crash: pc59's training labels are unreadable
PREEMPTED, PLAIN, CRASHING = 't2_op', 't2_op_twin', 't5_pc59'
ROWS = (PREEMPTED, PLAIN, CRASHING)


def test_two_one_cpu_jobs_run_at_once_and_submitit_reads_their_results(slurm_cluster, tmp_path):
    executor = submitit.AutoExecutor(folder=tmp_path / 'jobs', cluster='slurm')
    executor.update_parameters(timeout_min=5, cpus_per_task=1, mem_gb=1, slurm_partition=testcluster.PARTITION)
    started = time.monotonic()
    jobs = executor.map_array(time.sleep, [4, 4])
    assert [job.result() for job in jobs] == [None, None]  # both finished; each slept 4 s
    # side by side on the node's two CPUs: one after the other would take over 8 s plus two start-ups
    elapsed = time.monotonic() - started
    assert elapsed < 8 + 6, elapsed
    # what submitit asks when a job ended without a result: the shim answers from squeue
    sacct = subprocess.run(['sacct', '-o', 'JobID,State,NodeList', '--parsable2', '-j', jobs[0].job_id.split('_')[0]],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert sacct[0] == 'JobID|State|NodeList'
    states = {line.split('|')[0]: line.split('|')[1] for line in sacct[1:]}
    assert set(states) == {job.job_id for job in jobs}
    # the result file comes a moment before SLURM sees the job end
    assert set(states.values()) <= {'RUNNING', 'COMPLETING', 'COMPLETED'}, states


@pytest.mark.parametrize('nodes', [1, 2])
def test_the_script_starts_and_stops_a_second_cluster_without_leftovers(slurm_cluster, tmp_path, nodes):
    """One node with every CPU, or the machine posing as two nodes sharing them (one slurmd each)."""
    script = testcluster.__file__
    folder = tmp_path / 'second'
    start = subprocess.run([sys.executable, script, 'start', str(folder), '--nodes', str(nodes)],
                           capture_output=True, text=True, timeout=120)
    try:
        assert start.returncode == 0, start.stderr
        assert f'export SLURM_CONF={folder}/slurm.conf' in start.stdout
        pids = testcluster.pids(folder)
        assert len(pids) == 2 + nodes  # munged, slurmctld and a slurmd per node
        env = dict(os.environ, SLURM_CONF=str(folder / 'slurm.conf'))
        listed = subprocess.run(['sinfo', '-h', '-N', '-o', '%N %t %c'], env=env, capture_output=True, text=True,
                                check=True).stdout.split('\n')
        cpus = str(max(os.cpu_count() // nodes, 1))
        assert sorted(filter(None, listed)) == [f'{name} idle {cpus}' for name in testcluster.node_names(nodes)]
        if nodes > 1:  # a job over both nodes gets one task on each
            hosts = subprocess.run(['srun', f'--nodes={nodes}', '--ntasks-per-node=1', 'printenv', 'SLURMD_NODENAME'],
                                   env=env, capture_output=True, text=True, timeout=60, check=True).stdout.split()
            assert sorted(hosts) == testcluster.node_names(nodes)
    finally:
        stop = subprocess.run([sys.executable, script, 'stop', str(folder)], capture_output=True, text=True,
                              timeout=120)
    assert stop.returncode == 0, stop.stderr
    assert not any(testcluster._alive(pid) for pid in pids)
    assert not list(folder.glob('*.pid'))


def copy_repository(dest: Path) -> None:
    """A fresh clone: the tracked files (with this checkout's edits), the smoke profile on the slurm executor."""
    files = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split('\0')
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    params = yaml.safe_load((dest / 'params.yaml').read_text())
    params['smoke']['max_iters'] = ITERS
    params['smoke']['executor'] = 'slurm'
    params['smoke']['slurm'].update(partition='debug', time_min=30, cpus_per_task=1, mem_gb=2, max_parallel=2,
                                    max_requeues=2)
    (dest / 'params.yaml').write_text(yaml.safe_dump(params, sort_keys=False))
    rows = yaml.safe_load((dest / 'experiments' / 'rows.yaml').read_text())
    rows['rows'][PLAIN] = dict(tables={}, set=dict(rows['rows'][PREEMPTED]['set']))
    (dest / 'experiments' / 'rows.yaml').write_text(yaml.safe_dump(rows, sort_keys=False))
    for command in (['git', 'init', '-q'], ['git', 'add', '-A'],
                    ['git', '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'copy']):
        subprocess.run(command, cwd=dest, check=True)


def run(root, env, *args, timeout=300):
    proc = subprocess.run([sys.executable, '-m', *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def with_data(root: Path, mlflow_server: str) -> dict:
    """The environment of a user submitting from the copy at ``root``, after ``dvc repro data_smoke`` there."""
    env = dict(os.environ, PATH=f'{BIN}:{os.environ["PATH"]}', PYTHONPATH=str(root / 'projects'),
               MLFLOW_TRACKING_URI=mlflow_server)
    for key in ('MLFLOW_RUN_ID', 'OMP_NUM_THREADS'):
        env.pop(key, None)
    proc = subprocess.run([str(BIN / 'dvc'), 'repro', 'data_smoke'], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return env


@pytest.fixture(scope='module')
def grid(slurm_cluster, mlflow_server, tmp_path_factory):
    root = tmp_path_factory.mktemp('slurm_grid') / 'repo'
    root.mkdir()
    copy_repository(root)
    env = with_data(root, mlflow_server)
    labels = root / 'prepared' / 'smoke_standins' / 'prepared' / 'pc59' / 'train'
    shutil.copytree(labels, root.parent / 'pc59_train_labels')  # restored before DVC looks at the data
    for label in labels.rglob('*.png'):
        label.write_bytes(b'not a png')
    return root, env


@pytest.fixture(scope='module')
def submitted(grid):
    """Submit, submit again, preempt PREEMPTED after its first checkpoint, and wait for the three jobs."""
    root, env = grid
    started = time.monotonic()
    first = run(root, env, 'logoseg.experiments.submit', '--rows', *ROWS)
    jobs = dict(re.findall(r'^(\S+) -> job (\S+), ', first, re.M))
    assert set(jobs) == set(ROWS), first
    second = run(root, env, 'logoseg.experiments.submit', '--rows', *ROWS)
    early = run(root, env, 'logoseg.experiments.status', '--rows', *ROWS)
    # the preemption, as SLURM sends it (to the job's processes, not to the batch shell)
    checkpointed = first_checkpoint(root, PREEMPTED)
    subprocess.run(['scancel', '--signal=USR2', jobs[PREEMPTED]], check=True, env=env)
    folder = root / 'results' / 'smoke' / 'slurm'
    for job_id in jobs.values():
        submitit.SlurmJob(folder=folder, job_id=job_id).wait()  # its result file: success or error
    status = run(root, env, 'logoseg.experiments.status', '--rows', *ROWS)
    return dict(first=first, second=second, early=early, checkpointed=checkpointed, jobs=jobs, status=status,
                seconds=time.monotonic() - started)


def first_checkpoint(root, row, timeout=300) -> int:
    """Wait for the row's first periodic checkpoint (in its configuration's work dir,
    ``train/<row>/<fingerprint>``); returns its iteration."""
    train_dir = root / 'results' / 'smoke' / 'train' / row
    deadline = time.monotonic() + timeout
    while not list(train_dir.glob('*/iter_*.pth')) and time.monotonic() < deadline:
        time.sleep(0.2)
    found = list(train_dir.glob('*/iter_*.pth'))
    assert found, f'no first checkpoint of {row} within {timeout} s'
    return int(found[0].stem.split('_')[1])


def row_runs(url, row):
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name('logoseg')
    return client.search_runs([experiment.experiment_id], f"tags.row = '{row}'")


def test_submit_prints_row_job_and_log_and_a_second_submit_submits_nothing(grid, submitted):
    root, _ = grid
    record = json.loads((root / 'results' / 'smoke' / 'slurm' / 'jobs.json').read_text())
    for row in ROWS:
        assert record[row]['job_id'] == submitted['jobs'][row]
        assert f"{row} -> job {submitted['jobs'][row]}, log {record[row]['log']}" in submitted['first']
        assert f"{row}: not submitted, already" in submitted['second']
    assert 'nothing to submit' in submitted['second']
    # one array, two tasks at a time
    assert len({job.split('_')[0] for job in submitted['jobs'].values()}) == 1
    print(f"three rows on the test cluster, submit to last job end: {submitted['seconds']:.0f} s")


def test_a_preempted_row_resumes_from_its_checkpoint_in_the_same_run(grid, mlflow_server, submitted):
    root, _ = grid
    (run,) = row_runs(mlflow_server, PREEMPTED)  # one run for the whole training
    assert run.info.status == 'FINISHED'
    assert run.data.tags['requeues'] == '1' and run.data.tags['slurm_job_id'] == submitted['jobs'][PREEMPTED]
    log = (root / json.loads((root / 'results' / 'smoke' / 'slurm' / 'jobs.json').read_text())[PREEMPTED]['log'])
    text = log.read_text()
    saved = re.search(r'Preempted: saving checkpoint at (\d+) iterations', text)
    # what a requeue costs: signal -> requeued (checkpoint, run closed), and start -> training going on again
    # (imports, build, resume); in between the job waits for a free CPU (the other two rows hold both here)
    def stamp(pattern, fmt):
        found = re.findall(pattern, text, re.M)
        assert found, pattern
        return [time.mktime(time.strptime(value, fmt)) for value in found]
    submitit_stamp = r'^submitit \w+ \(\d+-(\d+-\d+ \d+:\d+:\d+),\d+\) - '
    (signalled,) = stamp(submitit_stamp + 'Caught signal SIGUSR2', '%m-%d %H:%M:%S')[:1]
    (requeued,) = stamp(submitit_stamp + 'Requeued job', '%m-%d %H:%M:%S')
    restarted = stamp(submitit_stamp + 'Starting with', '%m-%d %H:%M:%S')[1]
    (going_on,) = stamp(r'^(\d+/\d+ \d+:\d+:\d+) - mmengine - INFO - resumed epoch: 0, iter: (?!300)', '%m/%d %H:%M:%S')
    cost = (requeued - signalled) + (going_on - restarted)
    print(f'requeue: signal -> requeued {requeued - signalled:.0f} s, pending {restarted - requeued:.0f} s, '
          f'start -> resumed training {going_on - restarted:.0f} s; no iteration lost')
    assert cost < 60  # the bound: the iterations since the last checkpoint (none here) plus 60 s
    resumed = re.search(r'resumed epoch: 0, iter: (\d+)', text)
    assert saved and resumed, text[-3000:]
    # resumed where it stopped, after its first periodic checkpoint: nothing redone, nothing lost
    assert submitted['checkpointed'] <= int(resumed.group(1)) == int(saved.group(1)) < ITERS
    assert 'attempt 2 (requeues so far: 1)' in text
    (done_file,) = (root / 'results' / 'smoke' / 'train' / PREEMPTED).glob('*/done.json')
    done = json.loads(done_file.read_text())
    assert done['run_id'] == run.info.run_id
    assert (root / 'results' / 'smoke' / 'metrics' / f'{PREEMPTED}.json').is_file()
    assert run.data.metrics['ade150/mIoU'] >= 0


def test_an_uninterrupted_twin_ends_as_the_preempted_row_with_nothing_lost(grid, mlflow_server, submitted):
    """The preempted row's twin ran without a requeue, logging while the other rows logged to the same server:
    every param, loss step and metric is there, and its metrics equal the preempted row's."""
    root, _ = grid
    (run,) = row_runs(mlflow_server, PLAIN)
    assert run.info.status == 'FINISHED' and run.data.tags['requeues'] == '0'
    assert {'op', 'ccf', 'ra', 'gc', 'da', 'r', 'lambda', 'backbone', 'max_iters'} <= set(run.data.params)
    history = MlflowClient(mlflow_server).get_metric_history(run.info.run_id, 'loss')
    assert sorted(m.step for m in history) == list(range(10, ITERS + 1, 10))  # logger interval 10
    metrics = json.loads((root / 'results' / 'smoke' / 'metrics' / f'{PLAIN}.json').read_text())
    preempted = json.loads((root / 'results' / 'smoke' / 'metrics' / f'{PREEMPTED}.json').read_text())
    for benchmark in ('ade847', 'pc459', 'ade150', 'pc59', 'voc20', 'voc20b'):
        assert run.data.metrics[f'{benchmark}/mIoU'] == pytest.approx(metrics[benchmark]['mIoU'], abs=1e-3)
        assert metrics[benchmark] == preempted[benchmark]  # the resumed training is the uninterrupted one


def test_a_crashing_row_ends_failed_naming_its_log(grid, mlflow_server, submitted):
    root, _ = grid
    (run,) = row_runs(mlflow_server, CRASHING)
    assert run.info.status == 'FAILED'
    error = run.data.tags['error']
    log = root / json.loads((root / 'results' / 'smoke' / 'slurm' / 'jobs.json').read_text())[CRASHING]['log']
    assert str(log) in error and f"SLURM job {submitted['jobs'][CRASHING]}" in error
    assert 'run_row exited with status 1' in error
    with pytest.raises(submitit.core.utils.FailedJobError, match=CRASHING):
        submitit.SlurmJob(folder=log.parent, job_id=submitted['jobs'][CRASHING]).result()


def test_status_shows_each_row(submitted):
    for line in submitted['early'].splitlines():  # right after submitting: two rows at a time
        assert re.match(r'\S+: (pending|running \((starting|iteration \d+/\d+, ETA \S+)\)|evaluating|done|failed.*) '
                        r'\| job \d+_\d, elapsed', line), line
    lines = {line.split(':')[0]: line for line in submitted['status'].splitlines()}
    assert lines[PREEMPTED].startswith(f'{PREEMPTED}: done | job {submitted["jobs"][PREEMPTED]}')
    assert lines[PLAIN].startswith(f'{PLAIN}: done')
    assert lines[CRASHING].startswith(f'{CRASHING}: failed (failed): run_row exited with status 1')
    for row in ROWS:
        assert 'MLflow run ' in lines[row] and ' | log results/smoke/slurm/' in lines[row]


def test_dvc_repro_records_the_rows_the_cluster_finished_without_training_them(grid, submitted):
    """The rows' stages run for seconds: run_row finds the complete training and the metrics JSON (a persistent
    output) of this configuration and code, and redoes nothing; DVC records them. A second repro is a no-op."""
    root, env = grid
    labels = root / 'prepared' / 'smoke_standins' / 'prepared' / 'pc59' / 'train'
    shutil.rmtree(labels)
    shutil.copytree(root.parent / 'pc59_train_labels', labels)
    stages = [f'row@{PREEMPTED}', f'row@{PLAIN}']
    dvc = [str(BIN / 'dvc'), 'repro', *stages]
    first = subprocess.run(dvc, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    output = first.stdout + first.stderr
    assert 'Iter(train)' not in output, output[-3000:]
    assert output.count('nothing to redo') == 2 and 'evaluating' not in output, output[-3000:]
    assert all(f"stage '{stage}'" in output for stage in stages)  # run (seconds) and recorded in dvc.lock
    again = subprocess.run(dvc, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and 'Running stage' not in again.stdout, again.stdout[-3000:]


def test_a_row_preempted_more_than_max_requeues_ends_failed(grid, mlflow_server, submitted):
    root, env = grid
    params = yaml.safe_load((root / 'params.yaml').read_text())
    params['smoke']['slurm']['max_requeues'] = 0
    (root / 'params.yaml').write_text(yaml.safe_dump(params, sort_keys=False))
    row = 't4_lambda0_r8'
    out = run(root, env, 'logoseg.experiments.submit', '--rows', row)
    (job,) = re.findall(rf'^{row} -> job (\S+), ', out, re.M)
    first_checkpoint(root, row)
    subprocess.run(['scancel', '--signal=USR2', job], check=True, env=env)
    folder = root / 'results' / 'smoke' / 'slurm'
    with pytest.raises(submitit.core.utils.FailedJobError, match='not requeued'):
        submitit.SlurmJob(folder=folder, job_id=job).result()
    (failed,) = row_runs(mlflow_server, row)
    error = failed.data.tags['error']
    assert failed.info.status == 'FAILED' and failed.data.tags['requeues'] == '0'
    assert error.startswith('preempted or timed out 1 times: more than max_requeues = 0 (smoke.slurm.max_requeues')
    assert f'SLURM job {job}, log {folder / f"{job}_0_log.out"}' in error
    assert not list((root / 'results' / 'smoke' / 'train' / row).glob('*/done.json'))


def test_cancel_stops_the_grid_jobs(grid, submitted):
    root, env = grid
    out = run(root, env, 'logoseg.experiments.submit', '--rows', 't2_op_ccf')
    (job,) = re.findall(r'^t2_op_ccf -> job (\S+), ', out, re.M)
    cancelled = run(root, env, 'logoseg.experiments.status', '--cancel')
    assert cancelled.strip() == f'cancelled 1 job(s): {job}'
    from logoseg.experiments.slurm import queue_states
    assert queue_states([job])[job]['state'] in ('CANCELLED', 'COMPLETING')
    again = run(root, env, 'logoseg.experiments.status', '--cancel')
    assert again.strip() == 'no job of the grid is pending or running'
