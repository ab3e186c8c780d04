"""Benchmark dataset bases and evaluation configs: they parse, compose with every model config, and
point at the right dataset class, metric and ignore index."""
from pathlib import Path

import logoseg  # noqa: F401  (compat fixes, registrations)
import pytest
from mmengine.config import Config
from mmseg.registry import DATASETS, METRICS

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / 'configs'
# benchmark -> (dataset class, ignore index)
EVAL = {
    'ade847': ('ADE847Dataset', 65535),
    'pc459': ('PascalContext459Dataset', 65535),
    'ade150': ('ADE150Dataset', 255),
    'pc59': ('PascalContext59Dataset', 255),
    'voc20': ('PascalVOC20Dataset', 255),
    'voc20b': ('PascalVOC20bDataset', 255),
}
MODEL_CONFIGS = sorted(p.name for p in CONFIGS.glob('logoseg_*.py'))
CAT_SEG_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(640, 640), keep_ratio=False),
    dict(type='LoadSegAnnotations'),
    dict(type='PackSegInputs'),
]


def load(path: Path) -> Config:
    return Config.fromfile(str(path))


def test_eval_configs_are_the_six_benchmarks_and_one_for_every_declared_dataset():
    assert sorted(p.stem for p in (CONFIGS / 'eval').glob('*.py')) == sorted([*EVAL, 'dataset'])


@pytest.mark.parametrize('benchmark', EVAL)
def test_default_model_is_vitb(benchmark, monkeypatch):
    monkeypatch.delenv('LOGOSEG_MODEL', raising=False)
    cfg = load(CONFIGS / 'eval' / f'{benchmark}.py')
    dataset_type, ignore = EVAL[benchmark]
    assert cfg.model.clip.model_name == 'ViT-B-16-quickgelu'
    assert cfg.model.test_cfg.mode == 'slide_global'
    assert cfg.test_dataloader.batch_size == 1
    assert cfg.test_dataloader.dataset.to_dict() == dict(type=dataset_type, pipeline=CAT_SEG_PIPELINE)
    assert cfg.test_evaluator.to_dict() == dict(type='HallucinationIoUMetric')
    # the metric takes the ignore index of the dataset it is given
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = DATASETS.get(dataset_type).METAINFO
    assert metric.ignore_index == ignore


@pytest.mark.parametrize('model', MODEL_CONFIGS)
@pytest.mark.parametrize('benchmark', EVAL)
def test_every_model_config(benchmark, model, monkeypatch):
    monkeypatch.setenv('LOGOSEG_MODEL', f'../{model}')  # relative to configs/eval
    cfg = load(CONFIGS / 'eval' / f'{benchmark}.py')
    model_cfg = load(CONFIGS / model)
    assert cfg.model == model_cfg.model
    # only the dataset and metric are swapped; the model's own test pipeline stays
    assert cfg.test_dataloader.dataset.to_dict() == dict(
        type=EVAL[benchmark][0], pipeline=model_cfg.test_dataloader.dataset.pipeline)
    assert cfg.test_evaluator.to_dict() == dict(type='HallucinationIoUMetric')
    assert cfg.test_dataloader.sampler == model_cfg.test_dataloader.sampler


def test_absolute_model_path(monkeypatch):
    monkeypatch.setenv('LOGOSEG_MODEL', str(CONFIGS / 'logoseg_smoke.py'))
    cfg = load(CONFIGS / 'eval' / 'ade847.py')
    # the smoke config defines its own test_dataloader: replaced whole, no smoke dataset argument left
    assert set(cfg.test_dataloader.dataset) == {'type', 'pipeline'}
    assert cfg.model.clip.model_name == load(CONFIGS / 'logoseg_smoke.py').model.clip.model_name


@pytest.mark.parametrize('benchmark', EVAL)
def test_benchmark_bases(benchmark):
    cfg = load(CONFIGS / '_base_' / 'datasets' / f'{benchmark}.py')
    assert cfg.test_dataloader.dataset.to_dict() == dict(type=EVAL[benchmark][0], pipeline=CAT_SEG_PIPELINE)
    assert cfg.test_dataloader.batch_size == 1
    assert cfg.test_evaluator.type == 'HallucinationIoUMetric'
    assert 'train_dataloader' not in cfg and 'val_dataloader' not in cfg


@pytest.mark.parametrize('base,dataset_type', [
    ('coco_stuff171', 'COCOStuff171Dataset'),
    ('ade150_train', 'ADE150Dataset'),
    ('pc59_train', 'PascalContext59Dataset'),
])
def test_training_bases(base, dataset_type):
    cfg = load(CONFIGS / '_base_' / 'datasets' / f'{base}.py')
    train = cfg.train_dataloader
    assert train.dataset.type == dataset_type and train.dataset.split == 'train'
    assert train.batch_size == 1  # x 4 GPUs = the paper's total batch of 4
    steps = [step.type for step in train.dataset.pipeline]
    assert steps == ['LoadImageFromFile', 'LoadSegAnnotations', 'RandomResize', 'RandomCrop', 'RandomFlip',
                     'PackSegInputs']
    assert train.dataset.pipeline[3].crop_size == (384, 384) and train.dataset.pipeline[4].prob == 0.5
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.to_dict() == dict(type=dataset_type, pipeline=CAT_SEG_PIPELINE)  # val split
    assert cfg.val_evaluator.type == 'HallucinationIoUMetric'


def test_crop_override_recipe(tmp_path):
    """The override documented in coco_stuff171.py for backbones with another crop."""
    child = tmp_path / 'child.py'
    child.write_text(
        f"_base_ = ['{CONFIGS / '_base_' / 'datasets' / 'coco_stuff171.py'}']\n"
        'crop_size = (336, 336)\n'
        'train_dataloader = dict(dataset=dict(pipeline=[\n'
        "    dict(step, crop_size=crop_size) if step.type == 'RandomCrop' else step\n"
        '    for step in _base_.train_pipeline]))\n')
    cfg = load(child)
    assert cfg.train_dataloader.dataset.pipeline[3].to_dict() == dict(type='RandomCrop', crop_size=(336, 336))
    assert cfg.train_pipeline[3].crop_size == (384, 384)  # the base is not modified
