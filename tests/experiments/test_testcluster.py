"""The project's single-node SLURM: two one-CPU jobs run at once, submitit learns their states through the
test cluster's sacct, and the cluster starts and stops cleanly from its script."""
import os
import subprocess
import sys
import time

import pytest
import submitit

from logoseg.experiments import testcluster

pytestmark = pytest.mark.slow


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


def test_the_script_starts_and_stops_a_second_cluster_without_leftovers(slurm_cluster, tmp_path):
    script = testcluster.__file__
    folder = tmp_path / 'second'
    start = subprocess.run([sys.executable, script, 'start', str(folder)], capture_output=True, text=True, timeout=120)
    try:
        assert start.returncode == 0, start.stderr
        assert f'export SLURM_CONF={folder}/slurm.conf' in start.stdout
        pids = [int((folder / f'{daemon}.pid').read_text()) for daemon in testcluster.DAEMONS]
        env = dict(os.environ, SLURM_CONF=str(folder / 'slurm.conf'))
        assert subprocess.run(['sinfo', '-h', '-N', '-o', '%t %c'], env=env, capture_output=True, text=True,
                              check=True).stdout.split() == ['idle', str(os.cpu_count())]
    finally:
        stop = subprocess.run([sys.executable, script, 'stop', str(folder)], capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stderr
    assert not any(testcluster._alive(pid) for pid in pids)
    assert not list(folder.glob('*.pid'))
