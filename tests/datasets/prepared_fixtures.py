"""Tiny benchmark trees in the prepared layout, built from the real samples in tests/data.

Independent of the prepare scripts: each label map is converted here with the mapping documented in
shared/conventions/datasets.md where the sample's raw format allows it (A-150, PAS-20, PAS-20b), and by
class name where the sample comes from a related dataset (PASCAL VOC classes -> PASCAL-Context indices,
A-150 classes -> A-847 / COCO indices). Unmatched pixels get the benchmark's ignore value.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from logoseg.utils.vocab import first_synonym, load_vocabulary

SAMPLES = Path(__file__).resolve().parents[1] / 'data'
ADE = SAMPLES / 'ade20k_val'
VOC = SAMPLES / 'voc2012_val'
ADE_IDS = ('ADE_val_00000001', 'ADE_val_00000002', 'ADE_val_00000003')
VOC_IDS = ('voc_val_1', 'voc_val_114', 'voc_val_23')
BENCHMARKS = ('coco_stuff171', 'ade150', 'ade847', 'pc59', 'pc459', 'voc20', 'voc20b')


def _read(path: Path, scale: float = 1.0) -> np.ndarray:
    """A raw label map, optionally shrunk (nearest neighbour keeps it a label map)."""
    image = Image.open(path)
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.NEAREST)
    return np.array(image)


def _by_name(source: str, target: str, ignore: int) -> np.ndarray:
    """Lookup table: index in vocabulary ``source`` -> index of the same (first) name in ``target``."""
    names = [first_synonym(n).lower() for n in load_vocabulary(target)]
    return np.array([names.index(first_synonym(n).lower()) if first_synonym(n).lower() in names else ignore
                     for n in load_vocabulary(source)], dtype=np.int64)


def _remap(raw: np.ndarray, table: dict[int, int] | np.ndarray, ignore: int, offset: int = 0) -> np.ndarray:
    """Raw label values -> prepared ones; values outside ``table`` -> ``ignore``."""
    out = np.full(raw.shape, ignore, dtype=np.int64)
    for value in np.unique(raw):
        index = int(value) - offset
        if isinstance(table, dict):
            out[raw == value] = table.get(int(value), ignore)
        elif 0 <= index < len(table):
            out[raw == value] = table[index]
    return out


def ade150_label(raw: np.ndarray) -> np.ndarray:
    """A-150: v -> v - 1, 0 -> 255."""
    return _remap(raw, {v: v - 1 for v in range(1, 151)}, 255)


def voc20_label(raw: np.ndarray) -> np.ndarray:
    """PAS-20: 0 -> 255, 1..20 -> 0..19, 255 stays."""
    return _remap(raw, {v: v - 1 for v in range(1, 21)}, 255)


def voc20b_label(raw: np.ndarray) -> np.ndarray:
    """PAS-20b: 0 -> 20 (background), 1..20 -> 0..19, 255 stays."""
    return _remap(raw, {0: 20, **{v: v - 1 for v in range(1, 21)}}, 255)


def _save_png(label: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label.astype(np.uint8)).save(path)


def _save_tif(label: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, label.astype(np.uint16), compression='zlib')


def _copy(src: Path, dst: Path, scale: float = 1.0) -> None:
    """Copy an image, or write it shrunk by ``scale`` (to keep model runs on the fixtures fast)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if scale == 1.0:
        shutil.copyfile(src, dst)
        return
    image = Image.open(src)
    image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR).save(dst)


def build(root: Path, benchmark: str, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Write one benchmark's fixture under ``root``, images and labels shrunk by ``scale``.

    Returns:
        {image id: label map as written}.
    """
    labels = {}
    if benchmark in ('ade150', 'ade847', 'coco_stuff171'):
        for image_id in ADE_IDS:
            raw = _read(ADE / 'annotations' / f'{image_id}.png', scale)
            image = ADE / 'images' / f'{image_id}.jpg'
            if benchmark == 'ade150':
                labels[image_id] = ade150_label(raw)
                for folder in ('validation', 'training'):  # the training split serves Table 5
                    _copy(image, root / f'data/ADEChallengeData2016/images/{folder}/{image_id}.jpg', scale)
                    _save_png(labels[image_id], root / f'prepared/ade150/{folder}/{image_id}.png')
            elif benchmark == 'ade847':
                labels[image_id] = _remap(raw, _by_name('ade150', 'ade847', 65535), 65535, offset=1)
                _copy(image, root / f'prepared/ade847/images/{image_id}.jpg', scale)
                _save_tif(labels[image_id], root / f'prepared/ade847/annotations/{image_id}.tif')
            else:
                labels[image_id] = _remap(raw, _by_name('ade150', 'coco', 255), 255, offset=1)
                for folder in ('val2017', 'train2017'):
                    _copy(image, root / f'data/cocostuff/images/{folder}/{image_id}.jpg', scale)
                    _save_png(labels[image_id], root / f'prepared/coco_stuff171/{folder}/{image_id}.png')
        return labels
    year = '2012' if benchmark.startswith('voc') else '2010'
    images = root / f'data/VOCdevkit/VOC{year}/JPEGImages'
    for image_id in VOC_IDS:
        raw = _read(VOC / 'SegmentationClassAug' / f'{image_id}.png', scale)
        _copy(VOC / 'JPEGImages' / f'{image_id}.jpg', images / f'{image_id}.jpg', scale)
        if benchmark == 'voc20':
            labels[image_id] = voc20_label(raw)
        elif benchmark == 'voc20b':
            labels[image_id] = voc20b_label(raw)
        else:
            ignore = 255 if benchmark == 'pc59' else 65535
            labels[image_id] = _remap(raw, _by_name('voc20', benchmark, ignore), ignore, offset=1)
        splits = ('val', 'train') if benchmark == 'pc59' else ('val', )
        for split in splits:
            path = root / f'prepared/{benchmark}/{split}/{image_id}'
            if benchmark == 'pc459':
                _save_tif(labels[image_id], path.with_suffix('.tif'))
            else:
                _save_png(labels[image_id], path.with_suffix('.png'))
    # PASCAL's JPEGImages holds every split's images: one without a label map must not be listed
    _copy(VOC / 'JPEGImages' / f'{VOC_IDS[0]}.jpg', images / 'unlabelled.jpg')
    return labels


def build_all(root: Path, scale: float = 1.0) -> dict[str, dict[str, np.ndarray]]:
    """Every benchmark's fixture under one root, as the repository lays them out."""
    return {benchmark: build(root, benchmark, scale) for benchmark in BENCHMARKS}
