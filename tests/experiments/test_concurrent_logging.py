"""Many rows logging to one tracking server at the same moment (the SLURM executor's normal case) lose
nothing: every param, every metric step, every tag and the final status of every run arrive."""
import os
import subprocess
import sys
import textwrap
import time

from mlflow import MlflowClient

from ..conftest import REPO

WRITERS, STEPS, PARAMS = 6, 60, 40
WRITER = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from logoseg.experiments.tracking import TrackedRun
    row, go = sys.argv[1], Path(sys.argv[2])
    while not go.exists():  # all writers start together
        time.sleep(0.01)
    with TrackedRun(row, dict(row=row, profile='concurrency')) as run:
        run.log_params({f'p{k}': f'{row}-{k}' for k in range(%(params)d)})
        for step in range(1, %(steps)d + 1):
            run.log_metrics({'loss': step / 4, 'acc': step / 8}, step=step)
        run.set_tags({'done_by': row})
''') % dict(params=PARAMS, steps=STEPS)


def test_concurrent_rows_lose_no_param_metric_tag_or_status(mlflow_server, tmp_path):
    go = tmp_path / 'go'
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server, PYTHONPATH=str(REPO / 'projects'),
               LOGOSEG_MLFLOW_SPOOL=str(tmp_path / 'spool'))
    env.pop('MLFLOW_RUN_ID', None)
    rows = [f'writer{i}' for i in range(WRITERS)]
    procs = [subprocess.Popen([sys.executable, '-c', WRITER, row, str(go)], env=env, stderr=subprocess.PIPE,
                              text=True) for row in rows]
    time.sleep(1)
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read()[-3000:]
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name('logoseg')
    for row in rows:
        (run,) = client.search_runs([experiment.experiment_id], f"tags.row = '{row}'")
        assert run.info.status == 'FINISHED' and run.data.tags['done_by'] == row
        assert run.data.params == {f'p{k}': f'{row}-{k}' for k in range(PARAMS)}
        for name, scale in (('loss', 4), ('acc', 8)):
            history = client.get_metric_history(run.info.run_id, name)
            assert sorted((m.step, m.value) for m in history) == [(s, s / scale) for s in range(1, STEPS + 1)]
    assert not list((tmp_path / 'spool').rglob('*.jsonl')), 'a call was queued: the server refused or dropped it'
