"""Raw dataset fixtures in the exact on-disk formats the preparation scripts read.

A-150 and PAS-20/PAS-20b are built from the real samples in tests/data; the others are synthesised in the real
formats (ADE20K_2021_17_01 ``*_seg.png`` + ``index_ade20k.pkl``, PASCAL in Detail ``trainval_merged.json`` with
pycocotools RLE, PASCAL-Context ``.mat`` LabelMaps, COCO-Stuff stuffthingmaps).
"""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from pycocotools import mask as mask_utils

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / 'tests' / 'data'
VOCAB = REPO / 'projects' / 'logoseg' / 'vocab'


def write_jpeg(path: Path, height: int, width: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, quality=90)


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_ade150(root: Path) -> Path:
    """ADEChallengeData2016 with the 3 real validation pairs, and the same pairs renamed as training."""
    raw = root / 'ADEChallengeData2016'
    for split, prefix in (('validation', 'ADE_val_'), ('training', 'ADE_train_')):
        for kind, suffix in (('images', '.jpg'), ('annotations', '.png')):
            (raw / kind / split).mkdir(parents=True)
            for src in sorted((SAMPLES / 'ade20k_val' / kind).glob(f'*{suffix}')):
                shutil.copyfile(src, raw / kind / split / src.name.replace('ADE_val_', prefix))
    return raw


def make_voc2012(root: Path) -> Path:
    """VOCdevkit/VOC2012 with the 3 real val pairs and a val.txt listing them."""
    raw = root / 'VOCdevkit' / 'VOC2012'
    shutil.copytree(SAMPLES / 'voc2012_val' / 'JPEGImages', raw / 'JPEGImages')
    shutil.copytree(SAMPLES / 'voc2012_val' / 'SegmentationClassAug', raw / 'SegmentationClassAug')
    ids = sorted(p.stem for p in (raw / 'SegmentationClassAug').glob('*.png'))
    (raw / 'ImageSets' / 'Segmentation').mkdir(parents=True)
    (raw / 'ImageSets' / 'Segmentation' / 'val.txt').write_text('\n'.join(ids) + '\n')
    return raw


def make_coco_stuff(root: Path) -> Path:
    """cocostuff/{images,annotations}/{train2017,val2017}: stuffthingmaps holding every uint8 value (used ids,
    unused ids, 182..254 and 255), shifted per image."""
    raw = root / 'cocostuff'
    every = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for split, stems in (('train2017', ['000000000009', '000000000025']), ('val2017', ['000000000139'])):
        for k, stem in enumerate(stems):
            write_png(raw / 'annotations' / split / f'{stem}.png', np.roll(every, k, axis=1))
            write_jpeg(raw / 'images' / split / f'{stem}.jpg', 16, 16, seed=k)
    return raw


def ade847_seg(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) ``*_seg.png`` pixels encoding the object classes as R = class // 256 * 10 + r (r < 10: R // 10
    drops it), G = class % 256, B = an instance index."""
    seg = np.empty((*classes.shape, 3), np.uint8)
    seg[..., 0] = classes // 256 * 10 + rng.integers(0, 10, classes.shape)
    seg[..., 1] = classes % 256
    seg[..., 2] = rng.integers(0, 256, classes.shape)
    return seg


ADE847_VAL = {  # name -> (scene folder below images/ADE/validation, height, width)
    'ADE_val_00000001': ('urban/street', 40, 60),        # short side <= 512: kept
    'ADE_val_00000002': ('home_or_hotel/bedroom', 600, 520),  # portrait, short side 520 > 512: resized
    'ADE_val_00000003': ('urban/skyscraper', 513, 700),  # landscape, short side 513 > 512: resized
}


def make_ade847(root: Path, class_pool: np.ndarray) -> tuple[Path, dict[str, np.ndarray]]:
    """ADE20K_2021_17_01 with index_ade20k.pkl (the real keys; one training entry the script must skip) and
    the validation images of :data:`ADE847_VAL`, their pixels drawn from ``class_pool``.

    Returns the raw root and the class-index map of each validation image.
    """
    raw = root / 'ADE20K_2021_17_01'
    rng = np.random.default_rng(0)
    folders, filenames, classes_of = [], [], {}
    for k, (name, (scene, height, width)) in enumerate(ADE847_VAL.items()):
        folder = f'ADE20K_2021_17_01/images/ADE/validation/{scene}'
        # 8x8 blocks keep regions larger than a pixel, so nearest-neighbour resizing has structure to keep
        blocks = rng.choice(class_pool, ((height + 7) // 8, (width + 7) // 8))
        classes = np.kron(blocks, np.ones((8, 8), np.int64))[:height, :width]
        classes[0, :5] = class_pool[:5]  # some single pixels too
        write_jpeg(root / folder / f'{name}.jpg', height, width, seed=k)
        write_png(root / folder / f'{name}_seg.png', ade847_seg(classes, rng))
        folders.append(folder)
        filenames.append(f'{name}.jpg')
        classes_of[name] = classes
    folders.append('ADE20K_2021_17_01/images/ADE/training/urban/street')  # not on disk: must be skipped
    filenames.append('ADE_train_00000001.jpg')
    n_images, n_classes = len(filenames), 4
    index = {
        'filename': filenames,
        'folder': folders,
        'scene': ['/street', '/bedroom', '/skyscraper', '/street'],
        'objectIsPart': np.zeros((n_classes, n_images), np.uint8),
        'objectPresence': np.ones((n_classes, n_images), np.uint8),
        'objectcounts': np.full(n_classes, n_images),
        'objectnames': ['wall', 'building, edifice', 'sky', 'person, individual, someone, somebody, mortal, soul'],
        'proportionClassIsPart': np.zeros(n_classes),
        'wordnet_found': np.ones(n_classes, bool),
        'wordnet_level1': [''] * n_classes,
        'wordnet_synset': [''] * n_classes,
        'wordnet_hypernym': [''] * n_classes,
        'wordnet_gloss': [''] * n_classes,
        'wordnet_synonyms': [''] * n_classes,
        'wordnet_frequency': np.ones(n_classes),
        'description': {'filename': 'array of length N=27574 with the image file names',
                        'folder': 'array of length N with the image folder names.'},
    }
    with open(raw / 'index_ade20k.pkl', 'wb') as f:
        pickle.dump(index, f)
    return raw, classes_of


def rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a binary mask as stored in JSON (counts as str)."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(s) for s in encoded['size']], 'counts': encoded['counts'].decode('ascii')}


PC59_IMAGES = {  # stem -> (phase, height, width)
    '2008_000002': ('val', 30, 40),
    '2008_000003': ('val', 25, 20),
    '2008_000008': ('train', 20, 30),
    '2008_000009': ('val', 10, 10),  # phase val but not in the id list given to the script
}


def make_pc59(root: Path) -> tuple[Path, dict[str, list[tuple[int, np.ndarray]]]]:
    """VOCdevkit/VOC2010 with JPEGImages and a trainval_merged.json in the PASCAL in Detail layout.

    Each image gets masks of PASCAL-Context ids in and outside PC-59 (2 aeroplane, 397 table = PC-59
    'diningtable', 458 wood, 1 accordion, 3 airconditioner, 0 background): horizontal bands that overlap their
    neighbours by one row, then a block of id 2 again over the 397 band; the last two columns stay unannotated.
    Returns the raw root and, per stem, the (category id, mask) list in file order.
    """
    raw = root / 'VOCdevkit' / 'VOC2010'
    images, annotations, masks_of = [], [], {}
    for k, (stem, (phase, height, width)) in enumerate(PC59_IMAGES.items()):
        image_id = int(stem.replace('_', ''))
        write_jpeg(raw / 'JPEGImages' / f'{stem}.jpg', height, width, seed=k)
        images.append({'file_name': f'{stem}.jpg', 'image_id': image_id, 'height': height, 'width': width,
                       'phase': phase, 'date_captured': '31-May-2015 17:44:04'})
        masks_of[stem] = []
        bands = (2, 397, 458, 1, 3, 0)
        edges = np.linspace(0, height, len(bands) + 1).astype(int)
        for i, category in enumerate((*bands, 2)):
            mask = np.zeros((height, width), bool)
            if i < len(bands):
                mask[max(edges[i] - 1, 0):edges[i + 1] + 1, :width - 2] = True
            else:
                mask[edges[1]:edges[1] + 2, :3] = True
            masks_of[stem].append((category, mask))
            rows, cols = np.nonzero(mask)
            bbox = [int(cols.min()), int(rows.min()), int(np.ptp(cols)) + 1, int(np.ptp(rows)) + 1]
            annotations.append({'id': len(annotations) + 1, 'image_id': image_id, 'category_id': category,
                                'segmentation': rle(mask), 'area': int(mask.sum()), 'bbox': bbox,
                                'iscrowd': 0, 'parts': []})
    names = json.loads((VOCAB / 'pc459.json').read_text())
    data = {'info': {'description': 'PASCAL in Detail'}, 'images': images, 'annos_segmentation': annotations,
            'categories': [{'category_id': i + 1, 'name': n, 'supercategory': ''} for i, n in enumerate(names)],
            'annos_occlusion': [], 'annos_joints': [], 'parts': []}
    (raw / 'trainval_merged.json').write_text(json.dumps(data))
    return raw, masks_of


def make_pc459(root: Path, label_maps: dict[str, np.ndarray]) -> Path:
    """VOCdevkit/VOC2010/trainval/<id>.mat (uint16 LabelMap as in the release) and JPEGImages/<id>.jpg."""
    raw = root / 'VOCdevkit' / 'VOC2010'
    (raw / 'trainval').mkdir(parents=True, exist_ok=True)
    for k, (stem, label_map) in enumerate(label_maps.items()):
        scipy.io.savemat(raw / 'trainval' / f'{stem}.mat', {'LabelMap': label_map.astype(np.uint16)})
        write_jpeg(raw / 'JPEGImages' / f'{stem}.jpg', *label_map.shape, seed=k)
    return raw


def write_ids(path: Path, ids: list[str]) -> Path:
    path.write_text('\n'.join(ids))
    return path


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """relative path -> (bytes, mtime_ns) of every file below root."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob('*')) if p.is_file()}
