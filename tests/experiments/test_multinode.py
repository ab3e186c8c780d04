"""A row over two nodes, on the project's test cluster posing as two nodes (``testcluster.py --nodes 2``: one
slurmd per node, one CPU each): submitted as the user does, its two training processes run one on each node
(mmengine's slurm launcher in a step of the job), it is preempted after its first checkpoint as SLURM does it,
resumes in the same MLflow run, and ends with the metrics of its twin trained in two processes on one node
(torchrun), outside SLURM."""
import json
import re
import subprocess
import time

import pytest
import submitit
import yaml

from logoseg.experiments import testcluster

from .conftest import cluster_running
from .test_submit import copy_repository, first_checkpoint, row_runs, run, with_data

if testcluster.available():
    pytest.skip(f'no SLURM test cluster: {testcluster.available()}', allow_module_level=True)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ROW, TWIN = 't2_op', 't2_op_twin'  # the twin (same knobs) is trained outside SLURM, two processes on one node
ITERS = 200  # the smoke config checkpoints every 100: the preemption comes after the first, mid-training


@pytest.fixture(scope='module')
def two_nodes(tmp_path_factory):
    with cluster_running(tmp_path_factory.mktemp('slurm_two_nodes'), nodes=2) as folder:
        yield folder


@pytest.fixture(scope='module')
def grid(two_nodes, mlflow_server, tmp_path_factory):
    """The smoke profile with two training processes per row, over two nodes under SLURM."""
    root = tmp_path_factory.mktemp('multinode_grid') / 'repo'
    root.mkdir()
    copy_repository(root)
    params = yaml.safe_load((root / 'params.yaml').read_text())
    params['smoke'].update(max_iters=ITERS, gpus=2)
    params['smoke']['slurm'].update(nodes=2, gpus_per_node=0, cpus_per_task=1)
    (root / 'params.yaml').write_text(yaml.safe_dump(params, sort_keys=False))
    return root, with_data(root, mlflow_server)


@pytest.fixture(scope='module')
def preempted(grid):
    """Submit ROW, preempt it after its first checkpoint, wait for it; then train TWIN outside SLURM."""
    root, env = grid
    started = time.monotonic()
    out = run(root, env, 'logoseg.experiments.submit', '--rows', ROW)
    (job_id,) = re.findall(rf'^{ROW} -> job (\S+), ', out, re.M)
    checkpointed = first_checkpoint(root, ROW)
    subprocess.run(['scancel', '--signal=USR2', job_id], check=True, env=env)
    submitit.SlurmJob(folder=root / 'results' / 'smoke' / 'slurm', job_id=job_id).wait()
    seconds = time.monotonic() - started
    # one thread per process, as in the SLURM job (one CPU per task there; torchrun's default here)
    run(root, dict(env, OMP_NUM_THREADS='1'), 'logoseg.experiments.run_row', TWIN, '--profile', 'smoke', timeout=600)
    log = root / json.loads((root / 'results' / 'smoke' / 'slurm' / 'jobs.json').read_text())[ROW]['log']
    return dict(job_id=job_id, checkpointed=checkpointed, log=log.read_text(), seconds=seconds)


def test_the_rows_processes_train_one_on_each_node(preempted):
    log = preempted['log']
    first, second = testcluster.node_names(2)
    # once before the requeue, once after
    assert log.count(f'{ROW}: training process 0 of 2 on node {first}\n') == 2, log[-3000:]
    assert log.count(f'{ROW}: training process 1 of 2 on node {second}\n') == 2, log[-3000:]
    assert 'Distributed launcher: slurm' in log and 'attempt 2 (requeues so far: 1)' in log
    print(f"a row over two nodes, submit to job end (one requeue): {preempted['seconds']:.0f} s")


def test_preempted_it_resumes_from_its_checkpoint_in_the_same_run(grid, mlflow_server, preempted):
    root, _ = grid
    (run_,) = row_runs(mlflow_server, ROW)
    assert run_.info.status == 'FINISHED'
    assert run_.data.tags['requeues'] == '1' and run_.data.tags['slurm_job_id'] == preempted['job_id']
    saved = re.search(r'Preempted: saving checkpoint at (\d+) iterations', preempted['log'])
    resumed = re.search(r'resumed epoch: 0, iter: (\d+)', preempted['log'])
    assert saved and resumed, preempted['log'][-3000:]
    assert preempted['checkpointed'] <= int(resumed.group(1)) == int(saved.group(1)) < ITERS


def test_it_ends_as_its_twin_trained_on_one_node(grid, mlflow_server, preempted):
    """Two processes over two nodes (preempted once) and two on one node (torchrun) train the same model:
    same world size, data shards, seeds and threads."""
    root, _ = grid
    (twin,) = row_runs(mlflow_server, TWIN)
    assert twin.info.status == 'FINISHED'
    metrics = json.loads((root / 'results' / 'smoke' / 'metrics' / f'{ROW}.json').read_text())
    expected = json.loads((root / 'results' / 'smoke' / 'metrics' / f'{TWIN}.json').read_text())
    for benchmark in ('ade847', 'pc459', 'ade150', 'pc59', 'voc20', 'voc20b', 'standin'):
        assert metrics[benchmark] == expected[benchmark], benchmark
