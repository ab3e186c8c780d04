"""Benchmark dataset classes on tiny prepared trees built from the real samples (prepared_fixtures)."""
import os.path as osp
import shutil

import logoseg  # noqa: F401  (compat fixes, registrations)
import numpy as np
import pytest
from mmseg.registry import DATASETS

from logoseg.datasets import (ADE150Dataset, ADE847Dataset, COCOStuff171Dataset, DatasetNotFoundError,
                              PascalContext59Dataset, PascalContext459Dataset, PascalVOC20bDataset,
                              PascalVOC20Dataset)
from logoseg.utils.errors import LoGoSegUserError
from logoseg.datasets.benchmarks import DATA_ROOT_HINT
from logoseg.utils.vocab import load_vocabulary

from tests.datasets.prepared_fixtures import build_all

# class, fixture name, number of scored classes, ignore index, label folder of the val split
CASES = [
    (COCOStuff171Dataset, 'coco_stuff171', 171, 255, 'prepared/coco_stuff171/val2017'),
    (ADE150Dataset, 'ade150', 150, 255, 'prepared/ade150/validation'),
    (ADE847Dataset, 'ade847', 847, 65535, 'prepared/ade847/annotations'),
    (PascalContext59Dataset, 'pc59', 59, 255, 'prepared/pc59/val'),
    (PascalContext459Dataset, 'pc459', 459, 65535, 'prepared/pc459/val'),
    (PascalVOC20Dataset, 'voc20', 20, 255, 'prepared/voc20/val'),
    (PascalVOC20bDataset, 'voc20b', 21, 255, 'prepared/voc20b/val'),
]
IDS = pytest.mark.parametrize('cls,name,num_classes,ignore,label_dir', CASES, ids=[c[1] for c in CASES])
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadSegAnnotations')]


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp('benchmarks')
    return root, build_all(root)


@IDS
def test_loads_prepared_fixture(prepared, cls, name, num_classes, ignore, label_dir):
    root, labels = prepared
    dataset = cls(data_root=str(root), pipeline=LOAD, test_mode=True)
    expected = labels[name]
    assert len(dataset) == len(expected)  # PASCAL's unlabelled.jpg is not listed
    for index, image_id in enumerate(sorted(expected)):
        sample = dataset[index]
        assert osp.basename(sample['img_path']).startswith(image_id)
        assert sample['img'].shape[:2] == expected[image_id].shape
        np.testing.assert_array_equal(sample['gt_seg_map'], expected[image_id])


@IDS
def test_metainfo(cls, name, num_classes, ignore, label_dir):
    meta = cls.METAINFO
    assert len(meta['classes']) == num_classes
    assert meta['ignore_index'] == ignore
    if 'palette' in meta:  # borrowed from MMSeg's class of the same dataset (A-847 / PC-459 have none)
        assert len(meta['palette']) == num_classes


def test_metainfo_vocabularies():
    assert ADE847Dataset.METAINFO['classes'] == load_vocabulary('ade847')
    assert PascalContext459Dataset.METAINFO['classes'] == load_vocabulary('pc459')
    assert COCOStuff171Dataset.METAINFO['classes'] == load_vocabulary('coco')


def test_pas20b_prompts_59_scores_21():
    meta = PascalVOC20bDataset.METAINFO
    assert meta['classes'] == load_vocabulary('voc20') + ('background', )
    assert len(meta['prompt_classes']) == 59 and meta['prompt_classes'] == load_vocabulary('voc20b')
    assert meta['background_index'] == 20 and meta['classes'][20] == 'background'
    # the model's merge (prompt index >= 20 -> 20) relies on the 20 VOC names leading the prompt list
    assert meta['prompt_classes'][:20] == meta['classes'][:20]
    assert 'prompt_classes' not in PascalVOC20Dataset.METAINFO


def test_instance_metainfo_and_ignore_index(prepared):
    root, _ = prepared
    dataset = DATASETS.build(dict(type='ADE847Dataset', data_root=str(root)))
    assert dataset.ignore_index == 65535 and dataset.metainfo['ignore_index'] == 65535
    dataset = DATASETS.build(dict(type='PascalVOC20bDataset', data_root=str(root)))
    assert dataset.metainfo['background_index'] == 20 and len(dataset.metainfo['prompt_classes']) == 59


def test_16bit_values_survive(prepared):
    root, labels = prepared
    dataset = PascalContext459Dataset(data_root=str(root), pipeline=LOAD)
    maps = [dataset[i]['gt_seg_map'] for i in range(len(dataset))]
    assert max(int(m[m != 65535].max()) for m in maps) > 255  # 'sheep' is PC-459 class 346
    assert all((m == 65535).any() for m in maps)


@pytest.mark.parametrize('cls,split,folder', [
    (COCOStuff171Dataset, 'train', 'prepared/coco_stuff171/train2017'),
    (ADE150Dataset, 'train', 'prepared/ade150/training'),
    (PascalContext59Dataset, 'train', 'prepared/pc59/train'),
])
def test_training_splits(prepared, cls, split, folder):
    root, _ = prepared
    dataset = cls(split=split, data_root=str(root))
    assert len(dataset) == 3
    assert all(info['seg_map_path'].startswith(osp.join(str(root), folder)) for info in dataset.data_list)


@IDS
def test_missing_directory_one_line_error(tmp_path, cls, name, num_classes, ignore, label_dir):
    stage = {'coco_stuff171': 'prepare_coco_stuff'}.get(name, f'prepare_{name}')  # dvc.yaml's stage names
    expected = (f'dataset not found at {tmp_path / label_dir}; prepare it with `dvc repro {stage}` '
                '(docs/datasets.md)' + DATA_ROOT_HINT)
    assert '--cfg-options test_dataloader.dataset.data_root=DIR' in DATA_ROOT_HINT  # where data lives elsewhere
    with pytest.raises(DatasetNotFoundError) as err:
        cls(data_root=str(tmp_path))
    assert str(err.value) == expected and isinstance(err.value, LoGoSegUserError)
    # built through the registry, mmengine re-raises it as type(e)(prefix + message): still one line
    with pytest.raises(DatasetNotFoundError) as err:
        DATASETS.build(dict(type=cls.__name__, data_root=str(tmp_path)))
    assert str(err.value).endswith(expected) and '\n' not in str(err.value)


def test_missing_image_directory(prepared, tmp_path):
    root, _ = prepared
    shutil.copytree(root / 'prepared' / 'ade150', tmp_path / 'prepared' / 'ade150')
    with pytest.raises(LoGoSegUserError, match='dataset not found at .*images/validation; '):
        ADE150Dataset(data_root=str(tmp_path))


def test_empty_label_directory(prepared, tmp_path):
    root, _ = prepared
    (tmp_path / 'prepared' / 'voc20' / 'val').mkdir(parents=True)
    shutil.copytree(root / 'data' / 'VOCdevkit', tmp_path / 'data' / 'VOCdevkit')
    with pytest.raises(LoGoSegUserError, match=r'no \*\.png label maps in .*; prepare them with `dvc repro'):
        PascalVOC20Dataset(data_root=str(tmp_path))


def test_unknown_split():
    with pytest.raises(LoGoSegUserError, match="has no split 'train'; choose one of val"):
        ADE847Dataset(split='train')


def test_16bit_dataset_refuses_uint8_loader(prepared):
    root, _ = prepared
    with pytest.raises(LoGoSegUserError, match='use LoadSegAnnotations'):
        ADE847Dataset(data_root=str(root), pipeline=[dict(type='LoadAnnotations')])
    ADE150Dataset(data_root=str(root), pipeline=[dict(type='LoadAnnotations')])  # 8-bit: the stock one is fine
