"""PC-59: PASCAL-Context trainval_merged.json -> prepared/pc59/<split>/<id>.png (uint8, ignore 255).

Each image's label is painted from its ``annos_segmentation`` RLE masks (pycocotools, in file order, later masks
over earlier ones; unpainted pixels are background 0). Background and the 59 classes have the 60 PASCAL-Context
ids below; sorted, the id at position i becomes class i-1 (the order of ``vocab/pc59.json``). Background (position
0) and every other id become 255. Split ``val``: the ids of ``vocab/pascalcontext_val.txt`` (or
``--ids``, the same images as PC-459); ``train``: the images of phase ``train`` (the Table-5 training set).
Images stay in ``<raw>/JPEGImages``.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from logoseg.utils.errors import LoGoSegUserError

from .common import (LabelSpec, Plan, check_files, check_image, execute, load_params, make_parser, parse_args, remap,
                     require, run_main, write_png)
from .pc459 import FIX_IMAGE, val_ids

SOURCE = ('trainval_merged.json (PASCAL in Detail, https://codalabuser.blob.core.windows.net/public/'
          'trainval_merged.json; PASCAL-Context: https://www.cs.stanford.edu/~roozbeh/pascal-context/) into '
          'data/VOCdevkit/VOC2010/, images from VOCtrainval_03-May-2010.tar, '
          'http://host.robots.ox.ac.uk/pascal/VOC/voc2010/')
SPLITS = ('val', 'train')
LABELS = LabelSpec(np.uint8, 59, 255)
FIX_JSON = 're-download trainval_merged.json (https://codalabuser.blob.core.windows.net/public/trainval_merged.json)'

# PASCAL-Context ids of background (0) and the 59 classes, sorted: position i is class i-1.
PC59_IDS = np.array([
    0, 2, 9, 18, 19, 22, 23, 25, 31, 33, 34, 44, 45, 46, 59, 65, 68, 72, 80, 85, 98, 104, 105, 113, 115, 144,
    158, 159, 162, 187, 189, 207, 220, 232, 258, 259, 260, 284, 295, 296, 308, 324, 326, 347, 349, 354, 355,
    360, 366, 368, 397, 415, 416, 420, 424, 427, 440, 445, 454, 458])
assert len(PC59_IDS) == LABELS.num_classes + 1 and (np.diff(PC59_IDS) > 0).all()

LUT = np.full(2 ** 16, 255, np.int32)  # category ids are painted into a uint16 map
LUT[PC59_IDS[1:]] = np.arange(LABELS.num_classes)


def rle_counts(counts: str) -> list[int]:
    """Run lengths of a COCO compressed RLE string (pycocotools' ``rleFrString``); ValueError when malformed.

    pycocotools decodes an RLE whose runs cover less than the image into uninitialised memory without a word,
    so the runs are checked here before it sees them.
    """
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position == len(counts):
                raise ValueError('truncated run')
            char = ord(counts[position]) - 48
            if not 0 <= char < 64:
                raise ValueError(f'character {counts[position]!r}')
            value |= (char & 0x1F) << shift
            more = bool(char & 0x20)
            position += 1
            shift += 5
            if not more and char & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ValueError('negative run')
        runs.append(value)
    return runs


def decode_rle(rle: dict, height: int, width: int) -> np.ndarray:
    """(height, width) bool mask of one ``annos_segmentation`` entry; ValueError when it is not a valid RLE of
    that size."""
    if not isinstance(rle, dict) or not isinstance(rle.get('counts'), str):
        raise ValueError('not a compressed RLE {size, counts}')
    if list(rle.get('size', ())) != [height, width]:
        raise ValueError(f'mask size {rle.get("size")} on a {height}x{width} image')
    if sum(rle_counts(rle['counts'])) != height * width:
        raise ValueError(f'runs do not cover the {height}x{width} image')
    return mask_utils.decode(rle).astype(bool)


def convert(task: tuple[int, int, list, str, str, str], root: Path) -> None:
    """task = (height, width, [(category_id, RLE dict), ...], image path, annotation file, output path relative
    to root)."""
    height, width, annotations, image, json_path, dst = task
    ids = np.zeros((height, width), np.uint16)
    for category, rle in annotations:
        try:
            ids[decode_rle(rle, height, width)] = category
        except ValueError as err:
            raise LoGoSegUserError(f'{json_path}: bad mask of {Path(image).name} ({err}); {FIX_JSON}') from None
    check_image(Path(image), ids.shape, f'{json_path} ({Path(image).name})', FIX_IMAGE)
    write_png(root / dst, remap(ids, LUT, LABELS, dst))


def build_plan(raw: Path, out: Path, splits: Sequence[str], ids: Sequence[str]) -> Plan:
    json_path = require(raw / 'trainval_merged.json', 'PASCAL-Context trainval_merged.json', SOURCE)
    try:
        data = json.loads(json_path.read_text(encoding='utf-8'))
        images = {Path(img['file_name']).stem: (img['image_id'], img['height'], img['width'], img['phase'],
                                                img['file_name']) for img in data['images']}
        by_image: dict[int, list] = {}
        for ann in data['annos_segmentation']:
            if not 0 <= ann['category_id'] < 2 ** 16:
                raise ValueError(f'category id {ann["category_id"]}')
            by_image.setdefault(ann['image_id'], []).append((ann['category_id'], ann['segmentation']))
    except (ValueError, KeyError, TypeError) as err:  # includes a truncated file (JSONDecodeError) and bad UTF-8
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise LoGoSegUserError(f'{json_path} is corrupt or not a PASCAL in Detail annotation file ({reason}); '
                               f'{FIX_JSON}') from None
    val = set(ids)
    chosen = {'val': list(ids),
              'train': sorted(stem for stem, img in images.items() if img[3] == 'train' and stem not in val)}
    tasks, inputs = [], [json_path]
    for split in splits:
        missing = [stem for stem in chosen[split] if stem not in images]
        if missing:
            raise LoGoSegUserError(f'{json_path} lists no image {missing[0]} ({len(missing)} {split} ids missing); '
                                   f'get the full file from {SOURCE}')
        files = [raw / 'JPEGImages' / images[s][4] for s in chosen[split]]
        check_files(files, 'VOC2010 image', SOURCE)
        inputs += files
        for stem, image in zip(chosen[split], files, strict=True):
            image_id, height, width, _, _ = images[stem]
            tasks.append((height, width, by_image.get(image_id, []), str(image), str(json_path),
                          f'{split}/{stem}.png'))
    settings = {'splits': list(splits), 'ids': list(ids)}
    return Plan('pc59', raw, out, tasks, convert, inputs, settings, [Path(__file__)])


def prepare(raw: Path, out: Path, workers: int = 1, splits: Sequence[str] = SPLITS,
            ids_file: Path | None = None) -> bool:
    """Write prepared/pc59; False when it was already up to date."""
    return execute(build_plan(raw, out, splits, val_ids(ids_file)), workers)


def main(argv: Sequence[str] | None = None) -> int:
    params = load_params('pc59')
    parser = make_parser('pc59', __doc__, params)
    parser.add_argument('--splits', nargs='+', default=params.get('splits', list(SPLITS)),
                        help=f'any of {", ".join(SPLITS)} (default: prepare.pc59.splits, else both)')
    parser.add_argument('--ids', type=Path, help='validation id list (default: the shipped pascalcontext_val.txt)')
    args = parse_args(parser, argv, {'splits': SPLITS})
    return run_main(lambda: prepare(args.raw, args.out, args.workers, args.splits, args.ids))


if __name__ == '__main__':
    sys.exit(main())
