"""The paper profile's dress rehearsal, one row of it (ViT-B/16 at its real width): the paper config's own path
(batch per GPU, half-way checkpoint, the 640-pixel test protocol, MLflow, tables) runs end to end on a CPU."""
import json
import os
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from ..test_grid_pipeline import BENCHMARKS, BIN, copy_repository

pytestmark = pytest.mark.slow


def test_the_rehearsal_runs_a_paper_config_at_its_real_width_end_to_end(tmp_path):
    root = tmp_path / 'repo'
    root.mkdir()
    copy_repository(root)
    uri = f'sqlite:///{tmp_path / "mlflow.db"}'
    env = dict(os.environ, PATH=f'{BIN}:{os.environ["PATH"]}', PYTHONPATH=str(root / 'projects'),
               MLFLOW_TRACKING_URI=uri)
    env.pop('MLFLOW_RUN_ID', None)
    proc = subprocess.run([sys.executable, '-m', 'logoseg.experiments.rehearse', '--rows', 'full'], cwd=root, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0].startswith('full: ok (')
    metrics = json.loads((root / 'results' / 'rehearsal' / 'metrics' / 'full.json').read_text())
    assert all(metrics[name]['num_images'] == 2 for name in BENCHMARKS)
    figures = metrics['efficiency']
    assert figures['input'] == '640x640' and figures['flops_input'] == '384x384'  # the paper's protocol
    assert figures['params_total_M'] > 150  # ViT-B/16 CLIP at its real width, not the smoke tower
    train_dir = root / 'results' / 'rehearsal' / 'train' / 'full'
    (work_dir,) = (p for p in train_dir.iterdir() if p.is_dir())
    assert (train_dir / 'final.pth').samefile(work_dir / 'final.pth')  # the row's checkpoint at a fixed path
    assert (work_dir / 'iter_1.pth').is_file() and (work_dir / 'final.pth').is_file()
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name('logoseg').experiment_id],
                                "tags.row = 'full' and tags.profile = 'rehearsal'")
    assert run.info.status == 'FINISHED' and run.data.params['config'] == 'configs/logoseg_vitb.py'
    assert run.data.params['batch_size'] == '1'
    assert (root / 'results' / 'rehearsal' / 'tables' / 'table1.md').is_file()
