"""A tracking outage never stops science: a real ``mlflow server`` stopped and restarted mid-run."""
import os
import socket
import subprocess
import sys
import textwrap
import time
import json
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from logoseg.experiments.spool import HTTP_DEFAULTS, bound_http_retries
from logoseg.experiments.spool import main as spool_main
from logoseg.experiments.tracking import TrackedMLflowVisBackend, TrackedRun
from logoseg.utils.errors import LoGoSegUserError

from ..mlflow_server import MlflowServer

REPO = Path(__file__).resolve().parents[2]
RETRY_S = 2  # LOGOSEG_MLFLOW_RETRY_S in these tests: a retry within the test's few seconds of outage


@pytest.fixture
def outage(tmp_path, monkeypatch):
    """A spool in ``tmp_path``, a short retry interval, MLflow's HTTP settings restored afterwards."""
    monkeypatch.setenv('LOGOSEG_MLFLOW_SPOOL', str(tmp_path / 'spool'))
    monkeypatch.setenv('LOGOSEG_MLFLOW_RETRY_S', str(RETRY_S))
    monkeypatch.delenv('MLFLOW_RUN_ID', raising=False)
    saved = {name: os.environ.pop(name, None) for name in HTTP_DEFAULTS}  # the project's defaults, not the user's
    server = MlflowServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def history(client, run_id, key):
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


@pytest.mark.timeout(180)
def test_a_server_stopped_mid_run_queues_the_logging_and_sends_it_when_back(outage, tmp_path, monkeypatch, capfd):
    server = outage
    server.start()
    monkeypatch.setenv('MLFLOW_TRACKING_URI', server.uri)
    run = TrackedRun('outage', dict(row='outage')).start()
    assert os.environ['MLFLOW_HTTP_REQUEST_MAX_RETRIES'] == HTTP_DEFAULTS['MLFLOW_HTTP_REQUEST_MAX_RETRIES']
    backend = TrackedMLflowVisBackend(save_dir=str(tmp_path / 'work' / 'vis_data'))  # logs into the open run
    run.log_params(dict(r=6))
    run.log_metrics({'loss': 1.0}, step=0)
    note = tmp_path / 'note.json'
    note.write_text('{"during": "outage"}')

    server.stop()
    capfd.readouterr()
    begin, slowest = time.monotonic(), 0.0
    for step in range(1, 13):  # a training loop: a logging call every 0.1 s
        call = time.monotonic()
        run.log_metrics({'loss': 1.0 / (step + 1)}, step=step)
        backend.add_scalars({'train/lr': 0.1 * step, 'val/mIoU': 10.0 + step}, step=step)
        if step == 4:
            run.set_tags(dict(phase='outage'))
            run.log_params(dict(lr=0.1))
            run.log_artifact(note)
        slowest = max(slowest, time.monotonic() - call)
        time.sleep(0.1)
    elapsed = time.monotonic() - begin
    note.write_text('{"rewritten": "after the call"}')  # the queue holds the file as it was logged
    # MLflow's own retries alone took minutes per call; bounded retries and the retry interval keep it short
    assert elapsed < 15 and slowest < 8, (elapsed, slowest)
    err = capfd.readouterr().err
    assert err.count('logoseg: MLflow tracking at') == 1, err
    assert f'{server.uri} unreachable (Connection refused); logging queued in' in err
    queue = next((tmp_path / 'spool' / run.run_id).glob('*.jsonl'))
    assert str(queue) in err and 'Traceback' not in err
    with pytest.raises(LoGoSegUserError, match='unreachable.*no run was started'):
        TrackedRun('another row').start()  # creating a run needs the store: one line, nothing trained yet

    server.start()
    time.sleep(RETRY_S)
    run.log_metrics({'loss': 0.01}, step=13)  # the first call after the retry interval sends the queue first
    assert not queue.exists()
    assert 'is back; the queued logging was sent' in capfd.readouterr().err
    backend.add_scalars({'train/lr': 1.4}, step=14)
    run.finish()

    client = MlflowClient(server.uri)
    found = client.get_run(run.run_id)
    assert found.info.status == 'FINISHED'
    assert found.data.params == {'r': '6', 'lr': '0.1'}
    assert found.data.tags['phase'] == 'outage' and 'tracking_lost' not in found.data.tags
    assert [step for step, _ in history(client, run.run_id, 'loss')] == list(range(14))  # each step once
    assert [step for step, _ in history(client, run.run_id, "lr")] == [*range(1, 13), 14]
    assert history(client, run.run_id, 'val/mIoU')[-1] == (12, 22.0)
    (artifact,) = client.list_artifacts(run.run_id)
    assert artifact.path == 'note.json'
    downloaded = client.download_artifacts(run.run_id, 'note.json', str(tmp_path / 'down'))
    assert Path(downloaded).read_text() == '{"during": "outage"}'
    assert not (tmp_path / 'spool' / run.run_id).exists()


CHILD = textwrap.dedent('''
    import sys, time
    from logoseg.experiments.tracking import TrackedRun
    row, other = TrackedRun('resumed row', dict(row='a')).start(), TrackedRun('done row', dict(row='b')).start()
    for run in (row, other):
        run.log_metrics({'loss': 1.0}, step=0)
    print(row.run_id, other.run_id, flush=True)
    sys.stdin.readline()  # the server is stopped now
    for step in (1, 2):
        for run in (row, other):
            run.log_metrics({'loss': 1.0 / (step + 1)}, step=step)
    row.set_tags(dict(phase='before the kill'))
    row.log_artifact(sys.argv[1])
    other.log_artifact(sys.argv[1])
    row.finish('KILLED')  # as a SIGTERM would end it
    other.finish('FINISHED')
''')


@pytest.mark.timeout(180)
def test_a_queue_left_by_an_ended_process_is_sent_by_the_next_run_on_the_store(outage, tmp_path, monkeypatch):
    server = outage
    server.start()
    monkeypatch.setenv('MLFLOW_TRACKING_URI', server.uri)
    note = tmp_path / 'note.json'
    note.write_text('{}')
    child = subprocess.Popen([sys.executable, '-c', CHILD, str(note)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO / 'projects')))
    try:
        row_id, other_id = child.stdout.readline().split()
        server.stop()
        _, err = child.communicate('go\n', timeout=90)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert err.count('unreachable (Connection refused); logging queued in') == 1, err
    assert err.count('still unreachable;') == 2 and 'the next logoseg run on this tracking URI sends them' in err
    assert 'Traceback' not in err and 'Retrying' not in err  # one line, not one per HTTP retry
    # what cannot be sent is named on the run, never dropped in silence: here the spooled copy of one artifact
    (other_copy,) = (tmp_path / 'spool' / other_id / 'files').glob('*/note.json')
    other_copy.unlink()

    server.start()
    client = MlflowClient(server.uri)
    assert [s for s, _ in history(client, row_id, 'loss')] == [0]  # nothing sent yet
    resumed = TrackedRun(run_id=row_id).start()  # a rerun of the row resumes its run: the queues go first
    assert [s for s, _ in history(client, row_id, 'loss')] == [0, 1, 2]
    assert client.get_run(row_id).data.tags['phase'] == 'before the kill'
    assert client.get_run(row_id).info.status == 'RUNNING'  # the queued KILLED came before this start
    assert [a.path for a in client.list_artifacts(row_id)] == ['note.json']
    done = client.get_run(other_id)  # the other run's queue, status included, went with it
    assert done.info.status == 'FINISHED'
    assert [s for s, _ in history(client, other_id, 'loss')] == [0, 1, 2]
    assert done.data.tags['tracking_lost'].startswith('1 logging calls queued during a tracking outage could '
                                                      'not be sent: artifact note.json')
    assert not list((tmp_path / 'spool').rglob('*.jsonl'))
    resumed.log_metrics({'loss': 0.1}, step=3)
    resumed.finish()
    final = client.get_run(row_id)
    assert final.info.status == 'FINISHED'
    assert [s for s, _ in history(client, row_id, 'loss')] == [0, 1, 2, 3]


def test_a_real_error_still_raises_and_is_not_queued(tmp_path, monkeypatch):
    """Only an unreachable store is queued: a value MLflow refuses is the caller's error, as before."""
    monkeypatch.setenv('MLFLOW_TRACKING_URI', f'sqlite:///{tmp_path / "mlflow.db"}')
    monkeypatch.setenv('LOGOSEG_MLFLOW_SPOOL', str(tmp_path / 'spool'))
    monkeypatch.delenv('MLFLOW_RUN_ID', raising=False)
    with TrackedRun('row', dict(row='bad')) as run:
        with pytest.raises(Exception, match='Names may only contain'):
            run.log_metrics({'loss?': 1.0}, step=1)
        run.log_metrics({'loss': 1.0}, step=1)
        run.log_image(np.full((4, 6, 3), 200, np.uint8), 'vis/sample_1.png')  # mmengine's add_image
    assert not (tmp_path / 'spool').exists()
    client = MlflowClient(os.environ['MLFLOW_TRACKING_URI'])
    assert client.get_run(run.run_id).info.status == 'FINISHED'
    assert [a.path for a in client.list_artifacts(run.run_id, 'vis')] == ['vis/sample_1.png']


def test_the_spool_command_sends_the_queues_of_ended_processes(tmp_path, monkeypatch, capsys):
    uri = f'sqlite:///{tmp_path / "mlflow.db"}'
    monkeypatch.setenv('LOGOSEG_MLFLOW_SPOOL', str(tmp_path / 'spool'))
    monkeypatch.delenv('MLFLOW_RUN_ID', raising=False)
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment('spooled')).info.run_id
    dead = subprocess.Popen(['true'])  # a pid that no longer runs
    dead.wait(timeout=10)
    queue = tmp_path / 'spool' / run_id / f'{socket.gethostname()}-{dead.pid}.jsonl'
    queue.parent.mkdir(parents=True)
    entries = [dict(uri=uri, run_id=run_id), dict(op='metrics', metrics={'loss': 0.5}, step=7, timestamp=1000),
               dict(op='tags', tags={'phase': 'queued'}), dict(op='status', status='FINISHED', end_time=2000)]
    queue.write_text(''.join(json.dumps(entry) + '\n' for entry in entries))
    with pytest.raises(SystemExit) as ended:
        spool_main([])
    assert ended.value.code == 0 and 'nothing queued' in capsys.readouterr().out
    found = client.get_run(run_id)
    assert found.info.status == 'FINISHED' and found.info.end_time == 2000
    assert found.data.tags['phase'] == 'queued' and history(client, run_id, 'loss') == [(7, 0.5)]
    assert not queue.exists()


def test_bounded_http_retries_keep_the_users_own_settings(monkeypatch):
    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('MLFLOW_HTTP_REQUEST_TIMEOUT', '300')
    try:
        bound_http_retries()
        assert os.environ['MLFLOW_HTTP_REQUEST_TIMEOUT'] == '300'
        assert os.environ['MLFLOW_HTTP_REQUEST_MAX_RETRIES'] == '2'
        assert os.environ['MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR'] == '1'
    finally:
        for name in ('MLFLOW_HTTP_REQUEST_MAX_RETRIES', 'MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR'):
            os.environ.pop(name, None)
