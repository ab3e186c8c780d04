"""Where the grid's rows stand on SLURM; ``--cancel`` cancels their jobs.

    python -m logoseg.experiments.status [--rows ...] [--profile smoke] [--cancel]

One line per row: not submitted / pending / running (iteration and ETA from the job's log) / requeued /
evaluating / done / failed (the run's ``error``) / cancelled, with the job id, its elapsed time, the MLflow run and
the log.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional

from ..utils.errors import LoGoSegUserError
from . import slurm

# mmengine's training log line: "Iter(train) [ 30/100]  base_lr: ... eta: 0:01:23  time: ..."
ITER = re.compile(r'Iter\(train\) \[\s*(\d+)/(\d+)\].*?eta: (\S+)')


def training_progress(log: Path) -> str:
    """'iteration 30/100, ETA 0:01:23' from the last training line of the log; '' before the first one."""
    try:
        text = log.read_text(errors='replace')
    except OSError:
        return ''
    matches = ITER.findall(text)
    if not matches:
        return ''
    done, total, eta = matches[-1]
    return f'iteration {done}/{total}, ETA {eta}'


def latest_run(client, experiment_id: Optional[str], row: str, profile: str):
    if experiment_id is None:
        return None
    runs = client.search_runs([experiment_id], f"tags.row = '{row}' and tags.profile = '{profile}'",
                              order_by=['attributes.start_time DESC'], max_results=1)
    return runs[0] if runs else None


def row_status(root: Path, profile: str, key: str, entry: Optional[dict], state: dict, run) -> str:
    """The row's phase in words, from its job state, its outputs and its MLflow run."""
    from .submit import row_progress
    progress = row_progress(root, key, profile)
    if entry is None:
        return 'done' if progress['complete'] else 'not submitted'
    name = state['state']
    if progress['complete']:  # also while the job is still closing its run and writing its result
        return 'done'
    requeues = int((run.data.tags.get('requeues') or 0)) if run is not None else 0
    if name in ('PENDING', 'REQUEUED', 'REQUEUE_HOLD'):
        return f'requeued ({requeues}x), pending' if requeues or name != 'PENDING' else 'pending'
    if name in slurm.ACTIVE_STATES:
        if progress['trained']:
            return 'evaluating'
        where = training_progress(root / entry['log'])
        return f'running ({where})' if where else 'running (starting)'
    if name.startswith('CANCELLED'):
        return 'cancelled (submit again to resume it)'
    error = run.data.tags.get('error') if run is not None else None
    error = error or failure_line(root / entry['log'], key)
    return f'failed ({name.lower()}): {error}' if error else f'failed ({name.lower()}; see the log)'


def failure_line(log: Path, key: str) -> str:
    """The job's own one-line verdict (``RowJob``), or run_row's one-line error, from the log."""
    try:
        lines = log.read_text(errors='replace').splitlines()
    except OSError:
        return ''
    for marker in (f'logoseg: row {key} FAILED: ', 'logoseg: error: '):
        found = [line.split(marker, 1)[1] for line in lines if marker in line]
        if found:
            return found[-1]
    return ''


def status(root: Path, profile: str, rows: Optional[list[str]] = None, out=sys.stdout) -> dict[str, str]:
    """Print one line per row; returns row -> status."""
    from mlflow import MlflowClient

    from .tracking import EXPERIMENT
    from .submit import grid_rows
    record = slurm.read_record(root, profile)
    rows = rows or grid_rows(root)
    folder = slurm.slurm_folder(root, profile)
    queue = slurm.queue_states([record[key]['job_id'] for key in rows if key in record])
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else None
    result = {}
    for key in rows:
        entry = record.get(key)
        state = slurm.job_state(folder, entry['job_id'], queue) if entry else dict(state='', elapsed='')
        run = latest_run(client, experiment_id, key, profile)
        result[key] = row_status(root, profile, key, entry, state, run)
        parts = [f'{key}: {result[key]}']
        if entry:
            parts.append(f'job {entry["job_id"]}' + (f', elapsed {state["elapsed"]}' if state['elapsed'] else ''))
        if run is not None:
            parts.append(f'MLflow run {run.info.run_id} ({run.info.status})')
        if entry:
            parts.append(f'log {entry["log"]}')
        print(' | '.join(parts), file=out)
    return result


def cancel(root: Path, profile: str, rows: Optional[list[str]] = None, out=sys.stdout) -> list[str]:
    """Cancel the rows' jobs that are still on the cluster; returns their job ids. Each training ends KILLED in
    MLflow (SIGTERM) and resumes from its last checkpoint when submitted again."""
    from .submit import grid_rows
    record = slurm.read_record(root, profile)
    rows = [key for key in rows or grid_rows(root) if key in record]
    folder = slurm.slurm_folder(root, profile)
    queue = slurm.queue_states([record[key]['job_id'] for key in rows])
    ids = [record[key]['job_id'] for key in rows
           if slurm.job_state(folder, record[key]['job_id'], queue)['state'] in slurm.ACTIVE_STATES]
    if not ids:
        print('no job of the grid is pending or running', file=out)
        return []
    subprocess.run(['scancel', *ids], check=True, timeout=60)
    print(f'cancelled {len(ids)} job(s): {" ".join(ids)}', file=out)
    return ids


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m logoseg.experiments.status', description=__doc__.split('\n')[0])
    parser.add_argument('--rows', nargs='+', metavar='ROW', help='rows of experiments/rows.yaml (default: all)')
    parser.add_argument('--profile', help="default: params.yaml's profile")
    parser.add_argument('--cancel', action='store_true', help="cancel the rows' pending and running jobs")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        root = slurm.find_root()
        profile = slurm.profile_of(root, args.profile)
        if args.cancel:
            slurm.check_slurm()
            cancel(root, profile, args.rows)
        else:
            status(root, profile, args.rows)
    except LoGoSegUserError as error:
        print(f'logoseg: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
