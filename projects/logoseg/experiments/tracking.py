"""MLflow bookkeeping: one run per training or evaluation, a readable name, a few flat params, every metric,
and a status that tells the truth (FINISHED only on success; FAILED on an error; KILLED on Ctrl-C, SIGTERM,
or when a run left RUNNING by a SIGKILLed process is found on the next run of the same row).

The tracking URI is ``MLFLOW_TRACKING_URI`` when set, else the sqlite store ``mlflow.db`` at the repository
root, as an absolute path: DVC's temporary experiment copies (``.dvc/tmp/exps/...``) log to the real
repository's store (:func:`store_root`), not to a copy that is deleted afterwards.

An unreachable store never stops a training: every logging call goes through :class:`.spool.Spool`, which
queues it on disk during an outage and sends it when the store is back (see that module).
"""
from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping, Optional

from mmengine.visualization import MLflowVisBackend
from mmengine.visualization.vis_backend import force_init_env
from mmseg.registry import VISBACKENDS

from ..utils.errors import LoGoSegUserError
from ..utils.files import process_alive
from .grid import HEAD_KNOBS, knob_params
from .repository import git_tags, relative_to_repo, store_root
from .spool import Spool, bound_http_retries, replay_leftovers, shown_uri, unreachable

EXPERIMENT = 'logoseg'

# The metrics of a run (docs/mlflow.md), each with the precision it means. MMSeg reports
# percentages rounded to 2 decimals as float32 (np.round(x * 100, 2)); our HallucinationIoUMetric rounds its
# fractions and counts per image to 4. Logged as they come, the float32 -> float64 conversion shows in the UI,
# the REST API and the tables as 21.0699996185 or 78.4000015258789: rounding them again removes that noise.
EVALUATION_METRICS = {'mIoU': 2, 'aAcc': 2, 'mAcc': 2, 'hallucination_rate': 4, 'hallucinated_classes': 4}
# Training curves: the total loss and the learning rates (mmengine's ``lr`` is the head's, EncoderLrHook's
# ``encoder_lr`` the image encoder's), float32 tensors too: 6 significant digits, all a float32 holds for sure.
TRAINING_METRICS = ('loss', 'lr', 'encoder_lr')
TRAINING_DIGITS = 6


def metric_value(name: str, value) -> float:
    """``value`` of the metric ``name`` as it is logged: evaluation figures (``<prefix>/<metric>`` or the bare
    metric) at their decimals, training curves at 6 significant digits, anything else as it is (efficiency
    figures are float64 measurements). Never -0.0: a tiny negative rounds to it and the UI would show "-0"."""
    value = float(value)
    decimals = EVALUATION_METRICS.get(name.rpartition('/')[2])
    if decimals is not None:
        value = round(value, decimals)
    elif name in TRAINING_METRICS:
        value = float(f'{value:.{TRAINING_DIGITS}g}')
    return value + 0.0  # -0.0 + 0.0 == +0.0


def tracked_metric(name: str) -> bool:
    """Whether the vis backend sends the scalar ``name`` (``train/`` prefix already dropped) to MLflow: only
    the schema of docs/mlflow.md, :data:`TRAINING_METRICS` and ``<prefix>/<metric>`` of :data:`EVALUATION_METRICS` with
    ``val``, ``test`` or a benchmark as the prefix. mmengine's other scalars (``base_lr``, ``time``,
    ``data_time``, ``iter``, ``memory``, loss terms such as ``decode.loss_bce``, a copy of ``loss`` with one
    loss, ``val/time``) and TestMetricsHook's ``<benchmark>/num_images`` stay in the training log and
    ``vis_data/scalars.json`` (LocalVisBackend): in MLflow they only cluttered the runs table and the charts."""
    if name in TRAINING_METRICS:
        return True
    prefix, _, metric = name.rpartition('/')
    return bool(prefix) and '/' not in prefix and metric in EVALUATION_METRICS


def ensure_experiment(client, name: str = EXPERIMENT) -> str:
    """The id of experiment ``name``, created if absent. Rows that start at once on a new store all find it
    absent and create it: the store refuses all but one (RESOURCE_ALREADY_EXISTS), and those read it back."""
    from mlflow.exceptions import MlflowException
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=_artifact_location(client.tracking_uri))
    except MlflowException as exc:
        if exc.error_code != 'RESOURCE_ALREADY_EXISTS':
            raise
        return client.get_experiment_by_name(name).experiment_id


def tracking_uri(uri: Optional[str] = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///<store_root>/mlflow.db``."""
    return uri or os.environ.get('MLFLOW_TRACKING_URI') or f'sqlite:///{store_root() / "mlflow.db"}'


def _artifact_location(uri: str) -> Optional[str]:
    """``mlruns/`` beside a sqlite store (MLflow's default is the working directory, which under ``dvc exp
    run`` is a temporary copy); a server decides for itself."""
    if uri.startswith('sqlite:///'):
        return (Path(uri[len('sqlite:///'):]).parent / 'mlruns').as_uri()
    return None


def config_params(cfg) -> dict:
    """The few flat params that say what a run is (grid knobs, backbone, schedule), never whole pipelines or
    class lists (MLflow refuses values over 6,000 characters and the UI drowns in them)."""
    model = cfg.get('model', {})
    head = model.get('decode_head', {})
    knobs = {name: head[key] for name, key in HEAD_KNOBS.items() if key in head}
    if 'prior_lambda' in head:
        knobs['lambda'] = head['prior_lambda'] if head.get('use_object_prior', True) else 0.0
    params = knob_params(knobs)  # as a grid row logs them: numbers that MLflow's charts plot
    clip = model.get('clip', {})
    params['clip_model'] = clip.get('model_name')
    params['clip_pretrained'] = clip.get('pretrained')
    train_cfg = cfg.get('train_cfg') or {}
    params['max_iters'] = train_cfg.get('max_iters')
    loader = cfg.get('train_dataloader') or {}
    params['batch_size'] = loader.get('batch_size')
    params['train_set'] = (loader.get('dataset') or {}).get('type')
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    params['lr'] = optimizer.get('lr')
    params['seed'] = (cfg.get('randomness') or {}).get('seed')
    crop = (model.get('data_preprocessor') or {}).get('size')
    params['crop'] = 'x'.join(map(str, crop)) if crop else None
    if cfg.filename:
        params['config'] = relative_to_repo(cfg.filename)
    return {key: value for key, value in params.items() if value is not None}


class TrackedRun:
    """Own one MLflow run's life: create (or reopen) it, and end it with the status it deserves.

    Use as a context manager (``with TrackedRun(...) as run:``), or call :meth:`start` and let the process
    exit decide: a normal :meth:`finish` gives FINISHED; an uncaught exception FAILED (its message is kept as
    the ``error`` tag); Ctrl-C or SIGTERM (how SLURM and ``kill`` stop jobs) KILLED. While the run is open,
    ``MLFLOW_RUN_ID`` names it, so mmengine's MLflow backends in this process or in child processes (torchrun
    workers) log into it instead of opening runs of their own.

    Args:
        name: run name shown in the UI (e.g. the grid row).
        tags: string tags (profile, tables, ...).
        run_id: reopen this run (resumed training, evaluation after training) instead of creating one.
        experiment: MLflow experiment name.
        uri: tracking URI (default: :func:`tracking_uri`).
        marker: a file written when the run ends in any other state than FINISHED (and removed when it
            finishes), so that a work dir holding checkpoints of a failed run does not look complete.

    Tracking outages: the logging methods, :meth:`finish` and a reopening :meth:`start` never wait for an
    unreachable store longer than MLflow's (bounded, :func:`.spool.bound_http_retries`) retries; their calls
    are queued and sent later (:mod:`.spool`). Only creating a new run needs the store: :meth:`start` then
    raises a one-line :class:`LoGoSegUserError` (nothing has run yet). Queues left by ended processes on this
    store are sent by :meth:`start` first (a resumed run gets its earlier calls before its own).
    """

    def __init__(self, name: Optional[str] = None, tags: Optional[Mapping[str, str]] = None,
                 run_id: Optional[str] = None, experiment: str = EXPERIMENT, uri: Optional[str] = None,
                 marker: Optional[Path] = None):
        from mlflow import MlflowClient
        bound_http_retries()
        self.client = MlflowClient(tracking_uri(uri))
        self.name = name
        self.tags = {key: str(value) for key, value in (tags or {}).items()}
        self.experiment = experiment
        self.run_id = run_id
        self.marker = marker
        self._ended = True
        self._pending = 'FAILED'
        self._previous_env: Optional[str] = None
        self._previous_sigterm = None
        self._previous_excepthook = None
        self._error: Optional[str] = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> 'TrackedRun':
        tags = dict(self.tags, host=socket.gethostname(), pid=str(os.getpid()), **git_tags())
        if self.run_id:
            replay_leftovers(self.client)  # what earlier processes could not send (this run's, if resumed) first
            self._log('status', status='RUNNING')
        else:
            try:
                experiment_id = ensure_experiment(self.client, self.experiment)
                self.run_id = self.client.create_run(experiment_id, run_name=self.name).info.run_id
            except Exception as exc:
                reason = unreachable(exc)
                if reason is None:
                    raise
                raise LoGoSegUserError(
                    f'MLflow tracking at {shown_uri(self.client.tracking_uri)} unreachable ({reason}); no run was '
                    'started. Start the server (or unset MLFLOW_TRACKING_URI for the local mlflow.db) and rerun'
                ) from None
            replay_leftovers(self.client)
        self.set_tags(tags)
        self._ended = False
        self._pending = 'FAILED'
        self._previous_env = os.environ.get('MLFLOW_RUN_ID')
        os.environ['MLFLOW_RUN_ID'] = self.run_id
        atexit.register(self._at_exit)
        self._previous_excepthook = sys.excepthook
        sys.excepthook = self._excepthook
        try:
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: SIGTERM then ends the run through atexit as FAILED
            self._previous_sigterm = None
        return self

    def finish(self, status: str = 'FINISHED', error: Optional[str] = None) -> None:
        """End the run (once); later calls do nothing."""
        if self._ended:
            return
        self._ended = True
        if error:
            self.set_tags({'error': error[:5000]})
        # force: the last chance to send what an outage queued before the process ends
        self._log('status', force=True, status=status, end_time=int(time.time() * 1000))
        if not self._spool.pending:
            replay_leftovers(self.client)  # e.g. the queue of a torchrun worker that logged into this run
        self._spool.left_behind()
        if self.marker is not None and status == 'FINISHED':
            self.marker.unlink(missing_ok=True)
        elif self.marker is not None and self.marker.parent.is_dir():
            reason = error or self._logged_error()
            self.marker.write_text(f'{status}: {reason}\nnot a complete run (MLflow run {self.run_id})\n')
        if self._previous_env is None:
            os.environ.pop('MLFLOW_RUN_ID', None)
        else:
            os.environ['MLFLOW_RUN_ID'] = self._previous_env
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._previous_excepthook
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
        atexit.unregister(self._at_exit)

    def __enter__(self) -> 'TrackedRun':
        return self if not self._ended else self.start()  # a run already started is entered as it is

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.finish('FINISHED')
        else:
            status = exit_status(exc)
            self.finish(status, None if status == 'KILLED' else one_line(exc))
        return False

    def _excepthook(self, exc_type, exc, tb):
        self._pending = exit_status(exc)
        if self._pending == 'FAILED':
            self._error = one_line(exc)[:5000]
            self.set_tags({'error': self._error})
        (self._previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)

    def _at_exit(self):
        self.finish(self._pending)

    def _on_sigterm(self, signum, frame):
        self._pending = 'KILLED'
        raise _SigTerm(128 + signum)

    def _logged_error(self) -> str:
        """The run's ``error`` tag: this process's own, else the store's ('' while it cannot be reached)."""
        if self._error is not None:
            return self._error
        try:
            return self.client.get_run(self.run_id).data.tags.get('error', '')
        except Exception as exc:
            if unreachable(exc) is None:
                raise
            return ''

    # -- logging: sent through the run's spool, which queues what an unreachable store cannot take ------------
    @property
    def _spool(self) -> Spool:
        return Spool.of(self.client, self.run_id)

    def _log(self, op: str, force: bool = False, **args) -> None:
        self._spool.call(op, force=force, **args)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        self._log('tags', tags={k: str(v) for k, v in tags.items()})

    def log_params(self, params: Mapping[str, object]) -> None:
        """Log params not logged yet (MLflow refuses to change a logged param: a resumed run keeps its own)."""
        self._log('params', params={k: str(v)[:6000] for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log ``metrics`` at ``step``, each value at the precision it means (:func:`metric_value`)."""
        # stamped now, and queued with the stamp: a resend is then an identical metric, which MLflow ignores
        self._log('metrics', metrics={k: metric_value(k, v) for k, v in metrics.items() if v is not None},
                  step=int(step), timestamp=int(time.time() * 1000))

    def log_artifact(self, path: str | Path, artifact_path: Optional[str] = None) -> None:
        self._log('artifact', path=str(path), artifact_path=artifact_path)

    def log_image(self, image, artifact_file: str) -> None:
        """An RGB ``uint8`` array as the PNG artifact ``artifact_file`` (as ``MlflowClient.log_image``)."""
        import numpy as np
        from PIL import Image
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / Path(artifact_file).name
            Image.fromarray(np.asarray(image)).save(path)
            parent = str(Path(artifact_file).parent)
            self.log_artifact(path, None if parent == '.' else parent)


class _SigTerm(SystemExit):
    """SIGTERM as an exception, so ``finally`` blocks and run bookkeeping get to run."""


def interrupted(exc: Optional[BaseException]) -> bool:
    """Whether ``exc`` is, or was raised while handling, Ctrl-C or SIGTERM: some libraries catch everything
    and raise their own error (mmengine's ``Config.pretty_text`` turns an interrupt into a SyntaxError)."""
    while exc is not None:
        if isinstance(exc, (KeyboardInterrupt, _SigTerm)):
            return True
        exc = exc.__context__
    return False


def exit_status(exc: BaseException) -> str:
    """MLflow status for a run ended by ``exc``: KILLED for Ctrl-C / SIGTERM, FAILED for anything else."""
    if interrupted(exc):
        return 'KILLED'
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return 'FINISHED'
    return 'FAILED'


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f'{type(exc).__name__}: {text[0] if text else ""}'


def mark_stale_runs(client, experiment: str, tags: Mapping[str, str]) -> list[str]:
    """End as KILLED the RUNNING runs with these tags whose process on this host is gone (SIGKILL, OOM).

    Runs of other hosts are left alone: their processes cannot be checked from here. Returns the run ids.
    """
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    query = ' and '.join(["attributes.status = 'RUNNING'"] + [f"tags.{k} = '{v}'" for k, v in tags.items()])
    host = socket.gethostname()
    stale = []
    for run in client.search_runs([found.experiment_id], query, max_results=1000):
        run_tags = run.data.tags
        pid = run_tags.get('pid', '')
        if run_tags.get('host') == host and pid.isdigit() and int(pid) != os.getpid() \
                and not process_alive(int(pid)):
            client.set_tag(run.info.run_id, 'error', f'process {pid} on {host} ended without closing the run '
                                                     '(killed: SIGKILL or out of memory)')
            client.set_terminated(run.info.run_id, 'KILLED')
            stale.append(run.info.run_id)
    return stale


@VISBACKENDS.register_module()
class TrackedMLflowVisBackend(MLflowVisBackend):
    """mmengine's ``MLflowVisBackend`` with honest run bookkeeping.

    Differences from mmengine's: it logs into the run named by ``MLFLOW_RUN_ID`` when one is open (a grid row,
    ``evaluate_all``), else opens a :class:`TrackedRun` of its own named after the config and the time (never a
    random name drawn from the seeded generator); params are the few flat ones of :func:`config_params` unless
    ``params`` is given; training scalars drop mmengine's ``train/`` prefix while validation keeps ``val/``, and
    only the metrics of the schema (docs/mlflow.md) are sent (:func:`tracked_metric`), at their precision
    (:func:`metric_value`);
    artifacts are this run's own log folder, not stale files of a reused work dir; and the default tracking
    URI is :func:`tracking_uri`, so no "make sure the server is running" warning for a local store.
    """

    def __init__(self, save_dir: str, exp_name: str = EXPERIMENT, run_name: Optional[str] = None,
                 tags: Optional[dict] = None, params: Optional[dict] = None, tracking_uri: Optional[str] = None,
                 artifact_suffix=('.json', '.log', '.py', '.yaml'), tracked_config_keys=None,
                 artifact_location: Optional[str] = None):
        super().__init__(save_dir, exp_name, run_name, tags, params, tracking_uri, artifact_suffix,
                         tracked_config_keys, artifact_location)
        self._run: Optional[TrackedRun] = None

    def _init_env(self):
        os.makedirs(self._save_dir, exist_ok=True)
        run_id = os.environ.get('MLFLOW_RUN_ID')
        if run_id:  # someone else owns the run and its status
            self._run = TrackedRun(run_id=run_id, uri=self._tracking_uri, experiment=self._exp_name)
            self._owned = False
            if self._tags:
                self._run.set_tags(self._tags)
        else:
            name = self._run_name or f'{self._config_stem()}-{time.strftime("%Y%m%d-%H%M%S")}'
            self._run = TrackedRun(name, self._tags, uri=self._tracking_uri, experiment=self._exp_name).start()
            self._owned = True
        self._last_steps: dict[str, int] = {}

    def _config_stem(self) -> str:
        filename = getattr(getattr(self, 'cfg', None), 'filename', None)
        return Path(filename).stem if filename else 'logoseg'

    @property  # type: ignore
    @force_init_env
    def experiment(self):
        return self._run

    @force_init_env
    def add_config(self, config, **kwargs) -> None:
        self.cfg = config
        if self._owned and config.get('work_dir'):
            self._run.marker = Path(config.work_dir) / 'INCOMPLETE'
        if self._owned and not self._run_name and config.filename:
            self._run.set_tags({'mlflow.runName': f'{Path(config.filename).stem}-{time.strftime("%Y%m%d-%H%M%S")}'})
        self._run.log_params(self._params or config_params(config))

    @force_init_env
    def add_image(self, name: str, image, step: int = 0, **kwargs) -> None:
        self._run.log_image(image, f'{name}_{step}.png')

    @force_init_env
    def add_scalar(self, name: str, value, step: int = 0, **kwargs) -> None:
        self.add_scalars({name: value}, step)

    @force_init_env
    def add_scalars(self, scalar_dict: dict, step: int = 0, file_path: Optional[str] = None, **kwargs) -> None:
        metrics = {}
        for key, value in scalar_dict.items():
            if key.startswith('train/'):
                key = key[len('train/'):]
            if not tracked_metric(key):
                continue  # in the log file and scalars.json only (before _last_step: no history asked for it)
            if step > 0 and step <= self._last_step(key):
                continue  # logged before a resume from an earlier checkpoint: keep one value per step
            try:
                metrics[key] = float(value)
            except (TypeError, ValueError):  # non-scalar entries (e.g. per-class tables) are not metrics
                continue
        self._run.log_metrics(metrics, step)
        self._last_steps.update({key: step for key in metrics})

    def _last_step(self, key: str) -> int:
        """The last step of ``key`` already in the run (a reopened run holds the killed attempt's steps)."""
        if key not in self._last_steps:
            history = []
            # during an outage (calls queued) the store is not asked: the value is queued like any other
            if not self._owned and not self._run._spool.pending:
                try:
                    history = self._run.client.get_metric_history(self._run.run_id, key)
                except Exception as exc:
                    if unreachable(exc) is None:
                        raise
            self._last_steps[key] = max((m.step for m in history), default=-1)
        return self._last_steps[key]

    def close(self) -> None:
        if self._run is None:
            return
        log_dir = Path(self._save_dir).parent  # <work_dir>/<timestamp>: this run's log, config, scalars
        suffixes = tuple(self._artifact_suffix) if not isinstance(self._artifact_suffix, str) \
            else (self._artifact_suffix, )
        for path in sorted(log_dir.rglob('*')):
            if path.is_file() and path.name.endswith(suffixes):
                folder = path.parent.relative_to(log_dir)
                self._run.log_artifact(path, None if folder == Path('.') else str(folder))
        if self._owned:
            self._run.finish('FINISHED')
        self._run = None
        self._env_initialized = False  # mmengine reuses a named visualizer: the next Runner opens anew
