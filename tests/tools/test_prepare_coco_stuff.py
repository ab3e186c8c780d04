"""COCO-Stuff-171 preparation from stuffthingmaps holding every uint8 value."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from logoseg.tools.prepare import coco_stuff

from .prepare_fixtures import VOCAB, make_coco_stuff

# stuffthingmap values (COCO id - 1) of the 11 thing ids COCO never used: 12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91
UNUSED = {11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90}


def expected_label(raw: np.ndarray) -> np.ndarray:
    used = [v for v in range(182) if v not in UNUSED]
    table = {v: i for i, v in enumerate(used)}
    return np.vectorize(lambda v: table.get(int(v), 255))(raw).astype(np.uint8)


def test_coco_stuff_maps_every_value(tmp_path):
    raw = make_coco_stuff(tmp_path / 'data')
    out = tmp_path / 'prepared' / 'coco_stuff171'
    assert coco_stuff.main(['--raw', str(raw), '--out', str(out), '--workers', '1']) == 0

    produced = sorted(str(p.relative_to(out)) for p in out.rglob('*.png'))
    assert produced == ['train2017/000000000009.png', 'train2017/000000000025.png', 'val2017/000000000139.png']
    for path in out.rglob('*.png'):
        split = path.parent.name
        with Image.open(path) as image:
            assert image.mode == 'L'
            label = np.asarray(image)
        raw_label = np.asarray(Image.open(raw / 'annotations' / split / path.name))
        np.testing.assert_array_equal(label, expected_label(raw_label))
        assert set(np.unique(label)) == set(range(171)) | {255}


def test_coco_stuff_trainids_name_the_right_classes():
    names = json.loads((VOCAB / 'coco.json').read_text())
    label = expected_label(np.array([0, 89, 91, 181, 11, 255]))
    assert [names[i] for i in label[:4]] == ['person', 'toothbrush', 'banner', 'wood']
    assert label[4] == label[5] == 255
    np.testing.assert_array_equal(coco_stuff.LUT[:256], expected_label(np.arange(256)))


def test_coco_stuff_splits_option(tmp_path):
    raw = make_coco_stuff(tmp_path / 'data')
    out = tmp_path / 'out'
    assert coco_stuff.main(['--raw', str(raw), '--out', str(out), '--splits', 'val2017']) == 0
    assert sorted(p.name for p in out.iterdir()) == ['.prepare.json', 'val2017']
