"""The preemption signal under SLURM: outside training it stops the process at once (exit 75, run KILLED); in
training it only asks the hook to checkpoint after the iteration. Without LOGOSEG_PREEMPTIBLE nothing changes."""
import os
import signal
from types import SimpleNamespace

import pytest
from mmengine.config import Config

from logoseg.engine import preemption, tracking


@pytest.fixture
def preemptible(monkeypatch):
    previous = signal.getsignal(signal.SIGUSR2)
    monkeypatch.setenv(preemption.ENV, '1')
    monkeypatch.delenv('SUBMITIT_PREEMPT_SIGNAL', raising=False)
    assert preemption.install()
    yield
    signal.signal(signal.SIGUSR2, previous)
    preemption._state.update(requested=False, training=False)


def test_nothing_changes_without_the_variable(monkeypatch):
    monkeypatch.delenv(preemption.ENV, raising=False)
    cfg = Config(dict(custom_hooks=[dict(type='VocabularyHook')]))
    assert not preemption.install() and preemption.with_preemption(cfg) is cfg


def test_the_hook_joins_a_copy_of_the_config(preemptible):
    cfg = Config(dict(custom_hooks=[dict(type='VocabularyHook')]))
    hooked = preemption.with_preemption(cfg)
    assert [h['type'] for h in hooked.custom_hooks] == ['VocabularyHook', 'PreemptionHook']
    assert len(cfg.custom_hooks) == 1  # the fingerprinted, dumped config stays as it was


def test_outside_training_the_signal_stops_at_once_as_killed(preemptible):
    with pytest.raises(preemption.Preempted) as stopped:
        os.kill(os.getpid(), signal.SIGUSR2)
    assert stopped.value.code == preemption.EXIT_PREEMPTED == 75
    assert tracking.exit_status(stopped.value) == 'KILLED'


def test_in_training_the_hook_checkpoints_after_the_iteration_and_stops(preemptible, tmp_path):
    from mmengine.hooks import CheckpointHook
    saved = []
    checkpoint = CheckpointHook(interval=100)
    checkpoint._save_checkpoint = lambda runner: saved.append(runner.iter + 1)
    hub = SimpleNamespace(get_info=lambda key: str(tmp_path / 'iter_100.pth'))
    runner = SimpleNamespace(hooks=[checkpoint], iter=122, message_hub=hub,
                             logger=SimpleNamespace(info=lambda message: None))
    hook = preemption.PreemptionHook()
    hook.before_train(runner)
    os.kill(os.getpid(), signal.SIGUSR2)  # only raises the flag while training
    with pytest.raises(preemption.Preempted, match='after iteration 123'):
        hook.after_train_iter(runner, 0)
    assert saved == [123]
