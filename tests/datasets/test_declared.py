"""DeclaredDataset: one class and one eval config for any prepared dataset of the user's, read from its manifest."""
from __future__ import annotations

import os

import numpy as np
import pytest
import yaml
from mmengine.config import Config

from logoseg.datasets import DatasetNotFoundError, DeclaredDataset
from logoseg.datasets.smoke import SMOKE_CLASSES
from logoseg.tools.prepare import declared
from logoseg.tools.prepare import standin_dataset as standin
from logoseg.utils.errors import LoGoSegUserError

from ..conftest import REPO

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadSegAnnotations'), dict(type='PackSegInputs')]


@pytest.fixture
def prepared(prepared_standin):
    return prepared_standin


def test_every_split_reads_its_images_and_trainid_labels_with_the_class_file_as_vocabulary(prepared):
    for split, count in standin.COUNTS.items():
        dataset = DeclaredDataset('standin', split, prepared_root=str(prepared), pipeline=PIPELINE)
        assert len(dataset) == count
        assert dataset.metainfo['classes'] == tuple(standin.CLASS_LINES)  # synonyms kept: the first is prompted
        assert dataset.metainfo['ignore_index'] == dataset.ignore_index == 255 and dataset.BENCHMARK == 'standin'
        sample = dataset[0]
        labels = sample['data_samples'].gt_sem_seg.data.numpy()
        assert sample['inputs'].shape[1:] == labels.shape[1:]
        assert set(np.unique(labels)) <= {*range(len(SMOKE_CLASSES)), 255}
    assert len(DeclaredDataset('standin', prepared_root=str(prepared), pipeline=PIPELINE)) == standin.COUNTS['val']


def test_the_test_split_had_its_zero_label_reduced_at_preparation(prepared):
    dataset = DeclaredDataset('standin', 'test', prepared_root=str(prepared), pipeline=PIPELINE)
    assert dataset.reduce_zero_label is False  # applied once, by the preparation
    _, scene_labels = standin.scene('test', 0)  # written as 0 = ignore, v = class v - 1
    np.testing.assert_array_equal(dataset[0]['data_samples'].gt_sem_seg.data.numpy()[0], scene_labels)


def test_bad_names_and_splits_are_one_line(prepared, tmp_path):
    with pytest.raises(LoGoSegUserError, match='no dataset name given: set LOGOSEG_DATASET'):
        DeclaredDataset('-', prepared_root=str(prepared))
    with pytest.raises(DatasetNotFoundError, match=r"'mine' is not prepared .* `dvc repro prepare_dataset@mine`"):
        DeclaredDataset('mine', prepared_root=str(prepared))
    with pytest.raises(LoGoSegUserError, match="dataset 'standin' has no split 'training'; choose one of test, train,"):
        DeclaredDataset('standin', 'training', prepared_root=str(prepared))
    with pytest.raises(LoGoSegUserError, match="dataset name 'My Data'"):
        DeclaredDataset('My Data', prepared_root=str(prepared))


def test_the_eval_config_selects_the_dataset_by_name(prepared, monkeypatch):
    monkeypatch.setenv('LOGOSEG_MODEL', str(REPO / 'configs' / 'smoke' / 'logoseg_vitb.py'))
    monkeypatch.setenv('LOGOSEG_DATASET', 'standin')
    monkeypatch.delenv('LOGOSEG_SPLIT', raising=False)
    cfg = Config.fromfile(str(REPO / 'configs' / 'eval' / 'dataset.py'))
    dataset_cfg = cfg.test_dataloader.dataset
    assert dataset_cfg.type == 'DeclaredDataset' and dataset_cfg.name == 'standin'
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(dict(dataset_cfg, prepared_root=str(prepared)))
    assert dataset.split_name == 'val' and len(dataset) == standin.COUNTS['val']
    monkeypatch.setenv('LOGOSEG_SPLIT', 'test')
    cfg = Config.fromfile(str(REPO / 'configs' / 'eval' / 'dataset.py'))
    assert len(DATASETS.build(dict(cfg.test_dataloader.dataset, prepared_root=str(prepared)))) == 8
    assert os.environ['LOGOSEG_DATASET'] == 'standin'


def test_params_yaml_declares_the_stand_in_as_the_generator_writes_it(tmp_path):
    params = yaml.safe_load((REPO / 'params.yaml').read_text())['datasets']['standin']
    ours = declared.parse_declaration('standin', params, tmp_path)
    theirs = declared.parse_declaration('standin', standin.DECLARATION, tmp_path)
    assert ours == theirs
