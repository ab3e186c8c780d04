"""PAS-20 and PAS-20b preparation from the real VOC2012 SegmentationClassAug samples."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from logoseg.tools.prepare import voc20, voc20b
from logoseg.utils.errors import LoGoSegUserError

from .prepare_fixtures import SAMPLES, VOCAB, make_voc2012


def expected_label(raw: np.ndarray, background: int) -> np.ndarray:
    """The protocol written out: 0 -> background, 1..20 -> 0..19, 255 stays."""
    raw = raw.astype(np.int64)
    return np.where(raw == 0, background, np.where(raw == 255, 255, raw - 1))


@pytest.mark.parametrize('module, name, background', [(voc20, 'voc20', 255), (voc20b, 'voc20b', 20)])
def test_voc_maps_every_pixel(tmp_path, module, name, background):
    raw = make_voc2012(tmp_path / 'data')
    out = tmp_path / 'prepared' / name
    assert module.main(['--raw', str(raw), '--out', str(out), '--workers', '1']) == 0

    samples = sorted((SAMPLES / 'voc2012_val' / 'SegmentationClassAug').glob('*.png'))
    assert sorted(p.name for p in (out / 'val').iterdir()) == [p.name for p in samples]
    for sample in samples:
        raw_label = np.asarray(Image.open(sample))
        with Image.open(out / 'val' / sample.name) as image:
            assert image.mode == 'L'
            label = np.asarray(image)
        assert label.dtype == np.uint8
        np.testing.assert_array_equal(label, expected_label(raw_label, background))
        assert (label == 255).any() and (label == background).any()
        assert set(np.unique(label)) <= set(range(21 if name == 'voc20b' else 20)) | {255}


def test_voc_class_order_matches_vocabularies():
    # raw 1 = aeroplane ... 20 = tvmonitor: class v-1 names the same object in both vocabularies
    voc, voc_b = (json.loads((VOCAB / f'{n}.json').read_text()) for n in ('voc20', 'voc20b'))
    assert voc[0] == voc_b[0] == 'aeroplane' and voc_b[:20] == voc and len(voc_b) == 59


def test_voc_rejects_values_between_20_and_255(tmp_path):
    raw = make_voc2012(tmp_path / 'data')
    path = raw / 'SegmentationClassAug' / 'voc_val_23.png'
    label = np.asarray(Image.open(path)).copy()
    label[5, 5] = 21
    Image.fromarray(label).save(path)
    with pytest.raises(LoGoSegUserError, match=r'voc_val_23\.png: unexpected label values \[21\]'):
        voc20.prepare(raw, tmp_path / 'out')


def test_voc_missing_label_of_a_listed_id(tmp_path):
    raw = make_voc2012(tmp_path / 'data')
    (raw / 'SegmentationClassAug' / 'voc_val_114.png').unlink()
    with pytest.raises(LoGoSegUserError, match=r'SegmentationClassAug/voc_val_114\.png is missing; get it from'):
        voc20.prepare(raw, tmp_path / 'out', name='voc20b')


def test_voc_unreadable_split_list_is_one_line_naming_it(tmp_path):
    raw = make_voc2012(tmp_path / 'data')
    split = raw / 'ImageSets' / 'Segmentation' / 'val.txt'
    split.write_bytes(b'\xff\xfe\x00garbage')  # not UTF-8: a truncated or foreign download
    with pytest.raises(LoGoSegUserError, match=r'val\.txt is corrupt or truncated \(.*codec.*\)'):
        voc20.prepare(raw, tmp_path / 'out')
