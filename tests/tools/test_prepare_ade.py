"""A-150 (real ADEChallengeData2016 samples) and A-847 (ADE20K_2021_17_01 format) preparation."""
from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from logoseg.tools.prepare import ade150, ade847
from logoseg.utils.errors import LoGoSegUserError

from .prepare_fixtures import ADE847_VAL, SAMPLES, VOCAB, make_ade150, make_ade847, tree


def test_ade150_maps_every_pixel_v_minus_1_and_0_to_255(tmp_path):
    raw = make_ade150(tmp_path / 'data')
    out = tmp_path / 'prepared' / 'ade150'
    assert ade150.main(['--raw', str(raw), '--out', str(out), '--workers', '1']) == 0

    names = json.loads((VOCAB / 'ade150.json').read_text())
    for split, prefix in (('validation', 'ADE_val_'), ('training', 'ADE_train_')):
        produced = sorted(p.name for p in (out / split).iterdir())
        assert produced == [f'{prefix}0000000{i}.png' for i in (1, 2, 3)]
        for sample in sorted((SAMPLES / 'ade20k_val' / 'annotations').glob('*.png')):
            raw_label = np.asarray(Image.open(sample)).astype(np.int64)
            with Image.open(out / split / sample.name.replace('ADE_val_', prefix)) as image:
                assert image.mode == 'L'
                label = np.asarray(image)
            assert label.dtype == np.uint8 and label.shape == raw_label.shape
            expected = np.where(raw_label == 0, 255, raw_label - 1)
            np.testing.assert_array_equal(label, expected)
            assert set(np.unique(label)) <= set(range(150)) | {255}
    # value 1 is 'wall' in the A-150 vocabulary; it becomes class 0
    assert names[0] == 'wall'


def test_ade150_rejects_values_outside_the_format(tmp_path):
    raw = make_ade150(tmp_path / 'data')
    bad = raw / 'annotations' / 'validation' / 'ADE_val_00000002.png'
    label = np.asarray(Image.open(bad)).copy()
    label[0, 0] = 151
    Image.fromarray(label).save(bad)
    with pytest.raises(LoGoSegUserError, match=r'ADE_val_00000002\.png: unexpected label values \[151\]'):
        ade150.prepare(raw, tmp_path / 'out', splits=['validation'])
    assert not (tmp_path / 'out').exists()


def ade847_classes() -> tuple[np.ndarray, dict[int, int]]:
    """A class pool with A-847 classes whose trainId is > 255, a few < 256, and ids outside A-847."""
    categories = json.loads((VOCAB / 'ade847_categories.json').read_text())
    train_id = {c['id']: c['trainId'] for c in categories}
    high = [c['id'] for c in categories if c['trainId'] > 700][:6]
    low = [c['id'] for c in categories if c['trainId'] < 5]
    absent = [i for i in (0, 1, 4000, 6000) if i not in train_id]
    assert len(absent) >= 3 and all(train_id[i] > 255 for i in high)
    return np.array(high + low + absent), train_id


def test_ade847_labels_resize_and_uint16(tmp_path):
    pool, train_id = ade847_classes()
    raw, classes_of = make_ade847(tmp_path / 'data', pool)
    out = tmp_path / 'prepared' / 'ade847'
    assert ade847.main(['--raw', str(raw), '--out', str(out), '--workers', '2']) == 0

    assert sorted(p.name for p in (out / 'images').iterdir()) == [f'{n}.jpg' for n in ADE847_VAL]
    assert sorted(p.name for p in (out / 'annotations').iterdir()) == [f'{n}.tif' for n in ADE847_VAL]
    for name, (scene, height, width) in ADE847_VAL.items():
        # expected label written out directly: trainId of each class index, 65535 for the others
        full = np.vectorize(lambda i: train_id.get(int(i), 65535))(classes_of[name]).astype(np.uint16)
        short = min(height, width)
        if short > 512:
            new_h = 512 if height <= width else round(height / width * 512)
            new_w = 512 if width <= height else round(width / height * 512)
            expected = cv2.resize(full, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
        else:
            new_h, new_w, expected = height, width, full
        label = tifffile.imread(out / 'annotations' / f'{name}.tif')
        assert label.dtype == np.uint16 and label.shape == (new_h, new_w)
        assert short <= 512 or min(new_h, new_w) == 512
        np.testing.assert_array_equal(label, expected)
        assert (label > 255).any() and (label == 65535).any()
        assert set(np.unique(label)) <= set(range(847)) | {65535}
        # the PIL view of the same file (what a uint16-preserving loader sees)
        np.testing.assert_array_equal(np.asarray(Image.open(out / 'annotations' / f'{name}.tif')), expected)
        with Image.open(out / 'images' / f'{name}.jpg') as image:
            assert image.format == 'JPEG' and image.size == (new_w, new_h)
        # the image bytes the reference preparation (CAT-Seg / SED prepare_ade20k_full.py) writes: decode with
        # PIL, resize with OpenCV INTER_LINEAR if needed, save with PIL's defaults (JPEG quality 75)
        pixels = np.asarray(Image.open(raw / 'images' / 'ADE' / 'validation' / scene / f'{name}.jpg'))
        if short > 512:
            pixels = cv2.resize(pixels, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        reference = io.BytesIO()
        Image.fromarray(pixels).save(reference, format='JPEG')
        assert (out / 'images' / f'{name}.jpg').read_bytes() == reference.getvalue()
    assert tuple(tifffile.imread(out / 'annotations' / 'ADE_val_00000002.tif').shape) == (591, 512)
    assert tuple(tifffile.imread(out / 'annotations' / 'ADE_val_00000003.tif').shape) == (512, 699)


def test_ade847_resize_rule():
    assert ade847.resized_shape(512, 900, 512) is None
    assert ade847.resized_shape(300, 2000, 512) is None
    assert ade847.resized_shape(513, 700, 512) == (512, round(700 / 513 * 512))
    assert ade847.resized_shape(1000, 600, 512) == (853, 512)  # 853.33 rounds down
    assert ade847.resized_shape(768, 1024, 512) == (512, 683)  # 682.67 rounds up


def test_ade847_serial_equals_parallel_and_short_side_param(tmp_path):
    pool, _ = ade847_classes()
    raw, _ = make_ade847(tmp_path / 'data', pool)
    ade847.prepare(raw, tmp_path / 'serial', workers=1)
    ade847.prepare(raw, tmp_path / 'parallel', workers=2)
    serial, parallel = tree(tmp_path / 'serial'), tree(tmp_path / 'parallel')
    assert {k: v[0] for k, v in serial.items()} == {k: v[0] for k, v in parallel.items()}
    ade847.prepare(raw, tmp_path / 'small', short_side=30)
    assert tifffile.imread(tmp_path / 'small' / 'annotations' / 'ADE_val_00000001.tif').shape == (30, 45)


def test_ade847_missing_segmentation_names_the_file(tmp_path):
    pool, _ = ade847_classes()
    raw, _ = make_ade847(tmp_path / 'data', pool)
    seg = raw / 'images' / 'ADE' / 'validation' / 'urban' / 'street' / 'ADE_val_00000001_seg.png'
    seg.unlink()
    with pytest.raises(LoGoSegUserError, match='ADE_val_00000001_seg.png is missing; get it from .*ade20k'):
        ade847.prepare(raw, tmp_path / 'out')
