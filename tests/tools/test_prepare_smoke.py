"""The smoke stand-ins: each benchmark in its own format, read by the real dataset classes, deterministic."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
from PIL import Image

from logoseg.datasets.smoke import APPEARANCE, render_scene
from logoseg.tools.prepare import common, smoke
from logoseg.utils.vocab import first_synonym, load_vocabulary

# (dataset class, split, label folder, suffix, dtype, ignore, vocabulary of the label ids)
BENCHMARKS = {
    'coco_train': ('COCOStuff171Dataset', 'train', 'prepared/coco_stuff171/train2017', '.png', np.uint8, 255,
                   'coco'),
    'coco_val': ('COCOStuff171Dataset', 'val', 'prepared/coco_stuff171/val2017', '.png', np.uint8, 255, 'coco'),
    'ade150_train': ('ADE150Dataset', 'train', 'prepared/ade150/training', '.png', np.uint8, 255, 'ade150'),
    'pc59_train': ('PascalContext59Dataset', 'train', 'prepared/pc59/train', '.png', np.uint8, 255, 'pc59'),
    'ade847': ('ADE847Dataset', 'val', 'prepared/ade847/annotations', '.tif', np.uint16, 65535, 'ade847'),
    'pc459': ('PascalContext459Dataset', 'val', 'prepared/pc459/val', '.tif', np.uint16, 65535, 'pc459'),
    'ade150': ('ADE150Dataset', 'val', 'prepared/ade150/validation', '.png', np.uint8, 255, 'ade150'),
    'pc59': ('PascalContext59Dataset', 'val', 'prepared/pc59/val', '.png', np.uint8, 255, 'pc59'),
    'voc20': ('PascalVOC20Dataset', 'val', 'prepared/voc20/val', '.png', np.uint8, 255, 'voc20'),
    'voc20b': ('PascalVOC20bDataset', 'val', 'prepared/voc20b/val', '.png', np.uint8, 255, 'voc20'),
}
TRAIN, VAL = 3, 2


@pytest.fixture(scope='module')
def standins(tmp_path_factory):
    out = tmp_path_factory.mktemp('standins') / 'smoke_standins'
    assert smoke.main(['--out', str(out), '--train-images', str(TRAIN), '--val-images', str(VAL)]) == 0
    return out


def read(path):
    return tifffile.imread(path) if path.suffix == '.tif' else np.asarray(Image.open(path))


def names(label, vocabulary, ignore, background=None):
    """Per-pixel first-synonym class names (None for ignore, 'background' for PAS-20b's class 20)."""
    vocab = [first_synonym(n) for n in load_vocabulary(vocabulary)]
    return np.array([None if v == ignore else 'background' if v == background else vocab[v]
                     for v in label.ravel()], dtype=object).reshape(label.shape)


@pytest.mark.parametrize('key', BENCHMARKS)
def test_each_benchmark_is_written_in_its_format(standins, key):
    _, split, folder, suffix, dtype, ignore, vocabulary = BENCHMARKS[key]
    files = sorted((standins / folder).iterdir())
    assert len(files) == (TRAIN if split == 'train' else VAL) and all(f.suffix == suffix for f in files)
    num_classes = len(load_vocabulary(vocabulary)) + (key == 'voc20b')
    for path in files:
        label = read(path)
        assert label.dtype == dtype and label.ndim == 2
        values = set(np.unique(label).tolist())
        assert ignore in values  # the border around each shape
        assert values - {ignore} and max(values - {ignore}) < num_classes


def test_the_same_scene_is_labelled_by_name_in_each_vocabulary(standins):
    """A-150 / A-847 and PC-59 / PC-459 label the same scenes; every pixel names the same concept."""
    for (a, b) in (('ade150', 'ade847'), ('pc59', 'pc459')):
        for path_a, path_b in zip(sorted((standins / BENCHMARKS[a][2]).iterdir()),
                                  sorted((standins / BENCHMARKS[b][2]).iterdir())):
            assert path_a.stem == path_b.stem
            label_a, label_b = read(path_a), read(path_b)
            assert np.array_equal(label_a == 255, label_b == 65535)
            assert np.array_equal(names(label_a, a, 255), names(label_b, b, 65535))


def test_pas20_ignores_and_pas20b_scores_the_background(standins):
    backgrounds = 0
    for path in sorted((standins / 'prepared/voc20/val').iterdir()):
        voc20 = read(path)
        voc20b = read(standins / 'prepared/voc20b/val' / path.name)
        scene_seed = smoke.SCENE_SETS[-1].seed + int(path.stem.rsplit('_', 1)[1])
        domain = smoke.DOMAINS['voc']
        concepts = np.asarray(domain.classes + ('', ) * (256 - len(domain.classes)), dtype=object)
        scene = smoke.render(domain, scene_seed, smoke.SIZES['val'])[1]
        border = scene == 255
        non_voc = np.isin(concepts[scene], smoke.STUFF + smoke.OTHER_THINGS) & ~border
        assert (~non_voc & ~border).any()  # a VOC object in every scene
        backgrounds += int(non_voc.sum())
        assert (voc20[non_voc] == 255).all() and (voc20b[non_voc] == 20).all()
        assert (voc20[border] == 255).all() and (voc20b[border] == 255).all()
        objects = ~non_voc & ~border
        assert np.array_equal(voc20[objects], voc20b[objects]) and (voc20[objects] < 20).all()
        assert np.array_equal(names(voc20[objects], 'voc20', 255).astype(str), concepts[scene[objects]].astype(str))
    assert backgrounds > 0


def test_the_renderer_draws_every_concept_from_the_appearance_table():
    for seed in range(3):
        image, label = render_scene(seed, 48, 255, smoke.CONCEPTS)
        for index in np.unique(label[label != 255]):
            colour = np.asarray(APPEARANCE[smoke.CONCEPTS[index]][0], dtype=np.float64)
            assert np.abs(image[label == index].mean(axis=0) - colour).max() < 20  # textures keep the mean


@pytest.mark.parametrize('key', BENCHMARKS)
def test_every_real_dataset_class_loads_its_standin(standins, key):
    dataset_type, split, *_ = BENCHMARKS[key]
    init_default_scope('mmseg')
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadSegAnnotations')]
    dataset = DATASETS.build(dict(type=dataset_type, split=split, data_root=str(standins), pipeline=pipeline))
    assert len(dataset) == (TRAIN if split == 'train' else VAL)
    sample = dataset[0]
    assert sample['img'].shape[:2] == sample['gt_seg_map'].shape
    values = np.unique(sample['gt_seg_map'])
    ignore = dataset.metainfo['ignore_index']
    assert ((values < len(dataset.metainfo['classes'])) | (values == ignore)).all() and ignore in values


def test_table5_training_sets_show_other_concepts_than_coco(standins):
    def concepts(folder, vocabulary):
        labels = np.concatenate([read(p).ravel() for p in sorted((standins / folder).iterdir())])
        vocab = [first_synonym(n) for n in load_vocabulary(vocabulary)]
        return {vocab[v] for v in np.unique(labels) if v != 255}

    coco = concepts(BENCHMARKS['coco_train'][2], 'coco')
    pc59 = concepts(BENCHMARKS['pc59_train'][2], 'pc59')
    ade150 = concepts(BENCHMARKS['ade150_train'][2], 'ade150')
    assert pc59 <= set(smoke.DOMAINS['pascal_context'].classes) and not pc59 & set(smoke.OTHER_THINGS)
    assert ade150 <= set(smoke.DOMAINS['ade'].classes) and not ade150 & {'bicycle', 'boat', 'bottle', 'bus'}
    assert coco <= set(smoke.CONCEPTS) and len(coco) > len(pc59)


def test_concepts_are_named_alike_in_every_vocabulary():
    for fmt in smoke.FORMATS.values():
        vocab = [first_synonym(n) for n in load_vocabulary(fmt.vocabulary)]
        named = smoke.CONCEPTS if fmt.unnamed == 'error' else smoke.VOC_OBJECTS
        assert all(vocab.count(c) == 1 for c in named)


def test_rerun_is_a_no_op_and_the_marker_versions_the_content(standins, tmp_path):
    marker = json.loads((standins / common.MARKER).read_text())
    assert marker['content_sha256'] == common.content_digest(standins)
    before = {p: p.stat().st_mtime_ns for p in standins.rglob('*')}
    assert smoke.prepare(standins, TRAIN, VAL) is False
    assert {p: p.stat().st_mtime_ns for p in standins.rglob('*')} == before
    again = tmp_path / 'again'
    assert smoke.prepare(again, TRAIN, VAL) is True  # deterministic: the same bytes elsewhere
    assert json.loads((again / common.MARKER).read_text())['content_sha256'] == marker['content_sha256']
    label = next((again / 'prepared/pc59/val').iterdir())
    label.write_bytes(label.read_bytes()[:-1] + b'\0')
    assert common.content_digest(again) != marker['content_sha256']


def test_an_interrupted_run_leaves_no_output(tmp_path, monkeypatch):
    calls = []
    original = smoke.scenes.render_scene

    def crash_on_fifth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(smoke.scenes, 'render_scene', crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        smoke.prepare(tmp_path / 'out', 1, 1)
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_a_bad_count(tmp_path, capsys):
    with pytest.raises(SystemExit):
        smoke.main(['--out', str(tmp_path / 'x'), '--val-images', '0'])
    assert 'must be >= 1' in capsys.readouterr().err
