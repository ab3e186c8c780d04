"""MLflow bookkeeping: statuses that tell the truth, readable names, flat params, the stale-run sweep."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mmengine.config import Config

from logoseg.experiments.repository import git_tags, repo_root
from logoseg.experiments.tracking import (EXPERIMENT, TrackedRun, config_params,
                                          mark_stale_runs, tracking_uri)

REPO = Path(__file__).resolve().parents[2]


def runs(client, **tags):
    experiment = client.get_experiment_by_name(EXPERIMENT)
    query = ' and '.join(f"tags.{k} = '{v}'" for k, v in tags.items())
    return client.search_runs([experiment.experiment_id], query)


def test_a_successful_run_ends_finished_with_its_name_tags_and_git_commit(store):
    with TrackedRun('t2_op', dict(row='t2_op', profile='smoke')) as run:
        assert os.environ['MLFLOW_RUN_ID'] == run.run_id
        run.log_params(dict(op=True, r=6))
        run.log_metrics({'ade150/mIoU': 12.5})
    assert 'MLFLOW_RUN_ID' not in os.environ
    (found,) = runs(store, row='t2_op')
    assert found.info.status == 'FINISHED'
    assert found.info.run_name == 't2_op'
    assert found.data.params == {'op': 'True', 'r': '6'}
    assert found.data.metrics['ade150/mIoU'] == 12.5
    assert found.data.tags['profile'] == 'smoke'
    assert len(found.data.tags['git_commit']) == 40


@pytest.mark.parametrize('exc, status', [(RuntimeError('corrupt image x.jpg'), 'FAILED'),
                                         (KeyboardInterrupt(), 'KILLED')])
def test_an_exception_ends_the_run_failed_or_killed_never_finished(store, exc, status):
    with pytest.raises(type(exc)):
        with TrackedRun('row', dict(row='boom')):
            raise exc
    (found,) = runs(store, row='boom')
    assert found.info.status == status
    if status == 'FAILED':
        assert found.data.tags['error'] == 'RuntimeError: corrupt image x.jpg'


def test_ctrl_c_that_a_library_turns_into_its_own_error_still_ends_the_run_killed(store, monkeypatch):
    """mmengine's ``Config.pretty_text`` catches everything yapf raises, Ctrl-C included, and raises a
    SyntaxError: a row interrupted while its config is dumped was stopped, not broken."""
    def interrupted_format(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr('mmengine.config.config.FormatCode', interrupted_format)
    with pytest.raises(SyntaxError):
        with TrackedRun('row', dict(row='dumping')):
            Config(dict(model=dict(type='LoGoSeg'))).pretty_text
    (found,) = runs(store, row='dumping')
    assert found.info.status == 'KILLED' and 'error' not in found.data.tags


def test_reopening_a_run_keeps_its_logged_params(store):
    with TrackedRun('row', dict(row='again')) as run:
        run.log_params(dict(r=6))
    with TrackedRun(run_id=run.run_id) as reopened:
        reopened.log_params(dict(r=8, lr=0.1))  # a logged param never changes (MLflow would raise)
        reopened.log_metrics({'voc20/mIoU': 90.0})
    (found,) = runs(store, row='again')
    assert found.data.params == {'r': '6', 'lr': '0.1'}
    assert found.info.status == 'FINISHED' and found.data.metrics['voc20/mIoU'] == 90.0


CHILD = textwrap.dedent('''
    import sys, time
    from logoseg.experiments.tracking import TrackedRun
    run = TrackedRun('child', dict(row=sys.argv[1])).start()
    print(run.run_id, flush=True)
    time.sleep(60)
''')


def start_child(tag):
    proc = subprocess.Popen([sys.executable, '-c', CHILD, tag], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO / 'projects')))
    run_id = proc.stdout.readline().strip()
    assert run_id, 'child did not start its run'
    return proc, run_id


def test_sigterm_ends_the_run_killed(store):
    proc, run_id = start_child('sigterm')
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    assert store.get_run(run_id).info.status == 'KILLED'


def test_a_run_left_running_by_sigkill_is_marked_killed_by_the_next_sweep(store):
    proc, run_id = start_child('sigkill')
    proc.kill()
    proc.wait(timeout=60)
    assert store.get_run(run_id).info.status == 'RUNNING'  # nothing could end it
    with TrackedRun('other', dict(row='other')) as alive:  # a live run of this process is never touched
        assert mark_stale_runs(store, EXPERIMENT, dict(row='sigkill')) == [run_id]
        assert mark_stale_runs(store, EXPERIMENT, dict(row='other')) == []
    stale = store.get_run(run_id)
    assert stale.info.status == 'KILLED'
    assert 'ended without closing the run' in stale.data.tags['error']
    assert store.get_run(alive.run_id).info.status == 'FINISHED'


def test_config_params_are_a_few_flat_knobs_not_the_config():
    cfg = Config.fromfile(str(REPO / 'configs' / 'logoseg_vitb.py'))
    params = config_params(cfg)
    # knobs as numbers MLflow's charts plot (booleans 1/0), as the grid's rows log them
    assert {k: str(params[k]) for k in ('op', 'r', 'lambda', 'lambda_learnable')} == {
        'op': '1', 'r': '6', 'lambda': '1.0', 'lambda_learnable': '0'}
    assert params['clip_model'] == 'ViT-B-16-quickgelu' and params['crop'] == '384x384'
    assert params['max_iters'] == 80000 and params['train_set'] == 'COCOStuff171Dataset'
    assert len(params) < 25 and all(len(str(v)) < 100 for v in params.values())


def test_backend_opens_a_named_run_and_leaves_it_failed_when_the_process_dies(store, tmp_path):
    """The mim-train path: the backend owns its run; an uncaught error ends it FAILED, not FINISHED."""
    script = textwrap.dedent(f'''
        from mmengine.config import Config
        from logoseg.experiments.tracking import TrackedMLflowVisBackend
        backend = TrackedMLflowVisBackend(save_dir={str(tmp_path / "ts" / "vis_data")!r})
        cfg = Config.fromfile({str(REPO / "configs" / "logoseg_smoke.py")!r})
        cfg.work_dir = {str(tmp_path / "ts")!r}
        backend.add_config(cfg)
        backend.add_scalars({{'train/loss': 1.5, 'train/lr': 0.1, 'val/mIoU': 40.0, 'note': 'text'}}, step=3)
        raise RuntimeError('validation crashed')
    ''')
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO / 'projects')))
    assert proc.returncode != 0 and 'validation crashed' in proc.stderr
    experiment = store.get_experiment_by_name(EXPERIMENT)
    (found,) = store.search_runs([experiment.experiment_id])
    assert found.info.status == 'FAILED'
    assert found.data.tags['error'] == 'RuntimeError: validation crashed'
    assert found.info.run_name.startswith('logoseg_smoke-')
    assert set(found.data.metrics) == {'loss', 'lr', 'val/mIoU'}
    assert found.data.params['config'] == 'configs/logoseg_smoke.py'
    # the work dir says the run is not complete, whatever checkpoints it holds
    assert (tmp_path / 'ts' / 'INCOMPLETE').read_text().startswith('FAILED: RuntimeError: validation crashed')


def test_tracking_uri_is_an_absolute_sqlite_store_at_the_real_repository(monkeypatch):
    monkeypatch.delenv('MLFLOW_TRACKING_URI', raising=False)
    assert tracking_uri() == f'sqlite:///{repo_root() / "mlflow.db"}'
    assert repo_root().is_absolute()
    monkeypatch.setenv('MLFLOW_TRACKING_URI', 'http://127.0.0.1:5000')
    assert tracking_uri() == 'http://127.0.0.1:5000'


def make_repository(root: Path) -> Path:
    (root / '.dvc').mkdir(parents=True)
    (root / 'dvc.yaml').write_text('stages: {}\n')
    return root


def test_the_repository_is_the_one_holding_the_working_directory_not_the_install(monkeypatch, tmp_path):
    """A queued DVC experiment runs in its own copy (DVC sets DVC_ROOT to the parent repository there): it
    reads and writes the copy, and logs to the parent's store, which outlives the copy."""
    parent = make_repository(tmp_path / 'repo')
    copy = make_repository(parent / '.dvc' / 'tmp' / 'exps' / 'tmpabc')
    (copy / 'configs').mkdir()
    monkeypatch.delenv('MLFLOW_TRACKING_URI', raising=False)
    monkeypatch.setenv('DVC_ROOT', str(parent))
    monkeypatch.chdir(copy / 'configs')
    assert repo_root() == copy
    assert tracking_uri() == f'sqlite:///{parent / "mlflow.db"}'
    monkeypatch.chdir(tmp_path)  # outside any repository: DVC's word, else the install location
    assert repo_root() == parent
    monkeypatch.delenv('DVC_ROOT')
    assert repo_root() == REPO


def git(root: Path, *args: str) -> None:
    subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *args], cwd=root, check=True,
                   capture_output=True)


def test_git_dirty_is_true_only_for_source_changes_not_for_files_dvc_writes(tmp_path):
    root = make_repository(tmp_path / 'repo')
    (root / 'experiments').mkdir()
    for name in ('dvc.lock', 'params.yaml', 'experiments/rows.yaml', 'data.dvc', 'model.py'):
        (root / name).write_text('a: 1\n')
    git(root, 'init', '-q')
    git(root, 'add', '-A')
    git(root, 'commit', '-qm', 'x')
    for name in ('dvc.lock', 'params.yaml', 'experiments/rows.yaml', 'data.dvc'):
        (root / name).write_text('a: 2\n')  # what `dvc repro` and `dvc exp run -S` rewrite
    assert git_tags(root)['git_dirty'] == 'false'
    (root / 'model.py').write_text('a: 2\n')
    assert git_tags(root)['git_dirty'] == 'true'


def test_a_failed_run_resumed_to_success_loses_its_error_tag(store):
    with pytest.raises(RuntimeError):
        with TrackedRun('row', dict(row='flaky')):
            raise RuntimeError('out of memory')
    (failed,) = runs(store, row='flaky')
    assert failed.data.tags['error'] == 'RuntimeError: out of memory'
    with TrackedRun('row', run_id=failed.info.run_id):
        pass
    (found,) = runs(store, row='flaky')
    assert found.info.status == 'FINISHED' and 'error' not in found.data.tags


def test_the_backend_relies_on_mmengines_vis_backend_protocol_and_it_still_holds(store, tmp_path):
    """The one mmengine internal the backend builds on: its ``force_init_env`` (the decorator every vis backend's
    ``add_*`` wears) calls ``_init_env`` on first use and marks the backend ``_env_initialized``; ``close`` clears
    the mark, so a visualizer that mmengine reuses for the next Runner opens a new run. Fails when mmengine
    renames either, instead of the backend silently logging nowhere."""
    from logoseg.experiments.tracking import TrackedMLflowVisBackend
    backend = TrackedMLflowVisBackend(save_dir=str(tmp_path / 'work' / 'vis_data'))
    assert not getattr(backend, '_env_initialized', False) and backend._run is None
    backend.add_scalars({'train/loss': 1.0}, step=1)
    assert backend._env_initialized is True
    first = backend._run.run_id
    backend.close()
    backend.add_scalars({'train/loss': 0.5}, step=1)
    second = backend._run.run_id
    backend.close()
    assert first != second
    for run_id, loss in ((first, 1.0), (second, 0.5)):
        run = store.get_run(run_id)
        assert run.info.status == 'FINISHED' and run.data.metrics['loss'] == loss


def test_an_experiment_another_row_created_meanwhile_is_read_back_not_an_error(store):
    """Rows starting at once on a new store: each finds no experiment and creates it; the store refuses all but
    the first (RESOURCE_ALREADY_EXISTS), and the others take its id."""
    from logoseg.experiments.tracking import ensure_experiment
    created = store.create_experiment(EXPERIMENT)

    class LateClient:  # looked before the other row created it
        tracking_uri = store.tracking_uri
        looked = False

        def get_experiment_by_name(self, name):
            if not self.looked:
                self.looked = True
                return None
            return store.get_experiment_by_name(name)

        def create_experiment(self, name, **kwargs):
            return store.create_experiment(name, **kwargs)

    assert ensure_experiment(LateClient()) == created
    assert ensure_experiment(store) == created
