"""A real SLURM on one machine (munged + slurmctld + one slurmd per node) in one folder, for tests, CI and trying
the grid's SLURM executor. TEST CLUSTER ONLY: no accounting, no cgroups, everything runs as root.

    python projects/logoseg/experiments/testcluster.py start DIR [--nodes 2]   # prints the two exports to use it
    python projects/logoseg/experiments/testcluster.py stop DIR

Needs Debian's ``slurmctld slurmd slurm-client munge`` (``.ci/run`` installs them) and root. Key, socket,
config, state, spool, logs and pid files all live in ``DIR``; no system file is touched and nothing is left
running after ``stop``. The node gets ``CPUs = nproc``, so one-CPU jobs run side by side. Ports are picked
free at start, so two clusters (two test sessions) can run on one machine.

With ``--nodes N`` the machine poses as N nodes (``<host>``, ``<host>-2``, ...), each a slurmd of its own
(``slurmd -N <node>``, its own port, spool, pid and log files) with ``CPUs = nproc / N``: a job over several
nodes gets one step task per node, as on a real cluster, so multi-node rows are tested for real.

There is no slurmdbd, hence no ``sacct``: submitit asks ``sacct`` for the state of its jobs and, without an
answer, never learns that a job died without writing its result. ``DIR/bin/sacct`` answers submitit's one query
from ``squeue -t all`` (jobs stay listed for ``MinJobAge``, one hour); put ``DIR/bin`` first on ``PATH``. Real
clusters have accounting and need none of this.

Plain standard library: runs as a script without importing (or installing) the ``logoseg`` package.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ('slurmd', 'slurmctld', 'munged')  # stop order: nodes, controller, then authentication
PARTITION = 'debug'
START_TIMEOUT_S = 60

SACCT_SHIM = """#!/bin/bash
# TEST CLUSTER ONLY (logoseg/experiments/testcluster.py): a cluster without slurmdbd has no sacct. This answers
# submitit's one query, `sacct -o JobID,State,NodeList --parsable2 -j ID [-j ID...]`, from squeue, which lists
# finished jobs too for MinJobAge seconds. Real clusters have accounting: never install this there.
ids=()
while [ $# -gt 0 ]; do
  case "$1" in
    -j|--jobs) ids+=("$2"); shift 2 ;;
    --jobs=*) ids+=("${1#--jobs=}"); shift ;;
    -j*) ids+=("${1#-j}"); shift ;;
    *) shift ;;
  esac
done
echo 'JobID|State|NodeList'
[ ${#ids[@]} -eq 0 ] && exit 0
joined=$(IFS=,; echo "${ids[*]}")
squeue -h -r -t all -j "$joined" -o '%i|%T|%N' 2>/dev/null
exit 0
"""


class ClusterError(RuntimeError):
    """The cluster could not start; the message names the daemon and its log."""


def missing_programs() -> list[str]:
    return [name for name in ('munged', 'mungekey', 'slurmctld', 'slurmd', 'sinfo', 'sbatch', 'squeue', 'scancel')
            if shutil.which(name) is None and not Path('/usr/sbin', name).is_file()]


def available() -> str:
    """'' when a test cluster can start here, else why not (one line)."""
    missing = missing_programs()
    if missing:
        return (f'SLURM is not installed ({", ".join(missing)} missing): apt-get install -y '
                '--no-install-recommends slurmctld slurmd slurm-client munge')
    if os.geteuid() != 0:
        return 'the test SLURM cluster runs its daemons as root; run as root'
    return ''


def environment(folder: Path) -> dict:
    """The variables that point SLURM's commands (and submitit) at the cluster in ``folder``."""
    folder = Path(folder).resolve()
    return dict(SLURM_CONF=str(folder / 'slurm.conf'), PATH=f'{folder / "bin"}:{os.environ.get("PATH", "")}')


def _program(name: str) -> str:
    return shutil.which(name) or str(Path('/usr/sbin', name))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('', 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    for line in Path('/proc/meminfo').read_text().splitlines():
        if line.startswith('MemTotal:'):
            return int(int(line.split()[1]) / 1024 * 0.8)
    return 1024


def node_names(nodes: int) -> list[str]:
    """The cluster's node names: this host's short name, then ``<host>-2``, ... (all of them this machine)."""
    host = socket.gethostname().split('.')[0]
    return [host] + [f'{host}-{i}' for i in range(2, nodes + 1)]


def write_config(folder: Path, cpus: int, nodes: int = 1) -> Path:
    """``slurm.conf`` of a cluster of ``nodes`` nodes of ``cpus`` CPUs each, all on this machine."""
    names = node_names(nodes)
    host = names[0]
    try:
        socket.gethostbyname(host)
    except OSError as error:
        raise ClusterError(f'host name {host!r} does not resolve ({error}); add it to /etc/hosts') from error
    ports: set[int] = set()
    while len(ports) < 2 + nodes:
        ports.add(_free_port())
    ctld_port, *slurmd_ports = sorted(ports)[:2 + nodes]
    # every node is this machine: slurmd finds its own line by the name it is started with (-N), and the nodes
    # differ in port, spool, pid and log files (%n: the node name)
    node_lines = [f'NodeName={name} NodeHostname={host} NodeAddr={host} Port={port} CPUs={cpus} '
                  f'RealMemory={_memory_mb() // nodes} State=UNKNOWN'
                  for name, port in zip(names, slurmd_ports)]
    lines = [
        'ClusterName=logoseg-test', f'SlurmctldHost={host}', 'SlurmUser=root', 'SlurmdUser=root',
        f'SlurmctldPort={ctld_port}',
        'AuthType=auth/munge', 'CredType=cred/munge',
        # cred_expire=5: a requeued job waits cred_expire + 1 s before it may start again (default 120 s)
        f'AuthInfo=socket={(folder / "munge").resolve() / "munge.socket.2"},cred_expire=5',
        'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'MpiDefault=none',
        'JobAcctGatherType=jobacct_gather/none', 'AccountingStorageType=accounting_storage/none',
        'JobCompType=jobcomp/none',
        'SelectType=select/cons_tres', 'SelectTypeParameters=CR_Core',
        # scheduler passes every 2 s instead of 60: a requeued job starts again within seconds
        'SchedulerParameters=sched_interval=2,bf_interval=1',
        'SlurmctldParameters=preempt_send_user_signal',
        'KillWait=5', 'MinJobAge=3600', 'MailProg=/bin/true', 'ReturnToService=2',
        f'StateSaveLocation={folder / "state"}', f'SlurmdSpoolDir={folder / "spool" / "%n"}',
        f'SlurmctldPidFile={folder / "slurmctld.pid"}', f'SlurmdPidFile={folder / "slurmd.%n.pid"}',
        f'SlurmctldLogFile={folder / "log" / "slurmctld.log"}', f'SlurmdLogFile={folder / "log" / "slurmd.%n.log"}',
        'SlurmctldDebug=info', 'SlurmdDebug=info',
        *node_lines,
        f'PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
    ]
    path = folder / 'slurm.conf'
    path.write_text('\n'.join(lines) + '\n')
    return path


def _munge_folder(folder: Path) -> Path:
    """The folder of munged's key and socket: ``folder/munge``, mode 711 (munged refuses a socket folder that is
    writable or not searchable by others). munged also wants every folder above the socket searchable by all;
    where one is not (pytest's temporary folders are 700), the socket lives in a 711 folder under /tmp and
    ``folder/munge`` links to it (removed by :func:`stop`)."""
    link = folder / 'munge'
    if link.is_dir():
        return link.resolve()
    if all(parent.stat().st_mode & 0o001 for parent in folder.parents) and folder.stat().st_mode & 0o001:
        link.mkdir()
        target = link
    else:
        target = Path(tempfile.mkdtemp(prefix='logoseg-munge-'))
        link.symlink_to(target, target_is_directory=True)
    target.chmod(0o711)
    return target


def _pid_file(folder: Path, daemon: str) -> list[Path]:
    """A daemon's pid files: one per node for slurmd (``slurmd.<node>.pid``), else one."""
    return sorted(folder.glob('slurmd.*.pid')) if daemon == 'slurmd' else [folder / f'{daemon}.pid']


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _pid(folder: Path, daemon: str) -> int | None:
    """The pid of ``slurmctld`` or ``munged``, or of the slurmd of node ``slurmd.<node>``."""
    return _read_pid(folder / f'{daemon}.pid')


def pids(folder: Path) -> list[int]:
    """The pids of the cluster's daemons, in stop order (every node's slurmd, slurmctld, munged)."""
    found = (_read_pid(path) for daemon in DAEMONS for path in _pid_file(Path(folder), daemon))
    return [pid for pid in found if pid is not None]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child not yet reaped) is gone for our purposes
        return Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


def _wait_for(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors='replace')[-2000:] if log.is_file() else '(no log)'
            raise ClusterError(f'{what} within {timeout:.0f} s; {log}:\n{tail}')
        time.sleep(0.2)


def start(folder: Path, cpus: int | None = None, nodes: int = 1) -> dict:
    """Start a cluster of ``nodes`` nodes of ``cpus`` CPUs each (default: nproc shared out) in ``folder``
    (created; must not hold a running one). Returns :func:`environment`."""
    folder = Path(folder).resolve()
    if nodes < 1:
        raise ClusterError(f'nodes: {nodes}; at least 1')
    if any(_alive(pid) for pid in pids(folder)):
        raise ClusterError(f'a test cluster is already running in {folder}; stop it first')
    why = available()
    if why:
        raise ClusterError(why)
    for sub in ('state', 'log', 'bin', *(f'spool/{name}' for name in node_names(nodes))):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    munge = _munge_folder(folder)
    shim = folder / 'bin' / 'sacct'
    shim.write_text(SACCT_SHIM)
    shim.chmod(0o755)
    write_config(folder, cpus or max((os.cpu_count() or 1) // nodes, 1), nodes)
    env = dict(os.environ, **environment(folder))
    try:
        key = munge / 'munge.key'
        if not key.is_file():
            subprocess.run([_program('mungekey'), '--create', f'--keyfile={key}'], check=True,
                           capture_output=True, timeout=30)
        key.chmod(0o600)
        subprocess.run([_program('munged'), f'--key-file={key}', f'--socket={munge / "munge.socket.2"}',
                        f'--pid-file={folder / "munged.pid"}', f'--log-file={folder / "log" / "munged.log"}',
                        f'--seed-file={munge / "munged.seed"}'],
                       check=True, capture_output=True, timeout=30, env=env)
        _wait_for(lambda: _pid(folder, 'munged') is not None, 10, 'munged did not start', folder / 'log' / 'munged.log')
        # the daemons fork into the background and write their pid files; -i: no state to recover
        names = node_names(nodes)
        daemons = [('slurmctld', ['-i'], 'slurmctld')] + [('slurmd', ['-N', name], f'slurmd.{name}') for name in names]
        for program, args, name in daemons:
            subprocess.run([_program(program), *args], check=True, capture_output=True, timeout=30, env=env)
            _wait_for(lambda: _pid(folder, name) is not None, 20, f'{name} did not start',
                      folder / 'log' / f'{name}.log')

        def idle() -> bool:
            out = subprocess.run(['sinfo', '-h', '-N', '-o', '%t'], capture_output=True, text=True, env=env,
                                 timeout=10).stdout.split()
            return out == ['idle'] * nodes
        _wait_for(idle, START_TIMEOUT_S, 'the nodes did not become idle', folder / 'log' / f'slurmd.{names[0]}.log')
    except subprocess.CalledProcessError as error:
        stop(folder)
        output = (error.stderr or b'').decode(errors='replace').strip()
        raise ClusterError(f'{Path(error.cmd[0]).name} failed to start: {output or error}') from error
    except BaseException:
        stop(folder)
        raise
    return environment(folder)


def stop(folder: Path, timeout: float = 30) -> None:
    """Cancel every job, then stop the daemons by the pids in their pid files (never by name)."""
    folder = Path(folder).resolve()
    env = dict(os.environ, **environment(folder))
    ctld = _pid(folder, 'slurmctld')
    if ctld and _alive(ctld):
        try:
            jobs = subprocess.run(['squeue', '-h', '-o', '%A'], capture_output=True, text=True, env=env,
                                  timeout=10).stdout.split()
            if jobs:
                subprocess.run(['scancel', '--full', *jobs], capture_output=True, env=env, timeout=10)
        except (OSError, subprocess.SubprocessError):
            pass
    for pid in pids(folder):
        if not _alive(pid):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    for daemon in DAEMONS:
        for path in _pid_file(folder, daemon):
            path.unlink(missing_ok=True)
    munge = folder / 'munge'
    if munge.is_symlink():  # the socket folder under /tmp (see _munge_folder)
        shutil.rmtree(munge.resolve(), ignore_errors=True)
        munge.unlink()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m logoseg.experiments.testcluster',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('action', choices=['start', 'stop', 'env'],
                        help='start the cluster, stop it, or print the environment that points SLURM at it')
    parser.add_argument('folder', type=Path, help='the cluster folder (config, state, logs, pid files)')
    parser.add_argument('--cpus', type=int, help='CPUs of each node (default: nproc / nodes)')
    parser.add_argument('--nodes', type=int, default=1, help='nodes, all on this machine (default: 1)')
    args = parser.parse_args(argv)
    try:
        if args.action == 'start':
            start(args.folder, args.cpus, args.nodes)
            print(f'# SLURM test cluster running in {args.folder.resolve()}; to use it:', file=sys.stderr)
        elif args.action == 'stop':
            stop(args.folder)
            return 0
        folder = args.folder.resolve()
        print(f'export SLURM_CONF={folder / "slurm.conf"}')
        print(f'export PATH="{folder / "bin"}:$PATH"')
    except ClusterError as error:
        print(f'testcluster: error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
