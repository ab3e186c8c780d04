"""A real ``mlflow server`` for the tests (a team's tracking server): on a free loopback port, a sqlite store and
an artifact folder in ``folder``, the same port and store on every start (an outage is a stop and a start)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

MLFLOW = Path(sys.executable).parent / 'mlflow'  # the venv's command, as a user starts the server
STARTUP_S = 120  # imports + schema creation: ~10-15 s on an idle 2-core machine, about a minute on a loaded one


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + '/health', timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class MlflowServer:
    def __init__(self, folder: Path, workers: int = 1):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            self.port = probe.getsockname()[1]
        self.folder, self.workers = Path(folder), workers
        self.uri = f'http://127.0.0.1:{self.port}'
        self.proc = None

    @property
    def log(self) -> Path:
        return self.folder / 'server.log'

    def start(self, timeout: float = STARTUP_S) -> str:
        command = [str(MLFLOW), 'server', '--host', '127.0.0.1', '--port', str(self.port), '--workers',
                   str(self.workers), '--backend-store-uri', f'sqlite:///{self.folder / "mlflow.db"}',
                   '--artifacts-destination', str(self.folder / 'artifacts')]
        with self.log.open('ab') as output:  # its own process group: uvicorn's workers are stopped with it
            self.proc = subprocess.Popen(command, cwd=self.folder, stdout=output, stderr=subprocess.STDOUT,
                                         start_new_session=True,  # no job runner: starts and stops faster
                                         env=dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION='false'))
        deadline = time.monotonic() + timeout
        while not healthy(self.uri):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f'mlflow server did not answer /health within {timeout} s:\n'
                                   f'{self.log.read_text()[-3000:]}')
            time.sleep(0.3)
        return self.uri

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
