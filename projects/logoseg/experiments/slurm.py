"""The grid's SLURM executor: settings from ``params.yaml``, the submission record, and what SLURM says of a job.

A profile of ``params.yaml`` (``smoke``, ``paper``) runs its rows either with ``executor: local`` (``dvc repro
ablation_grid``, one row after another; the default) or ``executor: slurm``: ``python -m
logoseg.experiments.submit`` then submits every incomplete row as one task of a SLURM job array through
submitit, with the resources of the profile's ``slurm:`` section.

The submission record ``results/<profile>/slurm/jobs.json`` maps each submitted row to its job id, log file and
fingerprint; submitit's own files (pickled jobs, logs) are beside it.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import yaml

from ..utils.errors import LoGoSegUserError

EXECUTORS = ('local', 'slurm')
NODES_ENV = 'LOGOSEG_NODES'  # the nodes of the row's job (experiments.job): run_row trains over all of them
# job states in which a row is still on the cluster: submitting it again would train it twice
ACTIVE_STATES = {'PENDING', 'RUNNING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'CONFIGURING', 'COMPLETING',
                 'SUSPENDED', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'STOPPED', 'PREEMPTED'}
SERVER_HELP = ('start one where every node reaches it, e.g. `mlflow server --host 0.0.0.0 --port 5000 '
               '--backend-store-uri sqlite:///$PWD/mlflow.db --artifacts-destination $PWD/mlartifacts`, then '
               '`export MLFLOW_TRACKING_URI=http://$(hostname):5000` (docs/cluster.md)')


@dataclass(frozen=True)
class SlurmSettings:
    """A profile's ``slurm:`` section of ``params.yaml``: what one row's job asks SLURM for."""

    partition: str
    account: Optional[str] = None
    qos: Optional[str] = None
    time_min: int = 60            # the job's time limit; SLURM signals 90 s before it, the row is requeued
    nodes: int = 1                # > 1: the row's training processes spread over the nodes (mmengine's slurm launcher)
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float = 4
    max_parallel: int = 4         # rows running at once: the array's ``%N``
    max_requeues: int = 3         # preemptions and time-outs before the row ends FAILED
    sbatch: dict = field(default_factory=dict)  # more sbatch options: {constraint: a100, exclude: node3}

    def executor_parameters(self) -> dict:
        """Keyword arguments of submitit's ``AutoExecutor.update_parameters``."""
        parameters = dict(timeout_min=self.time_min, nodes=self.nodes, tasks_per_node=1,
                          cpus_per_task=self.cpus_per_task, mem_gb=self.mem_gb, slurm_partition=self.partition,
                          slurm_array_parallelism=self.max_parallel,
                          # one log per job: the row's training and evaluation output, in order
                          slurm_stderr_to_stdout=True,
                          slurm_additional_parameters=dict(self.sbatch))
        if self.gpus_per_node:
            parameters['gpus_per_node'] = self.gpus_per_node
        if self.account:
            parameters['slurm_account'] = self.account
        if self.qos:
            parameters['slurm_qos'] = self.qos
        return parameters


def find_root() -> Path:
    """The repository the grid runs in (``experiments.repository.repo_root``: the DVC repository of the current
    directory, else ``DVC_ROOT``), checked to hold the grid."""
    from .repository import repo_root
    root = repo_root()
    if not (root / 'params.yaml').is_file() or not (root / 'experiments' / 'rows.yaml').is_file():
        raise LoGoSegUserError(f'no LoGoSeg checkout at {root} (params.yaml, experiments/rows.yaml); '
                               'run from the repository')
    return root


def load_params(root: Path) -> dict:
    with open(root / 'params.yaml', encoding='utf-8') as f:
        return yaml.safe_load(f) or {}


def profile_of(root: Path, profile: Optional[str]) -> str:
    params = load_params(root)
    profile = profile or params.get('profile', 'smoke')
    if profile not in params or not isinstance(params[profile], dict):
        raise LoGoSegUserError(f'unknown profile {profile!r}: params.yaml has no section {profile}:')
    return profile


def executor_kind(root: Path, profile: str) -> str:
    kind = load_params(root)[profile].get('executor', 'local')
    if kind not in EXECUTORS:
        raise LoGoSegUserError(f'unknown executor {kind!r} in params.yaml {profile}.executor; '
                               f'use one of {", ".join(EXECUTORS)}')
    return kind


def slurm_settings(root: Path, profile: str) -> SlurmSettings:
    """The profile's SLURM settings, checked; one line naming the key for anything wrong."""
    kind = executor_kind(root, profile)
    if kind != 'slurm':
        raise LoGoSegUserError(f'profile {profile} runs locally ({profile}.executor: {kind} in params.yaml): '
                               'run `dvc repro ablation_grid`, or set executor: slurm and slurm.partition '
                               f'under {profile}: in params.yaml to submit its rows to SLURM')
    section = load_params(root)[profile].get('slurm') or {}
    known = set(SlurmSettings.__dataclass_fields__)
    unknown = sorted(set(section) - known)
    if unknown:
        raise LoGoSegUserError(f'unknown key(s) {unknown} in params.yaml {profile}.slurm; known: '
                               f'{", ".join(sorted(known))}')
    if not section.get('partition'):
        raise LoGoSegUserError(f'params.yaml {profile}.slurm.partition is missing: name the SLURM partition '
                               '(`sinfo -s` lists them)')
    values = {key: value for key, value in section.items() if value is not None}
    for key in ('time_min', 'nodes', 'cpus_per_task', 'max_parallel'):
        if key in values and (not isinstance(values[key], int) or values[key] < 1):
            raise LoGoSegUserError(f'params.yaml {profile}.slurm.{key}: {values[key]!r}; a positive integer')
    for key in ('gpus_per_node', 'max_requeues'):
        if key in values and (not isinstance(values[key], int) or values[key] < 0):
            raise LoGoSegUserError(f'params.yaml {profile}.slurm.{key}: {values[key]!r}; an integer >= 0')
    if not isinstance(values.get('sbatch', {}), dict):
        raise LoGoSegUserError(f'params.yaml {profile}.slurm.sbatch: a mapping of sbatch options '
                               '(e.g. {constraint: a100}), not {values["sbatch"]!r}')
    settings = SlurmSettings(**values)
    check_process_layout(profile, int(load_params(root)[profile].get('gpus') or 0), settings.nodes,
                         settings.gpus_per_node, settings.cpus_per_task)
    return settings


def check_process_layout(profile: str, gpus: int, nodes: int, gpus_per_node: int = 0,
                         cpus_per_task: Optional[int] = None) -> None:
    """A row trains in ``max(gpus, 1)`` processes (the profile's ``gpus``: one per GPU), spread evenly over
    ``nodes``; ``gpus_per_node`` is what SLURM gives each node: the node's processes' GPUs, or 0 for rows that
    train on CPUs. Over several nodes each process is a task of the training step: it needs a CPU of its own out
    of the node's ``cpus_per_task``."""
    processes = max(gpus, 1)
    if processes % nodes:
        raise LoGoSegUserError(f'params.yaml {profile}.slurm.nodes: {nodes}, but {profile}.gpus: {gpus} (training '
                               'processes, one per GPU) do not split evenly over them: make gpus a multiple of nodes')
    per_node = processes // nodes
    if gpus_per_node and gpus_per_node != per_node:
        raise LoGoSegUserError(f'params.yaml {profile}.slurm.gpus_per_node: {gpus_per_node}, but {profile}.gpus: '
                               f'{gpus} over {nodes} node(s) is {per_node} training process(es) per node, one per '
                               f'GPU: set gpus_per_node: {per_node} (or 0 for rows that train on CPUs)')
    if nodes > 1 and cpus_per_task is not None and cpus_per_task < per_node:
        raise LoGoSegUserError(f'params.yaml {profile}.slurm.cpus_per_task: {cpus_per_task}, fewer than the '
                               f'{per_node} training processes per node ({profile}.gpus: {gpus} over {nodes} nodes): '
                               f'set cpus_per_task to at least {per_node} (the node\'s CPUs, shared by its processes)')


def training_step(worker: list[str], processes: int, nodes: int) -> list[str]:
    """The ``srun`` that trains a row over its job's ``nodes``: ``processes`` workers (``worker``, under mmengine's
    ``slurm`` launcher), the same number on each node, sharing the CPUs the job has there.

    ``--overlap``: the job's first step (submitit's task on each node, ``run_row`` on the first) keeps its CPUs,
    memory and GPUs while this step runs, so the two must share them. ``--kill-on-bad-exit``: a worker that dies
    stops the others, as torchrun does, instead of leaving them waiting in a collective.
    """
    per_node = processes // nodes
    cpus = max(int(os.environ.get('SLURM_CPUS_PER_TASK') or 1) // per_node, 1)
    # block: ranks 0..per_node-1 on the first node (where rank 0 is expected), and so on
    return ['srun', '--overlap', f'--nodes={nodes}', f'--ntasks={processes}', f'--ntasks-per-node={per_node}',
            f'--cpus-per-task={cpus}', '--distribution=block', '--kill-on-bad-exit=1', *worker]


def check_tracking_server(uri: Optional[str] = None) -> str:
    """The tracking URI of the jobs: a server. Many jobs on many nodes writing one sqlite file (on a network
    filesystem) lose or corrupt data, so a sqlite or file store is refused with what to do instead."""
    uri = uri if uri is not None else os.environ.get('MLFLOW_TRACKING_URI', '')
    if not uri:
        raise LoGoSegUserError('the slurm executor needs an MLflow tracking server (MLFLOW_TRACKING_URI is '
                               f'unset, i.e. the sqlite file mlflow.db): {SERVER_HELP}')
    if uri.startswith(('sqlite:', 'file:', '/', '.')) or '://' not in uri:
        raise LoGoSegUserError(f'the slurm executor needs an MLflow tracking server, not the file store {uri}: '
                               f'{SERVER_HELP}')
    import urllib.error
    import urllib.request
    if uri.startswith(('http://', 'https://')):
        try:
            with urllib.request.urlopen(uri.rstrip('/') + '/health', timeout=10):
                pass
        except (urllib.error.URLError, OSError) as error:
            raise LoGoSegUserError(f'the tracking server {uri} (MLFLOW_TRACKING_URI) does not answer ({error}); '
                                   f'start it or fix the URI: {SERVER_HELP}') from error
    return uri


def check_slurm() -> None:
    missing = [name for name in ('sbatch', 'squeue', 'scancel', 'sacct') if shutil.which(name) is None]
    if missing:
        raise LoGoSegUserError(f'SLURM commands not found on PATH ({", ".join(missing)}); submit from a login '
                               'node of the cluster (the test cluster: projects/logoseg/experiments/testcluster.py)')


# -- the submission record -----------------------------------------------------------------------------------
def slurm_folder(root: Path, profile: str) -> Path:
    return root / 'results' / profile / 'slurm'


def record_file(root: Path, profile: str) -> Path:
    return slurm_folder(root, profile) / 'jobs.json'


def read_record(root: Path, profile: str) -> dict:
    path = record_file(root, profile)
    return json.loads(path.read_text()) if path.is_file() else {}


@contextmanager
def locked_record(root: Path, profile: str) -> Iterator[dict]:
    """The record, under an exclusive lock: two submits at once cannot both submit a row. Written back after."""
    folder = slurm_folder(root, profile)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / '.jobs.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = read_record(root, profile)
        yield record
        path = record_file(root, profile)
        tmp = path.with_name(f'.{path.name}.tmp')
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + '\n')
        tmp.replace(path)


# -- what SLURM says -----------------------------------------------------------------------------------------
def queue_states(job_ids: list[str]) -> dict[str, dict]:
    """job id -> {state, elapsed, reason} for the jobs SLURM still lists (``squeue -t all``; finished jobs
    stay listed for ``MinJobAge`` seconds). Jobs it no longer lists are absent: ask accounting (sacct)."""
    if not job_ids:
        return {}
    out = subprocess.run(['squeue', '-h', '-r', '-t', 'all', '-j', ','.join(job_ids), '-o', '%i|%T|%M|%r'],
                         capture_output=True, text=True, timeout=60)
    states = {}
    for line in out.stdout.splitlines():
        parts = line.strip().split('|')
        if len(parts) == 4:
            states[parts[0]] = dict(state=parts[1], elapsed=parts[2], reason=parts[3])
    return states


def accounting_state(folder: Path, job_id: str) -> str:
    """A finished job's state from accounting (``sacct``, through submitit's watcher)."""
    import submitit
    try:
        return submitit.SlurmJob(folder=folder, job_id=job_id).state.split()[0]
    except Exception:  # no accounting at all: the state is unknown, not an error of the grid
        return 'UNKNOWN'


def job_state(folder: Path, job_id: str, queue: dict[str, dict]) -> dict:
    return queue.get(job_id) or dict(state=accounting_state(folder, job_id), elapsed='', reason='')
