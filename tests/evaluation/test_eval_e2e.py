"""`mim test` equivalent: configs/eval/ade150.py with the smoke model, run by mmengine's Runner."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from logoseg.datasets.benchmarks import DATA_ROOT_HINT
from logoseg.tools.evaluate_all import evaluate_all
from logoseg.utils.errors import LoGoSegUserError

from .conftest import SMOKE, SMOKE_TEST_PIPELINE

EVAL = Path(__file__).resolve().parents[2] / 'configs' / 'eval'
KEYS = ('mIoU', 'aAcc', 'mAcc', 'hallucination_rate', 'hallucinated_classes')
LOCAL_ONLY = {'visualizer.vis_backends': [dict(type='LocalVisBackend')]}  # no MLflow run per test


def test_runner_test_on_ade150(prepared_root, smoke_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv('LOGOSEG_MODEL', '../logoseg_smoke.py')
    cfg = Config.fromfile(str(EVAL / 'ade150.py'))
    cfg.merge_from_dict({'test_dataloader.dataset.data_root': str(prepared_root), **LOCAL_ONLY})
    cfg.load_from, cfg.work_dir = smoke_checkpoint, str(tmp_path)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert set(KEYS) <= set(metrics)

    # the same figures from the model's own predictions, by formula (VocabularyHook set 150 classes)
    model = runner.model
    assert len(model.vocabulary) == 150
    confusion = np.zeros((150, 150), dtype=np.int64)
    hallucinated = []
    with torch.no_grad():
        for batch in runner.test_dataloader:
            for sample in model.test_step(batch):
                gt = sample.gt_sem_seg.data.squeeze(0).numpy()
                pred = sample.pred_sem_seg.data.squeeze(0).numpy()
                valid = gt != 255
                image = np.bincount(gt[valid] * 150 + pred[valid], minlength=150 * 150).reshape(150, 150)
                confusion += image
                share = image.sum(0) / valid.sum()
                hallucinated.append(int(((share > 0.001) & (image.sum(1) == 0)).sum()))
    diag = np.diag(confusion)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = diag / (confusion.sum(0) + confusion.sum(1) - diag)
    assert metrics['mIoU'] == pytest.approx(round(100 * np.nanmean(iou), 2), abs=0.011)
    assert metrics['aAcc'] == pytest.approx(round(100 * diag.sum() / confusion.sum(), 2), abs=0.011)
    assert metrics['hallucinated_classes'] == pytest.approx(np.mean(hallucinated), abs=1e-4)
    assert metrics['hallucination_rate'] == pytest.approx(np.mean(np.array(hallucinated) > 0), abs=1e-4)


def test_missing_data_stops_before_any_run(smoke_checkpoint, tmp_path):
    out = tmp_path / 'metrics.json'
    with pytest.raises(LoGoSegUserError) as err:
        evaluate_all(SMOKE, smoke_checkpoint, str(out), ('ade150', 'ade847'),
                     work_dir=str(tmp_path), cfg_options={'test_dataloader.dataset.data_root': str(tmp_path)})
    assert str(err.value).endswith(
        f'dataset not found at {tmp_path}/prepared/ade150/validation; '
        'prepare it with `dvc repro prepare_ade150` (docs/datasets.md)' + DATA_ROOT_HINT)
    assert not out.exists()


def test_skip_missing_records_it(prepared_root, smoke_checkpoint, tmp_path):
    # a root holding only PAS-20 / PAS-20b: A-150 is missing there
    root = tmp_path / 'root'
    for folder in ('data/VOCdevkit', 'prepared/voc20'):
        (root / folder).parent.mkdir(parents=True, exist_ok=True)
        (root / folder).symlink_to(prepared_root / folder)
    out = tmp_path / 'metrics.json'
    options = {'test_dataloader.dataset.data_root': str(root),
               'test_dataloader.dataset.pipeline': SMOKE_TEST_PIPELINE, **LOCAL_ONLY}
    results = evaluate_all(SMOKE, smoke_checkpoint, str(out), ('ade150', 'voc20'),
                           work_dir=str(tmp_path), cfg_options=options, skip_missing=True)
    assert list(results) == ['ade150', 'voc20']
    assert results['ade150'] == {'missing': f'dataset not found at {root}/prepared/ade150/validation; prepare '
                                            'it with `dvc repro prepare_ade150` (docs/datasets.md)' + DATA_ROOT_HINT}
    assert set(results['voc20']) == set(KEYS) | {'num_images'} and results['voc20']['num_images'] == 3


def test_missing_checkpoint(tmp_path):
    with pytest.raises(LoGoSegUserError, match='checkpoint not found at'):
        evaluate_all(SMOKE, str(tmp_path / 'none.pth'), str(tmp_path / 'm.json'))
