"""A dataset of your own through the whole loop, for real, in a temporary copy of the repository: the generated
stand-in, declared in params.yaml, prepared by its DVC stage, trained on by a grid row, fine-tuned on by another
(``load_from: row:...``), evaluated zero-shot into MLflow, shown in the tables, and segmented with its class file
and scored with the same metric."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..test_grid_pipeline import BIN, client, copy_repository, dvc, edit_yaml, row_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def grid(tmp_path_factory):
    import os
    root = tmp_path_factory.mktemp('own') / 'repo'
    root.mkdir()
    copy_repository(root)

    def own_rows(data):
        data['rows'] = dict(own=dict(tables={}, set=dict(train_set='standin')),
                            own_ft=dict(tables={}, set=dict(train_set='standin', load_from='row:own')))
    edit_yaml(root / 'experiments' / 'rows.yaml', own_rows)
    edit_yaml(root / 'params.yaml', lambda params: params['smoke'].update(benchmarks=['ade150', 'standin']))
    subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'own rows'], cwd=root,
                   check=True)
    env = dict(os.environ, PATH=f'{BIN}:{os.environ["PATH"]}', PYTHONPATH=str(root / 'projects'),
               MLFLOW_TRACKING_URI=f'sqlite:///{root.parent / "mlflow.db"}', OMP_NUM_THREADS='2')
    env.pop('MLFLOW_RUN_ID', None)
    return root, env


@pytest.fixture(scope='module')
def trained(grid):
    prepared = dvc(grid, 'repro', 'prepare_dataset@standin')  # docs/datasets.md: generate, check, prepare
    assert prepared.returncode == 0, prepared.stdout[-4000:] + prepared.stderr[-4000:]
    proc = dvc(grid, 'repro', 'ablation_grid')  # the main job's command: row@own first, own_ft starts from it
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return prepared.stdout + proc.stdout


def run(grid, *command, timeout=600):
    root, env = grid
    return subprocess.run([sys.executable, *command], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_declared_dataset_is_prepared_by_its_stage_before_the_rows(grid, trained):
    root, _ = grid
    assert 'Running stage \'standin_dataset\'' in trained and 'Running stage \'prepare_dataset@standin\'' in trained
    manifest = json.loads((root / 'prepared' / 'datasets' / 'standin' / 'manifest.json').read_text())
    assert set(manifest['splits']) == {'train', 'val', 'test'}
    assert 'prepared/datasets/standin' in (root / 'dvc.lock').read_text()  # its version is recorded


def test_rows_train_on_it_fine_tune_from_another_row_and_log_its_figures(grid, trained):
    root, _ = grid
    for row in ('own', 'own_ft'):
        metrics = json.loads((root / 'results' / 'smoke' / 'metrics' / f'{row}.json').read_text())
        assert list(metrics)[:2] == ['ade150', 'standin']
        assert 0 <= metrics['standin']['mIoU'] <= 100 and metrics['standin']['num_images'] == 12
        (run_,) = row_runs(grid, row)
        assert run_.info.status == 'FINISHED'
        assert run_.data.params['train_set'] == 'standin'
        assert {'standin/mIoU', 'standin/hallucination_rate', 'ade150/mIoU'} <= set(run_.data.metrics)
        manifest = json.loads((root / 'prepared' / 'datasets' / 'standin' / 'manifest.json').read_text())
        assert run_.data.tags['dataset.standin'] == manifest['digest'][:12]  # the data version it used
        logged = client(grid).download_artifacts(run_.info.run_id, 'datasets/standin/manifest.json', str(root.parent))
        assert json.loads(Path(logged).read_text())['splits']['train']['class_pixels'] == \
            manifest['splits']['train']['class_pixels']
    (tuned,) = row_runs(grid, 'own_ft')
    assert tuned.data.params['load_from'] == 'row:own'
    work_dir = next((root / 'results' / 'smoke' / 'train' / 'own_ft').glob('*/config.py')).parent
    assert "load_from = 'results/smoke/train/own/final.pth'" in (work_dir / 'config.py').read_text()
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'Load checkpoint from results/smoke/train/own/final.pth' in log


def test_the_tables_show_every_row_on_it(grid, trained):
    root, _ = grid
    table = (root / 'results' / 'smoke' / 'tables' / 'datasets.csv').read_text().splitlines()
    assert table[0].startswith('row,standin mIoU,standin hallucination')
    rows = {line.split(',')[0]: line.split(',') for line in table[1:]}
    assert set(rows) == {'own', 'own_ft'} and all(rows[row][1] for row in rows)


def test_zero_shot_evaluation_and_segment_output_score_alike(grid, trained, tmp_path):
    root, env = grid
    checkpoint = 'results/smoke/train/own/final.pth'
    proc = run(grid, '-m', 'logoseg.tools.evaluate_all', 'configs/smoke/logoseg_vitb.py', checkpoint,
               '--benchmarks', 'standin', '--out', str(tmp_path / 'standin.json'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = json.loads((tmp_path / 'standin.json').read_text())['standin']
    proc = subprocess.run([str(BIN / 'logoseg'), 'segment', 'prepared/datasets/standin/val/images', '--vocab-file',
                           'prepared/datasets/standin/classes.txt', '--config', 'configs/smoke/logoseg_vitb.py',
                           '--checkpoint', checkpoint, '--out', str(tmp_path / 'seg')], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run(grid, '-m', 'logoseg.tools.score_labels', str(tmp_path / 'seg' / 'labels'), '--dataset', 'standin',
               '--out', str(tmp_path / 'scored.json'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    scored = json.loads((tmp_path / 'scored.json').read_text())
    assert scored['num_images'] == evaluated['num_images'] == 12
    assert scored['mIoU'] == pytest.approx(evaluated['mIoU'], abs=0.5)
    # mim test with the one eval config of every declared dataset: the same figure as evaluate_all
    own = dict(env, LOGOSEG_DATASET='standin', LOGOSEG_MODEL='../smoke/logoseg_vitb.py')
    proc = subprocess.run([str(BIN / 'mim'), 'test', 'mmseg', 'configs/eval/dataset.py', '--checkpoint', checkpoint,
                           '--work-dir', str(tmp_path / 'mim')], cwd=root, capture_output=True, text=True,
                          timeout=600, env=own)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert float(re.findall(r'mIoU: ([\d.]+)', proc.stdout + proc.stderr)[-1]) == pytest.approx(evaluated['mIoU'],
                                                                                                abs=0.01)


def test_a_second_dataset_side_by_side_and_a_bad_file_stops_its_stage_leaving_the_good_output(grid, trained):
    root, _ = grid
    shutil.copytree(root / 'datasets' / 'standin', root / 'datasets' / 'mine')
    edit_yaml(root / 'params.yaml', lambda params: params['datasets'].update(
        mine=dict(params['datasets']['standin'], raw='datasets/mine')))
    proc = dvc(grid, 'repro', 'prepare_dataset@mine')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = root / 'prepared' / 'datasets' / 'mine' / 'manifest.json'
    good = manifest.read_text()
    mask = sorted((root / 'datasets' / 'mine' / 'masks' / 'val').iterdir())[0]
    mask.write_bytes(mask.read_bytes()[:-40])  # truncated: its end is missing
    proc = dvc(grid, 'repro', 'prepare_dataset@mine')
    assert proc.returncode != 0
    assert mask.name in proc.stderr and 'prepared/datasets/mine.problems.txt' in proc.stderr
    assert manifest.read_text() == good and (root / 'prepared' / 'datasets' / 'standin' / 'manifest.json').is_file()
    report = (root / 'prepared' / 'datasets' / 'mine.problems.txt').read_text()
    assert mask.name in report
