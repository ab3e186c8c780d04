"""The preemption signal under SLURM: outside training it stops the process at once (exit 75, run KILLED); in
training it only asks the hook to checkpoint after the iteration. Without LOGOSEG_PREEMPTIBLE nothing changes."""
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from logoseg.experiments import preemption, tracking


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


DRIVER = textwrap.dedent('''
    """run_row's torchrun path in small: this process waits for torchrun's two gloo workers, which train the
    smoke config with the preemption hook."""
    import sys
    from logoseg.experiments import preemption
    preemption.install()
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node=2', '--master-port', sys.argv[2],
               __file__.replace('driver.py', 'worker.py'), sys.argv[1], sys.argv[3]]
    code = preemption.run_training_child(command, env=None)
    sys.exit(code)
''')
WORKER = textwrap.dedent('''
    import sys
    from mmengine.config import Config
    from mmengine.runner import Runner
    from logoseg.experiments import preemption
    preemption.install()  # as run_row does first thing in every worker
    cfg = Config.fromfile(sys.argv[1])
    iters = 400
    cfg.merge_from_dict({'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
                         'param_scheduler.1.end': iters, 'default_hooks.checkpoint.interval': iters,
                         'default_hooks.logger.interval': 1, 'train_dataloader.batch_size': 2})
    cfg.work_dir, cfg.launcher, cfg.resume = sys.argv[2], 'pytorch', True
    Runner.from_cfg(preemption.with_preemption(cfg)).train()
''')


@pytest.mark.slow
def test_torchrun_workers_checkpoint_together_and_the_training_resumes_there(tmp_path):
    """The signal reaches the driver and torchrun (their process group; torchrun's workers each run in a
    session of their own, as under SLURM's proctrack/pgid): torchrun survives it, the driver passes it on, the
    ranks stop after one iteration (the hook reduces the flag over ranks), rank 0's checkpoint is complete
    before any rank exits, the driver exits 75 (requeue), and the rerun resumes at that iteration."""
    from ..conftest import REPO, SMOKE_CONFIG
    (tmp_path / 'driver.py').write_text(DRIVER)
    (tmp_path / 'worker.py').write_text(WORKER)
    work_dir = tmp_path / 'work'
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = str(probe.getsockname()[1])
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO / 'projects'), **{preemption.ENV: '1'})
    env.pop('SUBMITIT_PREEMPT_SIGNAL', None)
    command = [sys.executable, str(tmp_path / 'driver.py'), str(SMOKE_CONFIG), port, str(work_dir)]
    driver = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(work_dir.glob('*/vis_data/scalars.json')) and driver.poll() is None:
        assert time.monotonic() < deadline, 'the workers did not start training'
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGUSR2)  # driver and torchrun; the workers only through the driver
    out, _ = driver.communicate(timeout=300)
    assert driver.returncode == preemption.EXIT_PREEMPTED, out[-4000:]
    (step,) = {int(n) for n in re.findall(r'Preempted: saving checkpoint at (\d+) iterations', out)}
    assert 0 < step < 400
    assert (work_dir / 'last_checkpoint').read_text().strip().endswith(f'iter_{step}.pth')
    state = torch.load(work_dir / f'iter_{step}.pth', map_location='cpu', weights_only=False)  # complete
    assert state['meta']['iter'] == step
    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert f'resumed epoch: 0, iter: {step}' in resumed.stdout + resumed.stderr
    assert torch.load(work_dir / 'iter_400.pth', map_location='cpu', weights_only=False)['meta']['iter'] == 400
