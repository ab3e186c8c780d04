"""What one SLURM job of the grid runs: ``python -m logoseg.experiments.run_row ROW --profile P`` in the repository,
requeued by submitit when SLURM preempts it or its time limit approaches.

:class:`RowJob` is the callable submitit pickles. Its process (submitit's, under ``srun``) starts ``run_row`` as
a child with ``LOGOSEG_PREEMPTIBLE=1``, so that the child saves a checkpoint and exits when signalled
(``experiments/preemption.py``). On the signal submitit calls :meth:`RowJob.checkpoint` here: it waits for the child
to finish that, counts the requeue on the row's MLflow run and returns the job to submitit, which requeues it.
The rerun of ``run_row`` resumes from the checkpoint in the same MLflow run. After ``max_requeues`` requeues, or
when the child fails, the run ends FAILED with an ``error`` tag naming the cause, the job and its log file.

A job over several nodes (``slurm.nodes > 1``) has one task per node. The first runs ``run_row``, which trains in
a step of the job over all its nodes (``srun``, mmengine's ``slurm`` launcher: ``slurm.training_step``); the
tasks on the other nodes have nothing of their own to do and return at once.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import submitit
from submitit.helpers import Checkpointable, DelayedSubmission

from .preemption import ENV, EXIT_PREEMPTED, preemption_signal
from .slurm import NODES_ENV
from .tracking import EXPERIMENT

CHILD_GRACE_S = 60  # SLURM signals 90 s (submitit's signal_delay_s) before it kills: the child saves within that
SIGTERM_CODES = (-signal.SIGTERM, 128 + signal.SIGTERM)  # scancel: the run is KILLED, nothing to add


class RowFailed(RuntimeError):
    """The row's training or evaluation failed; the message is the ``error`` tag of its MLflow run."""


class RowJob(Checkpointable):
    """Train and evaluate one grid row in a SLURM job; requeued with its requeue count on preemption."""

    def __init__(self, row: str, profile: str, root: str | Path, max_requeues: int):
        self.row = row
        self.profile = profile
        self.root = str(root)
        self.max_requeues = max_requeues
        self.requeues = 0
        self._child: Optional[subprocess.Popen] = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state['_child'] = None  # a process handle is neither picklable nor meaningful after the requeue
        return state

    # -- the job -----------------------------------------------------------------------------------------------
    def __call__(self) -> str:
        job = submitit.JobEnvironment()
        if job.global_rank:  # a further node of the job: its share of the training runs in run_row's step
            return f'{self.row}: node {job.node} of {job.num_nodes}'
        env = dict(os.environ, **{ENV: '1', NODES_ENV: str(job.num_nodes)})
        # torch would start one thread per core of the node, not per CPU SLURM gave the job: rows sharing a node
        # then slow each other down
        env.setdefault('OMP_NUM_THREADS', os.environ.get('SLURM_CPUS_PER_TASK', '1'))
        print(f'logoseg: row {self.row} ({self.profile} profile), attempt {self.requeues + 1} '
              f'(requeues so far: {self.requeues}) on {socket.gethostname()}', flush=True)
        command = [sys.executable, '-m', 'logoseg.experiments.run_row', self.row, '--profile', self.profile]
        self._child = subprocess.Popen(command, cwd=self.root, env=env)
        code = self._child.wait()  # a preemption signal interrupts this wait: see checkpoint()
        pid = self._child.pid
        if code == 0:
            self._tag(pid)
            return f'{self.row}: done'
        if code in SIGTERM_CODES:
            raise RowFailed(f'{self.row}: cancelled (run_row ended on SIGTERM; its run is KILLED)')
        if code in (EXIT_PREEMPTED, -preemption_signal()):
            cause = ('the training stopped for a preemption signal that did not reach the job process; '
                     'submit the row again to resume it')
        else:
            cause = f'run_row exited with status {code}' + (' (killed: out of memory?)' if code < 0 else '')
        raise RowFailed(self._fail(pid, cause))

    def checkpoint(self, *args, **kwargs) -> Optional[DelayedSubmission]:
        """submitit's preemption / time-out hook (in the signal handler): let the child checkpoint and exit,
        then hand the job back for requeueing, or end the row FAILED when it has been requeued enough."""
        child = self._child
        pid = child.pid if child is not None else None
        if pid is not None:
            self._stop_child(pid)
        if self.requeues >= self.max_requeues:
            self._fail(pid, f'preempted or timed out {self.requeues + 1} times: more than max_requeues = '
                            f'{self.max_requeues} ({self.profile}.slurm.max_requeues in params.yaml)')
            return None  # submitit: "checkpoint function returned None": not requeued, the job ends
        self.requeues += 1
        self._tag(pid)
        print(f'logoseg: row {self.row} requeued ({self.requeues} of at most {self.max_requeues})', flush=True)
        return DelayedSubmission(self)

    def _stop_child(self, pid: int) -> None:
        """Forward the signal (SLURM may have signalled only this process) and wait for the child to exit,
        without reaping it: the interrupted ``Popen.wait`` in :meth:`__call__` holds the process's wait lock."""
        try:
            os.kill(pid, preemption_signal())
        except ProcessLookupError:
            return
        for sig, grace in ((None, CHILD_GRACE_S), (signal.SIGTERM, 30)):
            if sig is not None:  # it did not stop in time (a long validation): stop it, it resumes from its
                os.kill(pid, sig)  # last periodic checkpoint
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return
                time.sleep(0.2)

    # -- the MLflow run ----------------------------------------------------------------------------------------
    def _log(self) -> str:
        try:
            return str(submitit.JobEnvironment().paths.stdout)
        except Exception:  # not in a submitit job (a direct call): no log of ours
            return ''

    def _job_id(self) -> str:
        try:
            return submitit.JobEnvironment().job_id
        except Exception:
            return ''

    def _run(self, pid: Optional[int]):
        """This attempt's MLflow run: the row's run whose process was our child (``run_row`` tags host and pid)."""
        from mlflow import MlflowClient
        client = MlflowClient()
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            return client, None
        query = f"tags.row = '{self.row}' and tags.profile = '{self.profile}'"
        if pid is not None:
            query += f" and tags.pid = '{pid}' and tags.host = '{socket.gethostname()}'"
        runs = client.search_runs([experiment.experiment_id], query, order_by=['attributes.start_time DESC'],
                                  max_results=1)
        return client, (runs[0] if runs else None)

    def _tag(self, pid: Optional[int]) -> None:
        client, run = self._run(pid)
        if run is not None:
            from mlflow.entities import RunTag
            tags = dict(requeues=str(self.requeues), slurm_job_id=self._job_id(), slurm_log=self._log())
            client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def _fail(self, pid: Optional[int], cause: str) -> str:
        """End the attempt's run FAILED; its ``error`` tag: the run's own error (or ``cause``), job and log."""
        client, run = self._run(pid)
        error = (run.data.tags.get('error') if run is not None else None) or cause
        if cause not in error:
            error = f'{cause}: {error}'
        error = f'{error} (SLURM job {self._job_id()}, log {self._log()})'
        if run is not None:
            self._tag(pid)
            client.set_tag(run.info.run_id, 'error', error[:5000])
            client.set_terminated(run.info.run_id, 'FAILED')
        print(f'logoseg: row {self.row} FAILED: {error}', file=sys.stderr, flush=True)
        return f'{self.row}: {error}'
