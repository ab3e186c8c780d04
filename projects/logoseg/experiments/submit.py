"""Submit the grid's incomplete rows to SLURM, one job array task per row, and return at once.

    python -m logoseg.experiments.submit [--rows t2_op t3_lq ...] [--profile smoke]

Needs ``executor: slurm`` and a ``slurm:`` section under the profile in ``params.yaml``, SLURM's commands on
``PATH`` and ``MLFLOW_TRACKING_URI`` naming a tracking server. Prints, per row, the job id, its log file and the
MLflow run (known when the row resumes; else created when the job starts: ``python -m
logoseg.experiments.status`` shows it). A row is not submitted when its training and evaluation are complete
with the current fingerprint, or while a job of it is pending or running (it says so).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional

from ..utils.errors import LoGoSegUserError
from . import slurm


def grid_rows(root: Path) -> list[str]:
    import yaml
    with open(root / 'experiments' / 'rows.yaml', encoding='utf-8') as f:
        return list((yaml.safe_load(f) or {}).get('rows') or {})


def row_progress(root: Path, key: str, profile: str) -> dict:
    """What the row's outputs say, as ``run_row`` reads them: ``fingerprint`` (of its current configuration),
    ``trained`` (a complete training with it), ``complete`` (trained, and its metrics JSON records this training
    and the current evaluation code: ``run_row`` would have nothing to redo), ``run_id`` (of the training)."""
    from .grid import load_row
    row = load_row(key, profile, root)
    fingerprint = row.fingerprint  # builds and checks the row's config: a bad knob stops here, in one line
    done = read_json(row.done_file)
    trained = done.get('fingerprint') == fingerprint and (row.work_dir / done.get('checkpoint', '')).is_file()
    recorded = read_json(row.metrics_file).get('run', {})
    complete = trained and recorded.get('fingerprint') == fingerprint \
        and recorded.get('evaluation') == row.evaluation_fingerprint
    state = read_json(row.work_dir / 'run.json')
    run_id = done.get('run_id') if trained else state.get('run_id') if state.get('fingerprint') == fingerprint \
        else None
    return dict(fingerprint=fingerprint, trained=trained, complete=complete, run_id=run_id, row=row)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def submit(root: Path, profile: str, rows: Optional[list[str]] = None, out=sys.stdout) -> dict[str, str]:
    """Submit ``rows`` (default: every row of the grid) that need it; returns row -> job id of the new jobs."""
    import submitit
    from mlflow import MlflowClient

    from .grid import load_row
    from .job import RowJob
    from .repository import relative_to_repo
    from .tracking import ensure_experiment
    settings = slurm.slurm_settings(root, profile)
    uri = slurm.check_tracking_server()
    slurm.check_slurm()
    known = grid_rows(root)
    unknown = [key for key in rows or [] if key not in known]
    if unknown:
        raise LoGoSegUserError(f'unknown grid row(s) {", ".join(unknown)}; experiments/rows.yaml has '
                               f'{", ".join(known)}')
    rows = rows or known
    folder = slurm.slurm_folder(root, profile)
    with slurm.locked_record(root, profile) as record:
        queue = slurm.queue_states([record[key]['job_id'] for key in rows if key in record])
        todo = {}
        for key in rows:
            if key in record:
                state = slurm.job_state(folder, record[key]['job_id'], queue)['state']
                if state in slurm.ACTIVE_STATES:
                    print(f'{key}: not submitted, already {state.lower()} as job {record[key]["job_id"]} '
                          f'(log {record[key]["log"]})', file=out)
                    continue
            base = load_row(key, profile, root).load_from
            if base is not None and not base.is_file():  # SLURM would run it beside the row it starts from
                print(f'{key}: not submitted, it starts from {relative_to_repo(base, root)}, not there yet: submit '
                      'again once that row has finished', file=out)
                continue
            progress = row_progress(root, key, profile)
            if not progress['row'].data_manifest.is_file():
                raise LoGoSegUserError(f'{progress["row"].data_manifest} not found; run `dvc repro data_{profile}` '
                                       'first (the rows read their data version from it)')
            for name in progress['row'].declared_datasets:
                if not progress['row'].dataset_manifest(name).is_file():
                    raise LoGoSegUserError(f'dataset {name!r} of row {key} is not prepared; run `dvc repro '
                                           f'data_{profile}` first (it prepares the datasets declared in params.yaml)')
            if progress['complete']:
                print(f'{key}: not submitted, complete (training and evaluation with this configuration)',
                      file=out)
                continue
            todo[key] = progress
        if not todo:
            print('nothing to submit', file=out)
            return {}
        ensure_experiment(MlflowClient(uri))  # before the jobs: each job's run goes into it
        # submitit's own requeue limit counts time-outs only; RowJob's counts preemptions too
        executor = submitit.AutoExecutor(folder=folder, cluster='slurm', slurm_max_num_timeout=settings.max_requeues)
        executor.update_parameters(name=f'logoseg-{profile}', **settings.executor_parameters())
        jobs = {}
        with executor.batch():  # one job array: SLURM runs at most max_parallel rows at once
            for key in todo:
                jobs[key] = executor.submit(RowJob(key, profile, root, settings.max_requeues))
        submitted = time.strftime('%Y-%m-%dT%H:%M:%S')
        for key, job in jobs.items():
            log = str(Path(job.paths.stdout).relative_to(root)) if Path(job.paths.stdout).is_relative_to(root) \
                else str(job.paths.stdout)
            record[key] = dict(job_id=job.job_id, log=log, submitted=submitted,
                               fingerprint=todo[key]['fingerprint'])
            run = todo[key]['run_id']
            where = f'resumes MLflow run {run}' if run else 'MLflow run created when the job starts'
            print(f'{key} -> job {job.job_id}, log {log}, {where} ({uri})', file=out)
    return {key: job.job_id for key, job in jobs.items()}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m logoseg.experiments.submit', description=__doc__.split('\n')[0])
    parser.add_argument('--rows', nargs='+', metavar='ROW', help='rows of experiments/rows.yaml (default: all)')
    parser.add_argument('--profile', help="default: params.yaml's profile")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        root = slurm.find_root()
        submit(root, slurm.profile_of(root, args.profile), args.rows)
    except LoGoSegUserError as error:
        print(f'logoseg: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
