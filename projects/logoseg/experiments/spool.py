"""Tracking that never stops science: MLflow calls queued on disk while the tracking store is unreachable.

A stopped ``mlflow server`` used to block the training loop in MLflow's own retries (7 retries, backoff factor
2, 120 s timeout: minutes per call) until the job died. Here:

- :func:`bound_http_retries` gives this project's processes short MLflow HTTP retries (unless the user set
  them): a call to a stopped server fails in about 3 s, one to a hung server in at most about 35 s.
- :class:`Spool` sends each logging call of one run (tags, params, metrics, artifacts, status). When the store
  is unreachable (connection refused or timed out, server errors after the retries, sqlite ``database is
  locked``), the call is appended to a JSONL queue, ``<spool dir>/<run id>/<host>-<pid>.jsonl``, and one line
  says so. Later calls join the queue without touching the server until ``LOGOSEG_MLFLOW_RETRY_S`` (60 s) have
  passed; the next call after that sends the queue first, in order, then itself.
- A queue still there when its process ends (the server stayed down) is sent by the next ``TrackedRun.start``
  on the same tracking URI, whatever its run (so a row that finished during the outage is completed by the
  next row, and a resumed row gets its earlier calls before its own), or by ``python -m logoseg.experiments.spool``.
- Calls that fail for another reason when sent from the queue (a spooled artifact deleted, the run deleted)
  are not dropped silently: the run's ``tracking_lost`` tag lists them.

Re-sending is harmless, which is why a crash in the middle of sending a queue may resend part of it: metrics
keep the time they were logged at (MLflow ignores an identical metric value, step and time), params already
logged are skipped, tags and statuses are overwritten with the same values, artifacts with the same files.

The spool dir is ``LOGOSEG_MLFLOW_SPOOL``, else ``$XDG_CACHE_HOME/logoseg/mlflow-spool`` (``~/.cache``): outside
the repository, so neither DVC's temporary experiment copies nor a moved checkout lose it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Optional

from ..utils.files import process_alive

# MLflow's documented variables (mlflow/environment_variables.py) and the defaults this project gives them:
# the queue below rides out an outage, so MLflow's own retries only need to cover a dropped connection.
HTTP_DEFAULTS = dict(MLFLOW_HTTP_REQUEST_MAX_RETRIES='2', MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR='1',
                     MLFLOW_HTTP_REQUEST_TIMEOUT='10')
RETRY_ENV, DIR_ENV = 'LOGOSEG_MLFLOW_RETRY_S', 'LOGOSEG_MLFLOW_SPOOL'
METRICS_PER_BATCH = 900  # MLflow takes at most 1,000 metrics per log_batch
_LOCK = threading.RLock()  # one queue per run and process, shared by every TrackedRun object of that run


def bound_http_retries() -> None:
    """Short MLflow HTTP retries for this process and its children, unless the user chose their own."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


def spool_dir() -> Path:
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    cache = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(cache) / 'logoseg' / 'mlflow-spool'


def unreachable(exc: BaseException) -> Optional[str]:
    """Why the store could not be reached (a short reason), or None when ``exc`` is another error.

    MLflow wraps the ``requests`` error in an ``MlflowException`` (as ``__context__``), so the chain is walked.
    """
    import requests
    seen, reason = set(), None
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        if 'database is locked' in text or 'unable to open database file' in text:
            return 'database is locked' if 'locked' in text else 'unable to open database file'
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                            requests.exceptions.RetryError)):
            reason = reason or 'no answer'
        if reason and isinstance(exc, OSError) and exc.strerror:  # the innermost: Connection refused, ...
            reason = exc.strerror
        if reason and 'timed out' in text.lower():
            reason = 'timed out'
        exc = exc.__cause__ or exc.__context__
    return reason


def shown_uri(uri: str) -> str:
    return re.sub(r'//[^/@]*@', '//', uri)  # never print a password of http://user:password@host


def _say(line: str) -> None:
    print(f'logoseg: {line}', file=sys.stderr, flush=True)


class Spool:
    """The logging calls of one run from this process: sent at once, or queued while the store is away.

    Get it with :meth:`of` (one per tracking URI and run in a process). :meth:`call` is the only way in.
    """

    _spools: dict = {}
    _retry_at: dict = {}  # tracking URI -> time.monotonic() before which nothing is sent to it
    _noticed: set = set()  # tracking URIs whose outage has been announced

    def __init__(self, client, run_id: str):
        self.client, self.run_id, self.uri = client, run_id, client.tracking_uri
        self.folder = spool_dir() / run_id
        self.path = self.folder / f'{socket.gethostname()}-{os.getpid()}.jsonl'
        self.lost: list[str] = []
        self.pending = len(self._read())  # calls waiting in the queue (a reused pid finds its old queue)

    @classmethod
    def of(cls, client, run_id: str) -> 'Spool':
        key = (client.tracking_uri, run_id, os.getpid())  # a forked child gets a queue of its own
        with _LOCK:
            if key not in cls._spools:
                cls._spools[key] = cls(client, run_id)
            return cls._spools[key]

    def _read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()[1:] if line.strip()]

    # -- the way in ----------------------------------------------------------------------------------------
    def call(self, op: str, force: bool = False, **args) -> None:
        """Send ``op`` (after the queue), or queue it while the store is unreachable. ``force`` tries the store
        even before the retry time (a run's end: the last chance before the queue is left on disk)."""
        entry = dict(op=op, **args)
        with _LOCK:
            if self.pending:
                waiting = time.monotonic() < self._retry_at.get(self.uri, 0.0)
                if (waiting and not force) or not self.flush():
                    self._append(entry)
                    return
            try:
                self._send(entry)
            except Exception as exc:
                reason = unreachable(exc)
                if reason is None:
                    raise  # a real error of this call (a bad value): the caller's to see, as without a queue
                self._append(entry)
                self._down(reason)

    def flush(self) -> bool:
        """Send the queue in order; True when it is empty afterwards."""
        with _LOCK:
            entries = self._read()
            if not entries:
                self.path.unlink(missing_ok=True)
                self.pending = 0
                return True
            for index, entry in enumerate(entries):
                try:
                    self._send(entry)
                except Exception as exc:
                    reason = unreachable(exc)
                    if reason is not None:
                        self._rewrite(entries[index:])
                        self._down(reason)
                        return False
                    self.lost.append(f'{_describe(entry)} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})')
                if entry['op'] == 'artifact':
                    shutil.rmtree(Path(entry['path']).parent, ignore_errors=True)
            self.path.unlink()
            self.pending = 0
            _remove_empty(self.folder)
            if self.uri in self._noticed:
                self._noticed.discard(self.uri)
                _say(f'MLflow tracking at {shown_uri(self.uri)} is back; the queued logging was sent')
            if self.lost:
                self._record_lost()
            return True

    def left_behind(self) -> None:
        """At a run's end: say where the calls the store never received stay, and who sends them."""
        if self.pending:
            _say(f'MLflow tracking at {shown_uri(self.uri)} still unreachable; {self.pending} logging calls of run '
                 f'{self.run_id} stay in {self.path}; the next logoseg run on this tracking URI sends them '
                 '(or: python -m logoseg.experiments.spool)')
        if self.lost:  # refused by the store before it went away again: the run cannot be told, the user can
            _say(f'run {self.run_id}: {len(self.lost)} queued logging calls could not be sent: '
                 + '; '.join(self.lost)[:1000])

    # -- queue file ----------------------------------------------------------------------------------------
    def _append(self, entry: dict) -> None:
        if entry['op'] == 'artifact':  # a copy: the file may change or vanish (a rerun rewrites metrics JSON)
            source = Path(entry['path'])
            copy = self.folder / 'files' / uuid.uuid4().hex / source.name
            copy.parent.mkdir(parents=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy)
            entry = dict(entry, path=str(copy))
        self.folder.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with open(self.path, 'a') as f:  # whole lines, appended: a crash loses at most the call in flight
            if new:  # the header: which store the queue belongs to
                f.write(json.dumps(dict(uri=self.uri, run_id=self.run_id)) + '\n')
            f.write(json.dumps(entry) + '\n')
        self.pending += 1

    def _rewrite(self, entries: list[dict]) -> None:
        tmp = self.path.with_name(f'.{self.path.name}.tmp')
        lines = [dict(uri=self.uri, run_id=self.run_id)] + entries
        tmp.write_text(''.join(json.dumps(line) + '\n' for line in lines))
        tmp.replace(self.path)
        self.pending = len(entries)

    def adopt(self, other: Path) -> None:
        """Take over the queue ``other`` left by an ended process: its calls go before this queue's."""
        with _LOCK:
            theirs = [line for line in other.read_text().splitlines()[1:] if line.strip()]
            mine = [line for line in self.path.read_text().splitlines()[1:] if line.strip()] \
                if self.path.exists() else []
            self.folder.mkdir(parents=True, exist_ok=True)
            self._rewrite([json.loads(line) for line in theirs + mine])
            other.unlink()

    def _down(self, reason: str) -> None:
        retry = float(os.environ.get(RETRY_ENV) or 60)
        self._retry_at[self.uri] = time.monotonic() + retry
        if self.uri not in self._noticed:
            self._noticed.add(self.uri)
            _say(f'MLflow tracking at {shown_uri(self.uri)} unreachable ({reason}); logging queued in {self.path}, '
                 f'sent when it is back (tried again every {retry:g} s)')

    # -- sending -------------------------------------------------------------------------------------------
    def _send(self, entry: dict) -> None:
        from mlflow.entities import Metric, Param, RunTag
        op, run_id, client = entry['op'], self.run_id, self.client
        if op == 'tags':
            client.log_batch(run_id, tags=[RunTag(k, v) for k, v in entry['tags'].items()])
        elif op == 'params':  # MLflow refuses to change a logged param: a resumed run keeps its own
            logged = client.get_run(run_id).data.params
            new = [Param(k, v) for k, v in entry['params'].items() if k not in logged]
            if new:
                client.log_batch(run_id, params=new)
        elif op == 'metrics':
            values = [Metric(k, v, entry['timestamp'], entry['step']) for k, v in entry['metrics'].items()]
            for start in range(0, len(values), METRICS_PER_BATCH):
                client.log_batch(run_id, metrics=values[start:start + METRICS_PER_BATCH])
        elif op == 'artifact':
            if not Path(entry['path']).exists():
                raise FileNotFoundError(f'{entry["path"]} is gone')
            client.log_artifact(run_id, entry['path'], entry.get('artifact_path'))
        elif op == 'status':
            if entry['status'] == 'RUNNING':
                client.update_run(run_id, status='RUNNING')
            else:
                if entry['status'] == 'FINISHED' and 'error' in client.get_run(run_id).data.tags:
                    client.delete_tag(run_id, 'error')  # an earlier attempt's failure, resumed and finished
                client.set_terminated(run_id, entry['status'], entry.get('end_time'))
        else:
            raise ValueError(f'unknown queued call {op!r}')

    def _record_lost(self) -> None:
        text = f'{len(self.lost)} logging calls queued during a tracking outage could not be sent: ' \
               + '; '.join(self.lost)
        self.lost = []
        try:
            self.client.set_tag(self.run_id, 'tracking_lost', text[:5000])
        except Exception:  # the run itself is gone: the user is the only one left to tell
            _say(f'run {self.run_id}: {text[:1000]}')


def _describe(entry: dict) -> str:
    op = entry['op']
    if op == 'metrics':
        return f'metrics {", ".join(sorted(entry["metrics"]))[:200]} at step {entry["step"]}'
    if op == 'artifact':
        return f'artifact {Path(entry["path"]).name}'
    if op == 'status':
        return f'status {entry["status"]}'
    return f'{op} {", ".join(sorted(entry[op]))[:200]}'


def _remove_empty(folder: Path) -> None:
    for path in sorted(folder.rglob('*'), reverse=True) + [folder]:
        if path.is_dir():
            try:
                path.rmdir()
            except OSError:
                pass


def leftovers(uri: Optional[str] = None) -> list[Path]:
    """Queues left by ended processes of this host (of stores at ``uri`` only, when given), oldest first.

    Queues of other hosts are left to their own hosts: whether their processes still run cannot be seen here.
    """
    host, found = socket.gethostname(), []
    for path in spool_dir().glob('*/*.jsonl'):
        name, _, pid = path.stem.rpartition('-')
        if name != host or not pid.isdigit() or int(pid) == os.getpid() or process_alive(int(pid)):
            continue
        try:
            header = json.loads(path.read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            continue
        if uri is None or header.get('uri') == uri:
            found.append(path)
    return sorted(found, key=lambda p: p.stat().st_mtime)


def replay_leftovers(client) -> None:
    """Send the queues ended processes left for ``client``'s store; stop at the first that cannot be sent."""
    for path in leftovers(client.tracking_uri):
        header = json.loads(path.read_text().splitlines()[0])
        spool = Spool.of(client, header['run_id'])
        spool.adopt(path)
        count = spool.pending
        if not spool.flush():
            return
        _say(f'sent {count} logging calls of run {spool.run_id} queued during an earlier tracking outage')


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog='python -m logoseg.experiments.spool',
                                     description='Send the MLflow logging queued during a tracking outage '
                                                 f'by processes that have ended (spool: {spool_dir()}).')
    parser.parse_args(argv)
    from mlflow import MlflowClient
    bound_http_retries()
    uris = {json.loads(path.read_text().splitlines()[0])['uri'] for path in leftovers()}
    for uri in sorted(uris):
        replay_leftovers(MlflowClient(uri))
    remaining = leftovers()
    print(f'{len(remaining)} queues left in {spool_dir()}' if remaining else 'nothing queued')
    sys.exit(1 if remaining else 0)


if __name__ == '__main__':
    main()
