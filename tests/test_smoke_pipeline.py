"""End to end on the CPU smoke profile, through the same commands a user runs (mim train / mim test)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mmseg
from logoseg.datasets.smoke import SPLIT_SEEDS, render_scene

from .conftest import REPO, SMOKE_CONFIG

pytestmark = pytest.mark.slow
TRAIN_ITERS = 120
TRAIN_SCRIPT = Path(mmseg.__file__).parent / '.mim' / 'tools' / 'train.py'
MIM = str(Path(sys.executable).with_name('mim'))  # the environment's own `mim`, as the README runs it


def run(cmd, cwd, timeout=900, env=None):
    # runs of this module log to a store of their own: the session's store also holds runs other tests killed
    env = dict(os.environ, MLFLOW_TRACKING_URI=f'sqlite:///{Path(cwd) / "mlflow.db"}', **(env or {}))
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    return proc


def scalars(work_dir: Path) -> list[dict]:
    files = sorted(work_dir.glob('*/vis_data/scalars.json'))
    assert files, f'no scalars.json under {work_dir}'
    return [json.loads(line) for line in files[-1].read_text().splitlines()]


def chance_miou(num_images=16, classes=5) -> float:
    """The best mIoU of label-blind predictors: a constant class, uniform or frequency-matched guessing."""
    labels = np.stack([render_scene(SPLIT_SEEDS['val'] + i)[1] for i in range(num_images)])
    freq = np.bincount(labels[labels != 255], minlength=classes) / (labels != 255).sum()
    constant = freq.max() / classes
    uniform = np.mean([(p / classes) / (p + 1 / classes - p / classes) for p in freq])
    matched = np.mean([p * p / (2 * p - p * p) for p in freq])
    return float(max(constant, uniform, matched))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """One short smoke training run with `mim train`, shared by the tests below."""
    cwd = tmp_path_factory.mktemp('smoke_run')
    work_dir = cwd / 'work_dirs' / 'smoke'
    proc = run([MIM, 'train', 'mmseg', str(SMOKE_CONFIG), '--work-dir', str(work_dir), '--cfg-options',
                f'train_cfg.max_iters={TRAIN_ITERS}', f'train_cfg.val_interval={TRAIN_ITERS}',
                f'default_hooks.checkpoint.interval={TRAIN_ITERS // 2}', 'default_hooks.checkpoint.max_keep_ckpts=2',
                f'param_scheduler.1.end={TRAIN_ITERS}'], cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return cwd, work_dir


def test_smoke_training_lowers_the_loss_and_beats_chance(trained):
    _, work_dir = trained
    records = scalars(work_dir)
    losses = [r['train/loss'] for r in records if 'train/loss' in r]
    assert len(losses) >= 4
    assert np.mean(losses[-2:]) < 0.75 * np.mean(losses[:2])
    miou = [r['val/mIoU'] for r in records if 'val/mIoU' in r][-1]
    assert miou > 2 * 100 * chance_miou(), (miou, chance_miou())


def test_smoke_data_is_generated_once_in_the_run_directory(trained):
    cwd, _ = trained
    for split, count in (('train', 64), ('val', 16)):
        folder = cwd / 'prepared' / 'smoke' / split
        assert (folder / 'COMPLETE').is_file()
        assert len(list((folder / 'images').glob('*.png'))) == count


def test_mim_test_evaluates_the_last_checkpoint(trained):
    cwd, work_dir = trained
    checkpoint = work_dir / f'iter_{TRAIN_ITERS}.pth'
    assert checkpoint.is_file()
    proc = run([MIM, 'test', 'mmseg', str(SMOKE_CONFIG), '--checkpoint', str(checkpoint),
                '--work-dir', str(cwd / 'test_run')], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    test_miou = float(re.findall(r'mIoU: ([\d.]+)', proc.stdout + proc.stderr)[-1])
    train_miou = [r['val/mIoU'] for r in scalars(work_dir) if 'val/mIoU' in r][-1]
    assert test_miou == pytest.approx(train_miou, abs=0.01)


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    cwd, work_dir = trained
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    checkpoint = shutil.copy(work_dir / f'iter_{TRAIN_ITERS // 2}.pth', resumed)
    (resumed / 'last_checkpoint').write_text(str(checkpoint))  # what `--resume` picks up
    stop = TRAIN_ITERS // 2 + 4
    proc = run([MIM, 'train', 'mmseg', str(SMOKE_CONFIG), '--work-dir', str(resumed), '--resume',
                '--cfg-options', f'train_cfg.max_iters={stop}', f'train_cfg.val_interval={stop}',
                'default_hooks.logger.interval=1', f'param_scheduler.1.end={TRAIN_ITERS}'], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert f'resumed epoch: 0, iter: {TRAIN_ITERS // 2}' in log
    iters = [int(i) for i in re.findall(r'Iter\(train\) \[\s*(\d+)/', log)]
    assert iters and min(iters) == TRAIN_ITERS // 2 + 1 and max(iters) == stop


def test_train_and_test_runs_are_logged_to_mlflow_with_names_metrics_and_status(trained):
    import mlflow
    cwd, work_dir = trained
    if not (cwd / 'test_run').is_dir():  # the mim test run of test_mim_test_evaluates_the_last_checkpoint
        test_mim_test_evaluates_the_last_checkpoint(trained)
    client = mlflow.MlflowClient(tracking_uri=f'sqlite:///{cwd / "mlflow.db"}')
    experiment = client.get_experiment_by_name('logoseg')
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name LIKE 'logoseg_smoke-%'")
    training = [r for r in runs if 'loss' in r.data.metrics and r.data.params.get('max_iters') == str(TRAIN_ITERS)]
    testing = [r for r in runs if 'test/mIoU' in r.data.metrics]
    assert len(training) == 1 and testing
    run = training[0]
    assert run.info.status == 'FINISHED'
    assert {'loss', 'lr', 'val/mIoU', 'val/hallucination_rate'} <= set(run.data.metrics)
    assert len(run.data.params) < 25 and run.data.params['max_iters'] == str(TRAIN_ITERS)
    assert testing[-1].info.status == 'FINISHED'
    test_miou = testing[-1].data.metrics['test/mIoU']
    assert test_miou == round(test_miou, 2)  # as MMSeg reports it, without float32 noise
    assert 'test/num_images' not in testing[-1].data.metrics  # not in docs/mlflow.md's schema: the log has it
    assert len({r.info.run_name for r in runs}) == len(runs)  # no more one random name for every run


def test_two_process_distributed_training_on_cpu(tmp_path):
    env = dict(OMP_NUM_THREADS='1')
    proc = run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29517',
                str(TRAIN_SCRIPT), str(SMOKE_CONFIG), '--launcher', 'pytorch', '--work-dir',
                str(tmp_path / 'ddp'), '--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
                'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1',
                'train_dataloader.batch_size=2'], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log and re.search(r'GPU number: 2|world_size: 2|World size: 2', log)
    state = torch.load(tmp_path / 'ddp' / 'iter_4.pth', map_location='cpu', weights_only=False)
    assert state['meta']['iter'] == 4


def test_paper_config_without_weights_stops_with_one_line(tmp_path):
    proc = run([sys.executable, str(TRAIN_SCRIPT), str(REPO / 'configs' / 'logoseg_vitb.py'),
                '--work-dir', str(tmp_path)], cwd=tmp_path, env=dict(HF_HUB_OFFLINE='1'), timeout=300)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('logoseg: error:')]
    assert len(errors) == 1 and 'ViT-B-16-quickgelu/openai' in errors[0] and 'model.clip.pretrained' in errors[0]


def test_inference_api_loads_the_checkpoint_vocabulary_and_takes_a_new_one(trained):
    from mmseg.apis import inference_model, init_model
    _, work_dir = trained
    model = init_model(str(SMOKE_CONFIG), str(work_dir / f'iter_{TRAIN_ITERS}.pth'), device='cpu',
                       cfg_options={'model.clip.pretrained': None})
    assert model.vocabulary == ('sky', 'grass', 'sand', 'water', 'brick')  # from the checkpoint's metadata
    model.set_vocabulary(['sky', 'grass', 'water'])
    result = inference_model(model, str(REPO / 'tests' / 'data' / 'voc2012_val' / 'JPEGImages' / 'voc_val_1.jpg'))
    assert result.seg_logits.data.shape == (3, 513, 513)
    assert result.pred_sem_seg.data.max() < 3


def test_paper_config_without_prepared_data_names_the_dvc_stage(tmp_path):
    proc = run([sys.executable, str(TRAIN_SCRIPT), str(REPO / 'configs' / 'logoseg_vitb.py'), '--work-dir',
                str(tmp_path / 'wd'), '--cfg-options', 'model.clip.pretrained=None'], cwd=tmp_path, timeout=300)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('logoseg: error:')]
    assert len(errors) == 1
    assert f'dataset not found at {tmp_path}/prepared/coco_stuff171/train2017' in errors[0]
    assert 'dvc repro prepare_coco_stuff' in errors[0]
