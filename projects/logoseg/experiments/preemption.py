"""Preemption and time limits under SLURM: save a checkpoint at the end of the current iteration and exit.

A grid row submitted to SLURM (``logoseg.experiments.submit``) runs ``run_row`` as a child of submitit's job
process with ``LOGOSEG_PREEMPTIBLE=1``. When SLURM signals the job (preemption, or its time limit
approaching: submitit asks for ``--signal=USR2@<delay>``), the signal reaches every process of the job step:
submitit's own handler in the parent, and :func:`install`'s handler here. While training runs, the handler
only raises a flag; :class:`PreemptionHook` sees it after the iteration, saves a checkpoint through mmengine's
``CheckpointHook`` (unless that hook just saved this iteration) and raises :class:`Preempted`: the row's
MLflow run ends KILLED (not FAILED) and the process exits with :data:`EXIT_PREEMPTED`. The parent then lets
submitit requeue the job, and the rerun of ``run_row`` resumes from that checkpoint in the same run. Outside
the training loop (building, evaluating) there is nothing to save: the handler stops the process at once and
the rerun redoes that part.

``run_row`` calls :func:`install` first thing and builds its Runner from :func:`with_preemption` ``(cfg)``, so
the hook never enters the config that is fingerprinted and dumped. Without the variable both do nothing.
With several GPUs ``run_row`` trains through torchrun, or over several nodes in an ``srun`` step of the job
(:func:`run_training_child`): each worker handles the signal as above, the ranks agree on the iteration to stop
after, and ``run_row`` waits for them.
"""
from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
from typing import Optional

import psutil
from mmengine.dist import barrier
from mmengine.hooks import CheckpointHook, Hook
from mmseg.registry import HOOKS

from . import tracking

ENV = 'LOGOSEG_PREEMPTIBLE'
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: "try again later"; the submission layer requeues on it

_state = dict(requested=False, training=False)


def preemption_signal() -> signal.Signals:
    """The signal submitit uses for preemption and time-outs (``SUBMITIT_PREEMPT_SIGNAL``, default USR2)."""
    return getattr(signal, 'SIG' + os.environ.get('SUBMITIT_PREEMPT_SIGNAL', 'USR2'))


# KILLED in MLflow, like SIGTERM (tracking.exit_status): the training was stopped from outside, not broken
_Base = getattr(tracking, '_SigTerm', SystemExit)


class Preempted(_Base):
    """The job was signalled; a checkpoint is saved (when training) and the row is to be requeued."""

    def __init__(self, message: str = 'preempted'):
        super().__init__(EXIT_PREEMPTED)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _on_signal(signum, frame) -> None:
    _state['requested'] = True
    if not _state['training']:
        raise Preempted(f'signal {signal.Signals(signum).name} outside training: stopped, the rerun redoes it')


def install() -> bool:
    """Handle the preemption signal in this process when ``LOGOSEG_PREEMPTIBLE`` is set; True if installed."""
    if not os.environ.get(ENV):
        return False
    _state.update(requested=False, training=False)
    signal.signal(preemption_signal(), _on_signal)
    return True


def run_training_child(command: list[str], env: dict) -> int:
    """Run ``command`` (torchrun and its workers, which train, or ``srun`` of the workers on several nodes) and
    return its exit status; raise :class:`Preempted` when the preemption signal came meanwhile.

    Under ``srun`` the workers run in a step of their own, which SLURM signals itself, like every step of the
    job; what follows is about torchrun.

    The workers handle the signal (:class:`PreemptionHook`: all ranks stop after the same iteration, rank 0
    saves). torchrun ignores it (inherited ``SIG_IGN``; each worker installs its own handler at start): the
    signal's default action would end torchrun at once and leave its workers unsupervised mid-save. This
    process notes it, passes it on to torchrun's workers and waits for them: torchrun starts each worker in a
    session of its own, which SLURM's ``proctrack/pgid`` does not signal (``cgroup`` and ``linuxproc`` do; a
    worker signalled twice only sets its flag twice).
    """
    if not os.environ.get(ENV):
        return subprocess.run(command, env=env).returncode
    sig = preemption_signal()
    child = subprocess.Popen(command, env=env, preexec_fn=lambda: signal.signal(sig, signal.SIG_IGN))

    def forward(signum, frame) -> None:
        _state['requested'] = True
        try:
            workers = psutil.Process(child.pid).children(recursive=True)
        except psutil.Error:
            return
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                worker.send_signal(signum)
    previous = signal.signal(sig, forward)
    try:
        code = child.wait()
    finally:
        signal.signal(sig, previous)
    if _state['requested']:
        raise Preempted(f'preempted while torchrun trained (exit {code}): its workers saved a checkpoint, to be '
                        'requeued')
    return code


def with_preemption(cfg):
    """``cfg`` with :class:`PreemptionHook` added when preemption is handled here, else ``cfg`` itself."""
    if not os.environ.get(ENV):
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.custom_hooks = [*(cfg.get('custom_hooks') or []), dict(type='PreemptionHook')]
    return cfg


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Checkpoint and exit (:class:`Preempted`) after the iteration during which the preemption signal came.

    With several processes (torchrun) the flag is reduced over all ranks each iteration, so that every rank
    stops after the same iteration and the checkpoint is saved collectively.
    """

    priority = 'VERY_LOW'  # after mmengine's CheckpointHook: an iteration it just saved is not saved twice

    def before_train(self, runner) -> None:
        _state['training'] = True

    def after_train(self, runner) -> None:
        _state['training'] = False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        if not self._requested():
            return
        checkpoints = [hook for hook in runner.hooks if isinstance(hook, CheckpointHook)]
        step = runner.iter + 1
        if checkpoints:
            hook = checkpoints[0]
            saved = runner.message_hub.get_info('last_ckpt') or ''
            if os.path.basename(saved) != hook.filename_tmpl.format(step):
                runner.logger.info(f'Preempted: saving checkpoint at {step} iterations')
                hook._save_checkpoint(runner)
        # rank 0 writes the file: no rank exits before it is complete (torchrun stops the others at the first exit)
        barrier()
        _state['training'] = False
        raise Preempted(f'preempted after iteration {step}: checkpoint saved, to be requeued')

    @staticmethod
    def _requested() -> bool:
        import torch.distributed as dist
        if not (dist.is_available() and dist.is_initialized()):
            return _state['requested']
        import torch
        flag = torch.tensor([int(_state['requested'])],
                            device='cuda' if dist.get_backend() == 'nccl' else 'cpu')
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())
