"""PAS-20: VOC2012 SegmentationClassAug (val ids) -> prepared/voc20/val/<id>.png (uint8, ignore 255).

Raw 0 (background) becomes 255, 1..20 become the classes 0..19 (``vocab/voc20.json``), 255 (void) stays.
Ids from ``<raw>/ImageSets/Segmentation/val.txt``; images stay in ``<raw>/JPEGImages``.
:mod:`.voc20b` is the same split with background kept as class 20.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .common import (INVALID, LabelSpec, Plan, check_files, check_image, execute, load_params, make_parser, parse_args,
                     read_failed, read_label, remap, require, run_main, write_png)

SOURCE = ('VOCtrainval_11-May-2012.tar from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ (JPEGImages, '
          'ImageSets) plus SegmentationClassAug (PNG conversion of SBD, '
          'http://home.bharathh.info/pubs/codes/SBD/download.html) into data/VOCdevkit/VOC2012/')
FIX_LABEL = 're-download SegmentationClassAug (http://home.bharathh.info/pubs/codes/SBD/download.html)'
FIX_IMAGE = 're-download VOCtrainval_11-May-2012.tar from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/'


def make_lut(background: int) -> np.ndarray:
    """Raw VOC value -> label: 0 -> ``background``, 1..20 -> 0..19, 255 -> 255, other values are invalid."""
    lut = np.full(256, INVALID, np.int32)
    lut[0] = background
    lut[1:21] = np.arange(20)
    lut[255] = 255
    return lut


VARIANTS = {  # name -> (lookup table, label format)
    'voc20': (make_lut(background=255), LabelSpec(np.uint8, 20, 255)),
    'voc20b': (make_lut(background=20), LabelSpec(np.uint8, 21, 255)),
}


def convert(task: tuple[str, str, str, str], root: Path) -> None:
    """task = (variant name, raw SegmentationClassAug path, raw image path, output path relative to root)."""
    name, src, image, dst = task
    lut, spec = VARIANTS[name]
    label = remap(read_label(Path(src), FIX_LABEL), lut, spec, src)
    check_image(Path(image), label.shape, src, FIX_IMAGE)
    write_png(root / dst, label)


def build_plan(name: str, raw: Path, out: Path) -> Plan:
    if name not in VARIANTS:
        raise ValueError(f'unknown VOC variant {name!r}; choose one of {", ".join(VARIANTS)}')
    split_file = require(raw / 'ImageSets' / 'Segmentation' / 'val.txt', 'VOC2012 val list', SOURCE)
    require(raw / 'SegmentationClassAug', 'VOC2012 SegmentationClassAug', SOURCE)
    try:
        ids = split_file.read_text(encoding='utf-8').split()
    except UnicodeDecodeError as err:
        raise read_failed(split_file, err, FIX_IMAGE) from None
    labels = [raw / 'SegmentationClassAug' / f'{i}.png' for i in ids]
    images = [raw / 'JPEGImages' / f'{i}.jpg' for i in ids]
    check_files(labels, 'VOC2012 SegmentationClassAug label', SOURCE)
    check_files(images, 'VOC2012 image', SOURCE)
    tasks = [(name, str(p), str(i), f'val/{p.name}') for p, i in zip(labels, images, strict=True)]
    sources = sorted({Path(__file__), Path(__file__).with_name(f'{name}.py')})
    return Plan(name, raw, out, tasks, convert, [split_file, *labels, *images], {}, sources)


def prepare(raw: Path, out: Path, workers: int = 1, name: str = 'voc20') -> bool:
    """Write prepared/<name> (voc20 or voc20b); False when it was already up to date."""
    return execute(build_plan(name, raw, out), workers)


def main(argv: Sequence[str] | None = None, name: str = 'voc20', doc: str = __doc__) -> int:
    params = load_params(name)
    args = parse_args(make_parser(name, doc, params), argv)
    return run_main(lambda: prepare(args.raw, args.out, args.workers, name))


if __name__ == '__main__':
    sys.exit(main())
