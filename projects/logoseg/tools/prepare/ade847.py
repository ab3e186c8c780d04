"""A-847: ADE20K_2021_17_01 validation -> prepared/ade847/images/<id>.jpg + annotations/<id>.tif (uint16, ignore 65535).

The validation images are the entries of ``index_ade20k.pkl`` (lists ``folder`` and ``filename``) whose folder
lies under ``images/ADE/validation``. The object class of a pixel of ``<id>_seg.png`` is R // 10 * 256 + G; it
becomes its ``trainId`` in ``vocab/ade847_categories.json`` (``id`` -> ``trainId``), every other class 65535.
Images whose short side exceeds ``short_side`` (512) are resized so that it equals ``short_side`` and the long
side is ``round(long / short * short_side)``: the image bilinearly (OpenCV INTER_LINEAR), the label with OpenCV
INTER_NEAREST (PIL's NEAREST samples pixel centres and gives a different map). Every image is decoded in full
and written as the reference preparation (CAT-Seg / SED, ``prepare_ade20k_full.py``) writes it: PIL's JPEG
encoder at its default quality 75, resized or not, in the mode PIL decodes it to (greyscale stays greyscale).
"""
from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image

from logoseg.utils.errors import LoGoSegUserError

from .common import (LabelSpec, Plan, check_files, decode, execute, load_params, make_parser, parse_args, read_failed,
                     remap, require, run_main, write_tiff)

SOURCE = ('ADE20K_2021_17_01.zip (index_ade20k.pkl + images/) from https://ade20k.csail.mit.edu/ (register, then '
          'download the full dataset), unzipped into data/')
LABELS = LabelSpec(np.uint16, 847, 65535)
JPEG_QUALITY = 75  # PIL's default, which the reference preparation uses (it passes no quality)
FIX = 're-download it (ADE20K_2021_17_01.zip from https://ade20k.csail.mit.edu/)'
CATEGORIES = resources.files('logoseg').joinpath('vocab', 'ade847_categories.json')


def make_lut() -> np.ndarray:
    """ADE20K object-class index (R // 10 * 256 + G < 26 * 256) -> trainId, 65535 for the classes not in A-847."""
    lut = np.full(26 * 256, LABELS.ignore, np.int32)
    categories = json.loads(CATEGORIES.read_text(encoding='utf-8'))
    for category in categories:
        lut[category['id']] = category['trainId']
    assert sorted(c['trainId'] for c in categories) == list(range(LABELS.num_classes))
    return lut


LUT = make_lut()


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int] | None:
    """(height, width) after resizing the short side to ``short_side``; None when it is not longer than that."""
    if min(height, width) <= short_side:
        return None
    if width >= height:
        return short_side, round(width / height * short_side)
    return round(height / width * short_side), short_side


def class_index(seg: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 ``*_seg.png`` -> (H, W) int32 object-class index R // 10 * 256 + G."""
    return seg[..., 0].astype(np.int32) // 10 * 256 + seg[..., 1]


def convert(task: tuple[str, str, str, int, int], root: Path) -> None:
    """task = (image path, *_seg.png path, image id, short_side, JPEG quality)."""
    image_path, seg_path, name, short_side, quality = task
    seg = decode(Path(seg_path), ('RGB', 'RGBA'), FIX)
    label = remap(class_index(seg), LUT, LABELS, seg_path)
    pixels = decode(Path(image_path), fix=FIX)
    if pixels.ndim == 3 and pixels.shape[2] != 3:  # CMYK (or alpha): JPEG takes L or RGB
        pixels = np.asarray(Image.fromarray(pixels).convert('RGB'))
    height, width = pixels.shape[:2]
    if label.shape != (height, width):
        raise LoGoSegUserError(f'{seg_path} is {label.shape[1]}x{label.shape[0]} but its image is '
                               f'{width}x{height}; {FIX}')
    new = resized_shape(height, width, short_side)
    if new is not None:
        size = (new[1], new[0])  # OpenCV takes (width, height)
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
    image_out = root / 'images' / f'{name}.jpg'
    image_out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(image_out, format='JPEG', quality=quality)
    write_tiff(root / 'annotations' / f'{name}.tif', label)


def validation_entries(raw: Path, index: dict) -> list[tuple[Path, Path]]:
    """(image, *_seg.png) paths of the validation entries of the index, sorted by file name."""
    try:
        folders, filenames = list(index['folder']), list(index['filename'])
        if len(folders) != len(filenames):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise LoGoSegUserError(f'{raw / "index_ade20k.pkl"} has no folder/filename lists of one length; get '
                               f'the ADE20K_2021_17_01 index from {SOURCE}') from None
    entries = []
    for folder, filename in zip(folders, filenames, strict=True):
        parts = PurePosixPath(str(folder).replace('\\', '/')).parts
        if 'images' not in parts:
            raise LoGoSegUserError(f'index_ade20k.pkl folder {folder!r} is not under images/; get the '
                                   f'ADE20K_2021_17_01 index from {SOURCE}')
        start = parts.index('images')
        if parts[start + 1:start + 3] == ('ADE', 'validation'):
            image = raw.joinpath(*parts[start:], filename)
            entries.append((image, image.with_name(f'{image.stem}_seg.png')))
    if not entries:
        raise LoGoSegUserError(f'{raw / "index_ade20k.pkl"} lists no images/ADE/validation images; get the '
                               f'ADE20K_2021_17_01 index from {SOURCE}')
    return sorted(entries, key=lambda e: e[0].name)


def build_plan(raw: Path, out: Path, short_side: int = 512, quality: int = JPEG_QUALITY) -> Plan:
    index_path = require(raw / 'index_ade20k.pkl', 'ADE20K index', SOURCE)
    try:
        with open(index_path, 'rb') as f:
            index = pickle.load(f)  # the official index (trusted input): dicts, lists and numpy arrays
    except Exception as err:  # noqa: BLE001  a damaged pickle raises UnpicklingError, EOFError, ValueError ...
        raise read_failed(index_path, err, FIX) from None
    require(raw / 'images' / 'ADE' / 'validation', 'ADE20K validation images', SOURCE)
    entries = validation_entries(raw, index)
    check_files((p for entry in entries for p in entry), 'ADE20K validation file', SOURCE)
    tasks = [(str(image), str(seg), image.stem, short_side, quality) for image, seg in entries]
    inputs = [index_path, *(p for entry in entries for p in entry)]
    return Plan('ade847', raw, out, tasks, convert, inputs, {'short_side': short_side, 'jpeg_quality': quality},
                [Path(__file__), CATEGORIES])


def prepare(raw: Path, out: Path, workers: int = 1, short_side: int = 512, quality: int = JPEG_QUALITY) -> bool:
    """Write prepared/ade847; False when it was already up to date."""
    return execute(build_plan(raw, out, short_side, quality), workers)


def main(argv: Sequence[str] | None = None) -> int:
    params = load_params('ade847')
    parser = make_parser('ade847', __doc__, params)
    parser.add_argument('--short-side', type=int, default=params.get('short_side', 512),
                        help='resize images whose short side is longer to this (default: '
                             'prepare.ade847.short_side, else 512)')
    parser.add_argument('--jpeg-quality', type=int, default=params.get('jpeg_quality', JPEG_QUALITY),
                        help='JPEG quality of the written images (default: prepare.ade847.jpeg_quality, else '
                             f'{JPEG_QUALITY}, the reference preparation\'s)')
    args = parse_args(parser, argv)
    if not isinstance(args.short_side, int) or args.short_side < 1:
        parser.error(f'--short-side must be an integer >= 1, got {args.short_side!r}')
    if not isinstance(args.jpeg_quality, int) or not 1 <= args.jpeg_quality <= 95:
        parser.error(f'--jpeg-quality must be an integer in 1..95, got {args.jpeg_quality!r}')
    return run_main(lambda: prepare(args.raw, args.out, args.workers, args.short_side, args.jpeg_quality))


if __name__ == '__main__':
    sys.exit(main())
