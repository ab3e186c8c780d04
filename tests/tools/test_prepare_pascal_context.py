"""PC-59 (trainval_merged.json RLE masks) and PC-459 (trainval/<id>.mat LabelMap) preparation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import tifffile
from PIL import Image

from logoseg.tools.prepare import pc59, pc459
from logoseg.utils.errors import LoGoSegUserError

from .prepare_fixtures import PC59_IMAGES, VOCAB, make_pc59, make_pc459, write_ids

PC59_NAMES = json.loads((VOCAB / 'pc59.json').read_text())
PC459_NAMES = json.loads((VOCAB / 'pc459.json').read_text())
ALIAS = {'table': 'diningtable'}  # the one PC-59 name that differs from its PASCAL-Context name


def pc59_train_id(category: int) -> int:
    """By name: PASCAL-Context id c names pc459[c - 1]; its PC-59 index, 255 for background and other classes."""
    if category == 0:
        return 255
    name = PC459_NAMES[category - 1]
    name = ALIAS.get(name, name)
    return PC59_NAMES.index(name) if name in PC59_NAMES else 255


def test_pc59_ids_are_the_59_classes_by_name():
    assert [pc59_train_id(c) for c in pc59.PC59_IDS[1:]] == list(range(59))
    assert sum(pc59_train_id(c) != 255 for c in range(460)) == 59


def test_pc59_paints_rle_masks_and_maps_by_name(tmp_path):
    raw, masks_of = make_pc59(tmp_path / 'data')
    ids = write_ids(tmp_path / 'ids.txt', ['2008_000002', '2008_000003'])
    out = tmp_path / 'prepared' / 'pc59'
    assert pc59.main(['--raw', str(raw), '--out', str(out), '--ids', str(ids), '--workers', '2']) == 0

    assert sorted(str(p.relative_to(out)) for p in out.rglob('*.png')) == [
        'train/2008_000008.png', 'val/2008_000002.png', 'val/2008_000003.png']
    for split, stem in (('val', '2008_000002'), ('val', '2008_000003'), ('train', '2008_000008')):
        _, height, width = PC59_IMAGES[stem]
        categories = np.zeros((height, width), np.int64)  # unannotated pixels are background
        for category, mask in masks_of[stem]:
            categories[mask] = category  # later annotations over earlier ones
        expected = np.vectorize(pc59_train_id)(categories)
        with Image.open(out / split / f'{stem}.png') as image:
            assert image.mode == 'L'
            label = np.asarray(image)
        np.testing.assert_array_equal(label, expected)
        assert {pc59_train_id(2), pc59_train_id(397)} <= set(np.unique(label)) <= set(range(59)) | {255}
    assert PC59_NAMES[pc59_train_id(397)] == 'diningtable'


def test_pc59_val_only_and_missing_id(tmp_path):
    raw, _ = make_pc59(tmp_path / 'data')
    ids = write_ids(tmp_path / 'ids.txt', ['2008_000003'])
    assert pc59.main(['--raw', str(raw), '--out', str(tmp_path / 'a'), '--ids', str(ids), '--splits', 'val']) == 0
    assert [p.name for p in (tmp_path / 'a' / 'val').iterdir()] == ['2008_000003.png']
    with pytest.raises(LoGoSegUserError, match='lists no image 2010_000001'):
        pc59.prepare(raw, tmp_path / 'b', ids_file=write_ids(tmp_path / 'bad.txt', ['2010_000001']))


def test_pc459_label_map_minus_one_without_wraparound(tmp_path):
    rng = np.random.default_rng(3)
    maps = {'2008_000002': rng.integers(0, 460, (30, 40)), '2008_000003': rng.integers(0, 460, (25, 20))}
    maps['2008_000002'][:3, :3] = 0
    maps['2008_000003'][0, :4] = [1, 256, 300, 459]
    raw = make_pc459(tmp_path / 'data', maps)
    assert scipy.io.loadmat(raw / 'trainval' / '2008_000002.mat')['LabelMap'].dtype == np.uint16
    ids = write_ids(tmp_path / 'ids.txt', list(maps))
    out = tmp_path / 'prepared' / 'pc459'
    assert pc459.main(['--raw', str(raw), '--out', str(out), '--ids', str(ids), '--workers', '1']) == 0

    assert sorted(p.name for p in (out / 'val').iterdir()) == ['2008_000002.tif', '2008_000003.tif']
    for stem, label_map in maps.items():
        label = tifffile.imread(out / 'val' / f'{stem}.tif')
        assert label.dtype == np.uint16
        np.testing.assert_array_equal(label, np.where(label_map == 0, 65535, label_map - 1))
        np.testing.assert_array_equal(np.asarray(Image.open(out / 'val' / f'{stem}.tif')), label)
    assert tifffile.imread(out / 'val' / '2008_000003.tif')[0, :4].tolist() == [0, 255, 299, 458]
    assert PC459_NAMES[458] == 'wool' and PC459_NAMES[457] == 'wood'  # LabelMap 459 is the last class


def test_pc459_rejects_values_above_459(tmp_path):
    raw = make_pc459(tmp_path / 'data', {'2008_000002': np.full((4, 4), 460)})
    ids = write_ids(tmp_path / 'ids.txt', ['2008_000002'])
    with pytest.raises(LoGoSegUserError, match=r'2008_000002\.mat: unexpected label values \[460\]'):
        pc459.prepare(raw, tmp_path / 'out', ids_file=ids)


def test_shipped_val_ids():
    ids = pc459.val_ids()
    assert len(ids) == len(set(ids)) == 5104 and ids[0] == '2008_000002'
